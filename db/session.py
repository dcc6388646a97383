"""Engine and session factories; the app builds one engine in its lifespan, nothing is global.

Every statement runs under the session settings below and the configured statement timeout.
Connected straight to PostgreSQL, they are sent once per connection, at start-up. Behind a pooler
in transaction mode (PgBouncer, `LCT_TRANSACTION_POOLING`), consecutive transactions of one
client connection run on different server connections, so nothing set for a session holds and a
start-up parameter other than a few PgBouncer knows is refused: there the settings are set with
`set_config(..., is_local => true)` at the start of every transaction, and prepared statements get
names of their own and are never cached, since the server connection that prepared one may be
serving somebody else by the next transaction.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from db.settings import Settings, connect_arguments, get_settings, resolve_database_url

# JIT compilation pays off for long analytical scans, not for this API's statements: the planner
# prices a rendered list's correlated subqueries (graph/rendering.py) far above `jit_above_cost`
# and then spends half a second compiling a query that runs in two milliseconds.
SESSION_SETTINGS = {"jit": "off"}


def session_settings(settings: Settings) -> dict[str, str]:
    """The settings every statement runs under."""
    values = dict(SESSION_SETTINGS)
    if settings.statement_timeout_ms:
        values["statement_timeout"] = str(settings.statement_timeout_ms)
    return values


def prepared_statement_name() -> str:
    return f"__lct_{uuid.uuid4().hex}__"


def set_local_statement(values: dict[str, str]) -> str:
    """One statement that sets `values` for the current transaction only."""
    calls = ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in sorted(values.items())
    )
    return f"SELECT {calls}"


def create_engine(url: URL | None = None, settings: Settings | None = None) -> AsyncEngine:
    """An asyncpg engine whose every statement runs under `session_settings`."""
    settings = settings or get_settings()
    url = url or resolve_database_url(settings)
    arguments: dict[str, Any] = connect_arguments(url)
    # DATABASE_URL's application_name wins over ours; the other settings are always ours.
    server_settings = {"application_name": "lct-graph", **arguments.get("server_settings", {})}
    values = session_settings(settings)
    if settings.transaction_pooling:
        arguments.update(
            statement_cache_size=0,  # asyncpg's own cache
            prepared_statement_cache_size=0,  # SQLAlchemy's
            prepared_statement_name_func=prepared_statement_name,
        )
    else:
        server_settings.update(values)
    engine = create_async_engine(
        url.set(query={}),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        connect_args={**arguments, "server_settings": server_settings},
    )
    event.listen(engine.sync_engine, "connect", stamp_last_use)
    event.listen(engine.sync_engine, "checkin", stamp_last_use)
    event.listen(engine.sync_engine, "checkout", ping_on_checkout)
    if settings.transaction_pooling:
        apply_per_transaction(engine, values)
    return engine


# A connection back in the pool for less than this is taken as alive without a ping. Under load
# every connection comes back within milliseconds, and the ping was a second round trip per
# request; a connection idle for longer (where idle-connection reapers and failovers strike) is
# still pinged. One that dies inside the window costs a read one retry (`graph.context`) and a
# write a retryable SERVICE_UNAVAILABLE; and after the first disconnect SQLAlchemy replaces every
# connection older than it at its next checkout, so a dead pool is not drained one retry at a time.
PING_AFTER_IDLE_SECONDS = 2.0
LAST_USE = "lct_last_use"


def stamp_last_use(_: Any, connection_record: Any, *__: Any) -> None:
    connection_record.info[LAST_USE] = time.monotonic()


def ping_on_checkout(dbapi_connection: Any, connection_record: Any, *_: Any) -> None:
    """A connection idle in the pool for a while answers before it is used, else the pool takes
    another.

    SQLAlchemy's `pool_pre_ping` wraps its ping in a transaction on asyncpg (BEGIN, a prepared
    `;`, ROLLBACK: three round trips before every request's first statement); one simple query
    proves the connection alive as well, and is skipped for a connection used a moment ago
    (`PING_AFTER_IDLE_SECONDS`).
    """
    last_use = connection_record.info.get(LAST_USE)
    if last_use is not None and time.monotonic() - last_use < PING_AFTER_IDLE_SECONDS:
        return
    try:
        await_only(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as error:
        raise DisconnectionError(f"a pooled connection did not answer: {error!r}") from error


def read_options(settings: Settings) -> dict[str, Any]:
    """Execution options of a request's reads: no transaction (no BEGIN, no ROLLBACK round trip)
    unless transaction pooling needs one to carry its `SET LOCAL`s. Each read statement then sees
    its own snapshot, as every statement of a READ COMMITTED transaction does anyway."""
    return {} if settings.transaction_pooling else {"isolation_level": "AUTOCOMMIT"}


def apply_per_transaction(engine: AsyncEngine, values: dict[str, str]) -> None:
    statement = set_local_statement(values)

    def begin(connection: Any) -> None:
        # on the driver's cursor: the statement is not one of the request's own
        # (graph.app.count_statements), and it opens the driver's transaction itself
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    event.listen(engine.sync_engine, "begin", begin)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
