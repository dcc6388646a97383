"""Database layer: settings, models, engine and session factories."""
