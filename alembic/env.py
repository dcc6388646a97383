"""Alembic environment: asyncpg online, plain SQL offline, one readable line on failure."""

from __future__ import annotations

import asyncio
import os
import sys
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Base
from db.settings import (
    ConfigurationError,
    connect_arguments,
    get_settings,
    resolve_database_url,
    to_async_url,
)

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def _configured_url() -> str | None:
    """The URL given to this run; an empty DATABASE_URL counts as given (and is refused)."""
    explicit = config.attributes.get("database_url")
    if explicit is None:
        explicit = os.environ.get("DATABASE_URL")
    return explicit if explicit is not None else get_settings().database_url


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: emits SQL and never connects, so no server is needed."""
    raw = _configured_url()
    if raw is None:
        raw = "postgresql://localhost/lct"
    try:
        url = to_async_url(raw)
    except ConfigurationError as error:
        _fail(str(error))
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    try:
        raw = _configured_url()
        url = to_async_url(raw) if raw is not None else resolve_database_url()
    except ConfigurationError as error:
        _fail(str(error))
    engine = create_async_engine(
        url.set(query={}),
        poolclass=pool.NullPool,
        connect_args={"timeout": 10, **connect_arguments(url)},
    )
    try:
        connection = await engine.connect()
    except (OSError, TimeoutError, DBAPIError) as error:
        await engine.dispose()
        where = f"{url.host or 'local socket'}:{url.port or 5432}/{url.database}"
        lines = str(getattr(error, "orig", None) or error).splitlines()
        reason = lines[0] if lines else type(error).__name__  # a TimeoutError says nothing
        _fail(f"cannot connect to PostgreSQL at {where}: {reason}")
    try:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    except CommandError as error:  # a revision that refuses to run, with the reason for a person
        await connection.rollback()
        _fail(str(error))
    finally:
        await connection.close()
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
