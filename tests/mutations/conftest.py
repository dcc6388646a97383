"""Fixtures and helpers shared by the mutation tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

from db.session import create_engine, create_session_factory
from db.settings import Settings
from graph.masking import MaskUnexpectedErrors
from graph.mutations.schema import Mutation, MutationSideQuery
from tests.conftest import asyncpg_dsn


@strawberry.type
class Query(MutationSideQuery):
    @strawberry.field
    def ping(self) -> str:
        return "pong"


class Context(dict):
    pass


@pytest.fixture(scope="session")
async def live_server_url(database_url) -> AsyncIterator[str]:
    engine = create_engine(database_url, Settings(_env_file=None))
    factory = create_session_factory(engine)

    class App(GraphQL):
        async def get_context(self, request, response) -> Any:
            context = Context()
            context.session_factory = factory  # type: ignore[attr-defined]
            context.viewer_id = "local"  # type: ignore[attr-defined]
            return context

    schema = strawberry.Schema(
        query=Query, mutation=Mutation, extensions=[lambda: MaskUnexpectedErrors(0)]
    )
    app = Starlette(routes=[Route("/graphql", App(schema), methods=["GET", "POST"])])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    await engine.dispose()


@pytest.fixture(scope="session")
async def gql(live_server_url):
    async with httpx.AsyncClient(base_url=live_server_url, timeout=60) as client:

        async def post(query: str, /, **variables: Any) -> dict[str, Any]:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
            assert response.status_code == 200, response.text
            return response.json()

        yield post


@pytest.fixture
async def database(database_url):
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()
