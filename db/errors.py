"""Errors of the database layer that a person must act on."""


class ConfigurationError(Exception):
    """A setting that cannot work; the message is one line meant for a person."""
