"""Data for the read API tests: generated conversations, written once per session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from tests.conftest import GraphQLResponse, LiveServer, graphql_client, server_settings

# The development-mode user the test server acts as (Settings.dev_user_id).
VIEWER = "local-developer"


@dataclass(frozen=True)
class Conversations:
    small: uuid.UUID  # 10 nodes
    large: uuid.UUID  # 1,000 nodes, 3,000 relationships
    foreign: uuid.UUID  # another user's private conversation


@pytest.fixture(scope="session")
async def conversations(db: asyncpg.Connection) -> Conversations:
    small = await generate_conversation(db, nodes=10, seed=1, owner_id=VIEWER, name="Small")
    large = await generate_conversation(
        db, nodes=1000, seed=2, owner_id=VIEWER, name="Large", relationships_per_node=3.0
    )
    foreign = await generate_conversation(db, nodes=5, seed=3, owner_id="someone-else")
    return Conversations(small=small, large=large, foreign=foreign)


@pytest.fixture(scope="session")
async def resolved(database_url: URL) -> AsyncIterator[str]:
    """A second server on the same database whose resolvers build every field
    (`LCT_RENDER_IN_DATABASE=false`); yields its base URL."""
    server = LiveServer(server_settings(database_url, render_in_database=False))
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture(scope="session")
async def graphql_resolved(
    resolved: str,
) -> AsyncIterator[Callable[..., Awaitable[GraphQLResponse]]]:
    """`graphql`, against the server whose resolvers build every field."""
    async with graphql_client(resolved) as post:
        yield post


Post = Callable[..., Awaitable[Any]]
