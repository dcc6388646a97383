"""Fixtures of the mutation tests: the real app over HTTP (`live_server`), and a raw connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import asyncpg_dsn

# The development-mode user the test server acts as (Settings.dev_user_id).
VIEWER = "local-developer"


@pytest.fixture(scope="session")
def live_server_url(live_server: str) -> str:
    return live_server


@pytest.fixture(scope="session")
async def gql(live_server: str) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    """POSTs a document, asserts HTTP 200 and returns the JSON body (`data`, `errors`)."""
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:

        async def post(query: str, /, **variables: Any) -> dict[str, Any]:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
            assert response.status_code == 200, response.text
            return response.json()

        yield post


@pytest.fixture
async def database(database_url) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()
