"""The request's session is never used by two coroutines at once, and failures stay masked."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import text

from db.session import create_session_factory
from db.settings import Settings
from graph.context import Context
from tests.conftest import LiveServer, server_settings


async def test_concurrent_fetches_take_turns_on_one_session(engine):
    context = Context(
        request=None,
        response=None,
        settings=Settings(_env_file=None),
        session_factory=create_session_factory(engine),
        viewer_id=None,
    )
    spans: list[tuple[float, float]] = []

    async def one(number: int) -> int:
        statement = text("SELECT pg_sleep(0.002), CAST(:n AS integer) AS n")
        rows = await context.fetch(statement, {"n": number})
        spans.append((time.perf_counter(), number))
        return int(rows[0].n)

    try:
        # Without the lock, the second statement would find the connection busy and fail.
        results = await asyncio.gather(*(one(number) for number in range(40)))
    finally:
        await context.close()
    assert results == list(range(40))
    assert len(spans) == 40


SIBLINGS = """
query ($id: ID!) {
  conversation(id: $id) {
    a: nodes(level: [1]) { totalCount }
    b: nodes(level: [2]) { totalCount }
    c: nodes(level: [3]) { totalCount }
    d: utterances(speakerId: ["spk_1"]) { totalCount }
    e: relationships(minStrength: 0.5) { totalCount }
    f: edits { totalCount }
    g: apiCalls { totalCount }
    h: clusters { id }
    i: rootNodes { id children { id } }
  }
  x: conversation(id: $id) { id }
  y: node(id: $id) { id }
  conversations(first: 5) { totalCount }
}
"""


async def test_sibling_fields_load_concurrently_on_one_session(graphql, conversations, db):
    responses = await asyncio.gather(
        *(graphql(SIBLINGS, id=str(conversations.large)) for _ in range(5))
    )
    levels = {
        row["level"]: row["count"]
        for row in await db.fetch(
            "SELECT level, count(*) FROM nodes WHERE conversation_id = $1 GROUP BY level",
            conversations.large,
        )
    }
    for response in responses:
        assert not response.errors, response.errors
        data = response.data["conversation"]
        assert [data[key]["totalCount"] for key in "abc"] == [levels[1], levels[2], levels[3]]
        assert response.data["x"] == response.data["y"] == {"id": str(conversations.large)}


async def test_unexpected_failures_are_masked(database_factory):
    # A database nobody migrated: every statement fails inside the driver.
    url = await database_factory.create()
    server = LiveServer(server_settings(url))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            response = await client.post(
                "/graphql",
                json={"query": "{ conversations { totalCount nodes { id } } }"},
                headers={"accept": "application/graphql-response+json"},
            )
    finally:
        await server.stop()
    assert response.status_code == 200
    body = response.json()
    (error,) = body["errors"]
    assert error["message"].startswith("Unexpected error; it was logged with id ")
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "conversations" not in error["message"] and "relation" not in response.text
    assert "asyncpg" not in response.text and "SELECT" not in response.text
