"""Engine and session factories; the app builds one engine in its lifespan, nothing is global."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.settings import Settings, connect_arguments, get_settings, resolve_database_url

# JIT compilation pays off for long analytical scans, not for this API's statements: the planner
# prices a rendered list's correlated subqueries (graph/rendering.py) far above `jit_above_cost`
# and then spends half a second compiling a query that runs in two milliseconds.
SESSION_SETTINGS = {"jit": "off"}


def create_engine(url: URL | None = None, settings: Settings | None = None) -> AsyncEngine:
    """An asyncpg engine whose every connection runs under the configured statement timeout."""
    settings = settings or get_settings()
    url = url or resolve_database_url(settings)
    arguments = connect_arguments(url)
    # DATABASE_URL's application_name wins over ours; the statement timeout is always ours.
    server_settings = {"application_name": "lct-graph", **arguments.get("server_settings", {})}
    server_settings.update(SESSION_SETTINGS)
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    return create_async_engine(
        url.set(query={}),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        connect_args={**arguments, "server_settings": server_settings},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
