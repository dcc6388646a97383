"""Test harness: a real PostgreSQL (embedded, or DATABASE_URL's) and fresh databases per run.

Every database a test creates is named `lct_test_<random>` and dropped at the end of the run, so
runs neither depend on each other nor on the state of the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import create_engine
from db.settings import PROJECT_ROOT, Settings, resolve_database_url


def _server_url() -> URL:
    """The server under test, as an asyncpg URL; honours DATABASE_URL, else the embedded server."""
    settings = Settings(database_url=os.environ.get("DATABASE_URL") or None, _env_file=None)
    return resolve_database_url(settings)


def asyncpg_dsn(url: URL) -> str:
    """A DSN asyncpg understands (no `+asyncpg` driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def plain_url(url: URL) -> str:
    """The `postgresql://...` form a user would put in DATABASE_URL."""
    return asyncpg_dsn(url)


@pytest.fixture(scope="session")
def server_url() -> URL:
    return _server_url()


class DatabaseFactory:
    """Creates empty databases on the server under test and drops them all at the end."""

    def __init__(self, server: URL) -> None:
        self.server = server
        self.created: list[str] = []

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(asyncpg_dsn(self.server))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create(self) -> URL:
        name = f"lct_test_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self.created.append(name)
        return self.server.set(database=name)

    async def drop_all(self) -> None:
        for name in self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
async def database_factory(server_url: URL) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(server_url)
    yield factory
    await factory.drop_all()


def alembic_config(url: URL) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = plain_url(url)
    config.attributes["skip_logging_config"] = True
    return config


@pytest.fixture(scope="session")
def alembic_config_for() -> Callable[[URL], Config]:
    return alembic_config


@pytest.fixture(scope="session")
async def database_url(database_factory: DatabaseFactory) -> URL:
    """One database migrated to head by Alembic, shared by the tests that read and write data."""
    url = await database_factory.create()
    import asyncio

    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, Settings(_env_file=None))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def project_root() -> Iterator[Path]:
    yield PROJECT_ROOT
