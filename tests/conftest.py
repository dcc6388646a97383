"""Test harness: a real PostgreSQL (embedded, or DATABASE_URL's) and fresh databases per run.

Every database a test creates is named `lct_test_<random>` and dropped at the end of the run, so
runs neither depend on each other nor on the state of the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
async def db(database_url: URL) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection to the shared test database, for fixtures that write data."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, Settings(_env_file=None))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def project_root() -> Iterator[Path]:
    yield PROJECT_ROOT


# -- The real app under uvicorn ------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """A running uvicorn serving `graph.app.create_app(settings)` on 127.0.0.1."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._task: Any = None

    async def start(self) -> None:
        import asyncio

        import uvicorn

        from graph.app import create_app

        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            # The fixtures keep one keep-alive client for the whole session; with uvicorn's
            # default of 5 s, a connection idle that long could be closed just as a test sent
            # its next request on it (httpx.ReadError on a loaded machine).
            timeout_keep_alive=600,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


def server_settings(database_url: URL, **overrides: Any) -> Settings:
    """Settings for a test server on `database_url`, with the SQL statement count reported."""
    values: dict[str, Any] = {
        "database_url": plain_url(database_url),
        "debug_sql_count": True,
        "demo": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
async def live_server(database_url: URL) -> AsyncIterator[str]:
    """The real app on a free loopback port against the test database; yields its base URL."""
    server = LiveServer(server_settings(database_url))
    await server.start()
    yield server.url
    await server.stop()


@dataclass
class GraphQLResponse:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def statements(self) -> int:
        """How many SQL statements the server ran for the operation."""
        return int(self.body["extensions"]["sqlStatements"])


@pytest.fixture(scope="session")
async def graphql(live_server: str) -> AsyncIterator[Callable[..., Awaitable[GraphQLResponse]]]:
    """POSTs a GraphQL document to the live server: `await graphql(document, id=...)`."""
    async with graphql_client(live_server) as post:
        yield post


@asynccontextmanager
async def graphql_client(base_url: str) -> AsyncIterator[Callable[..., Awaitable[GraphQLResponse]]]:
    """A function that POSTs a GraphQL document to the server at `base_url`."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def post(
            document: str, /, *, headers: Mapping[str, str] | None = None, **variables: Any
        ) -> GraphQLResponse:
            response = await client.post(
                "/graphql",
                json={"query": document, "variables": variables},
                headers=dict(headers or {}),
            )
            return GraphQLResponse(response.status_code, response.json(), response.headers)

        yield post
