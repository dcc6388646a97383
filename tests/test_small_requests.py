"""The fixed cost of a small request: round trips to PostgreSQL, and documents sent as text whose
parse and validation are reused without weakening the limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy.engine import URL

import db.session
from bench.peers import SMALL_OPERATIONS, RoundTripProxy
from db.demo import generate_conversation
from db.settings import Settings
from tests.conftest import (
    DatabaseFactory,
    LiveServer,
    alembic_config,
    asyncpg_dsn,
    server_settings,
)

CONVERSATION_BY_ID = SMALL_OPERATIONS["conversation_by_id"][0]
PAGE = "query ($first: Int) { __typename conversations(first: $first) { totalCount } }"


@pytest.fixture(scope="module")
async def small_database(database_factory: DatabaseFactory) -> tuple[URL, str]:
    """A database of its own (the shared one's conversation counts stay as other tests expect)
    holding one small conversation of the development user."""
    url = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        conversation_id = await generate_conversation(
            connection, nodes=5, seed=7, owner_id=Settings(_env_file=None).dev_user_id
        )
    finally:
        await connection.close()
    return url, str(conversation_id)


@pytest.fixture
async def proxied_server(small_database: tuple[URL, str]) -> AsyncIterator[Any]:
    """The app on a free port, reaching PostgreSQL through a proxy counting round trips."""
    database_url, conversation_id = small_database
    proxy = RoundTripProxy.for_url(database_url)
    await proxy.start()
    settings = server_settings(proxy.through(database_url))
    server = LiveServer(settings)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            yield client, proxy, conversation_id, settings
    finally:
        await server.stop()
        await proxy.stop()


async def round_trips(client: httpx.AsyncClient, proxy: RoundTripProxy, payload: Any) -> float:
    for _ in range(3):  # the pool's connection opened, the statement prepared
        (await client.post("/graphql", json=payload)).raise_for_status()
    before, count = proxy.round_trips, 10
    for _ in range(count):
        response = await client.post("/graphql", json=payload)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    return (proxy.round_trips - before) / count


async def test_a_small_query_is_one_round_trip(
    proxied_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, proxy, conversation_id, _ = proxied_server
    by_id = {"query": CONVERSATION_BY_ID, "variables": {"id": conversation_id}}
    assert await round_trips(client, proxy, {"query": "{ __typename }"}) == 0
    assert await round_trips(client, proxy, by_id) == 1
    # a connection idle in the pool for longer than the window is pinged first
    monkeypatch.setattr(db.session, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert await round_trips(client, proxy, by_id) == 2


async def test_a_text_document_passing_once_does_not_pass_its_limits_later(
    proxied_server: Any,
) -> None:
    client, _, _, settings = proxied_server
    small = await client.post("/graphql", json={"query": PAGE, "variables": {"first": 1}})
    assert "errors" not in small.json(), small.text
    too_large = settings.max_page_size + 1
    for _ in range(2):
        refused = await client.post(
            "/graphql", json={"query": PAGE, "variables": {"first": too_large}}
        )
        codes = [error["extensions"]["code"] for error in refused.json()["errors"]]
        assert codes == ["PAGE_SIZE_TOO_LARGE"], refused.text
    for _ in range(2):  # a document that does not parse is refused every time
        broken = (await client.post("/graphql", json={"query": PAGE[:-2]})).json()
        assert broken.get("data") is None and broken["errors"][0]["message"].startswith(
            "Syntax Error"
        ), broken


async def test_a_text_document_with_a_lone_surrogate_is_refused_cleanly(
    proxied_server: Any,
) -> None:
    client, _, _, _ = proxied_server
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename conversation(id: \\"\\udc05\\") { id } }"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
    assert response.json()["errors"], response.text
