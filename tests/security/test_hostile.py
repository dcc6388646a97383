"""Hostile queries against a running server: each is refused with its own clear error (the
limits before any SQL runs), and meanwhile the server keeps answering an honest client.

The database of this server is made slow and broken on purpose, in the test database only: the
API call log is a view whose every row sleeps (`pg_sleep` in a SQL function), so reading it runs
past the server's 1-second statement timeout; and the clusters table is gone, so reading clusters
fails in a way the code did not expect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from tests.conftest import LiveServer, alembic_config, asyncpg_dsn, server_settings
from tests.security.conftest import AUDIENCE, ISSUER, OWNER, SECRET, auth_headers

TIMEOUT_MS = 1000
SLOW_ROWS = 12  # x 0.2 s per row: well past the timeout


class Hostile:
    def __init__(self, url: str, conversation_id: uuid.UUID) -> None:
        self.url = url
        self.conversation_id = str(conversation_id)


@pytest.fixture(scope="module")
async def hostile(database_factory: Any) -> AsyncIterator[Hostile]:
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        conversation_id = await generate_conversation(
            connection, nodes=30, seed=7, owner_id=OWNER, visibility="public"
        )
        await connection.execute(
            "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
            " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
            " total_cost, status, started_at)"
            " SELECT $1, 'e', 'f', 'p', 'm', 1, 1, 2, 0, 0, 0, 'ok', now()"
            " FROM generate_series(1, $2)",
            conversation_id,
            SLOW_ROWS,
        )
        await connection.execute(
            """
            CREATE FUNCTION slow_row() RETURNS boolean LANGUAGE sql VOLATILE
                AS $$ SELECT pg_sleep(0.2) IS NOT NULL $$;
            ALTER TABLE api_calls_log RENAME TO api_calls_log_rows;
            CREATE VIEW api_calls_log AS SELECT * FROM api_calls_log_rows WHERE slow_row();
            ALTER TABLE clusters RENAME TO clusters_gone;
            """
        )
    finally:
        await connection.close()
    server = LiveServer(
        server_settings(
            url,
            jwt_secret=SECRET,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            statement_timeout_ms=TIMEOUT_MS,
        )
    )
    await server.start()
    yield Hostile(server.url, conversation_id)
    await server.stop()


def depth_bomb(levels: int) -> str:
    return (
        "query($id: ID!) { conversation(id: $id) { nodes(first: 1) { nodes { "
        + "children { " * levels
        + "id"
        + " }" * levels
        + " } } } }"
    )


def alias_bomb(count: int) -> str:
    fields = " ".join(f"a{index}: conversation(id: $id) {{ id }}" for index in range(count))
    return f"query($id: ID!) {{ {fields} }}"


FRAGMENT_CYCLE = """
query($id: ID!) { conversation(id: $id) { ...A } }
fragment A on Conversation { id ...B }
fragment B on Conversation { conversationName ...A }
"""


def fragment_lattice(levels: int) -> str:
    """Each fragment spreads the next twice: 2^levels fields once expanded."""
    parts = ["query($id: ID!) { conversation(id: $id) { ...F0 } }"]
    parts += [f"fragment F{i} on Conversation {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on Conversation {{ name: conversationName }}")
    return "\n".join(parts)


OVERSIZED_PAGE = "query { conversations(first: 100000) { nodes { id } } }"
TOO_MANY_OBJECTS = """
query { conversations(first: 1000) { nodes {
  nodes(first: 1000) { nodes { outgoing { toNode { id } } } }
} } }"""
SLOW = "query($id: ID!) { conversation(id: $id) { apiCalls(first: 50) { nodes { id } } } }"
BROKEN = "query($id: ID!) { conversation(id: $id) { clusters { id clusterName } } }"
HONEST = """
query($id: ID!) { conversation(id: $id) { id conversationName nodes(first: 5) { nodes { id } } } }
"""


async def post(
    client: httpx.AsyncClient, document: str, conversation_id: str | None = None, **extra: Any
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    payload: Any = {"query": document, "variables": {"id": conversation_id}}
    response = await client.post("/graphql", json=payload, **extra)
    return response, time.monotonic() - started


def refused(response: httpx.Response, code: str | None) -> dict[str, Any]:
    body = response.json()
    assert body.get("data") is None, body
    errors = body["errors"]
    if code is not None:
        assert code in [(error.get("extensions") or {}).get("code") for error in errors], body
    # Limits are validation rules: no statement ran for the operation.
    statements = (body.get("extensions") or {}).get("sqlStatements")
    assert statements in (None, 0), body
    return body


async def test_attacks_are_refused_while_others_are_served(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="lct.errors")
    conversation_id = hostile.conversation_id
    headers = auth_headers("mallory")
    async with httpx.AsyncClient(base_url=hostile.url, headers=headers, timeout=60) as client:
        attack_done = asyncio.Event()
        honest_answers: list[tuple[float, float]] = []  # (finished at, seconds)
        slow_finished: list[float] = []

        async def honest_client() -> None:
            async with httpx.AsyncClient(base_url=hostile.url, timeout=60) as other:
                while not attack_done.is_set():
                    response, took = await post(other, HONEST, conversation_id)
                    body = response.json()
                    assert response.status_code == 200 and not body.get("errors"), body
                    assert body["data"]["conversation"]["id"] == conversation_id
                    honest_answers.append((time.monotonic(), took))
                    await asyncio.sleep(0.02)

        async def attacks() -> dict[str, float]:
            timings: dict[str, float] = {}

            async def run(name: str, document: str, code: str | None, status: int = 200) -> None:
                response, timings[name] = await post(client, document, conversation_id)
                assert response.status_code == status, (name, response.text[:300])
                body = refused(response, code)
                if name == "fragment cycle":
                    assert "Cannot spread fragment" in body["errors"][0]["message"], body

            async def slow() -> None:
                response, timings["statement timeout"] = await post(client, SLOW, conversation_id)
                slow_finished.append(time.monotonic())
                body = response.json()
                assert response.status_code == 200, response.text
                (error,) = body["errors"]
                assert error["extensions"]["code"] == "STATEMENT_TIMEOUT", body
                assert f"{TIMEOUT_MS} ms" in error["message"]
                assert "pg_sleep" not in json.dumps(body) and "canceling" not in json.dumps(body)

            async def huge_body() -> None:
                started = time.monotonic()
                response = await client.post(
                    "/graphql",
                    content=b'{"query": "' + b" " * 10_000_000 + b'{ __typename }"}',
                    headers={"content-type": "application/json"},
                )
                timings["10 MB body"] = time.monotonic() - started
                assert response.status_code == 413, response.text[:300]
                assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

            async def batch() -> None:
                started = time.monotonic()
                operations = [{"query": "{ __typename }"}] * 50
                response = await client.post("/graphql", json=operations)
                timings["batch of 50"] = time.monotonic() - started
                assert response.status_code == 400, response.text
                assert "at most 10 operations" in response.json()["errors"][0]["message"]
                allowed = await client.post("/graphql", json=operations[:3])
                assert [item["data"] for item in allowed.json()] == [{"__typename": "Query"}] * 3

            async def tokens() -> None:
                values = "CHAT " * 3000
                document = (
                    f"query {{ conversations(conversationType: [{values}]) {{ totalCount }} }}"
                )
                response, timings["3,000 tokens"] = await post(client, document)
                assert "more than 2000 tokens" in response.json()["errors"][0]["message"]

            await asyncio.gather(
                slow(),
                run("depth bomb", depth_bomb(40), "QUERY_TOO_DEEP"),
                run("alias bomb", alias_bomb(150), "TOO_MANY_ALIASES"),
                run("fragment cycle", FRAGMENT_CYCLE, None),
                run("fragment lattice", fragment_lattice(120), "TOO_MANY_ALIASES"),
                run("oversized page", OVERSIZED_PAGE, "PAGE_SIZE_TOO_LARGE"),
                run("object estimate", TOO_MANY_OBJECTS, "QUERY_TOO_COMPLEX"),
                huge_body(),
                batch(),
                tokens(),
            )
            return timings

        honest = asyncio.create_task(honest_client())
        await asyncio.sleep(0.2)
        try:
            timings = await attacks()
        finally:
            attack_done.set()
            await honest
        # An honest answer arrived while the slow query was still running on the server.
        (slow_end,) = slow_finished
        during = [finished for finished, _ in honest_answers if finished < slow_end]
        assert during, "no honest query was answered while the attack ran"
        for name, seconds in sorted(timings.items(), key=lambda item: item[1]):
            print(f"  {name:<20} refused in {seconds * 1000:7.1f} ms")
        latencies = sorted(took for _, took in honest_answers)
        print(
            f"  honest client: {len(latencies)} answers during the attack,"
            f" median {latencies[len(latencies) // 2] * 1000:.1f} ms,"
            f" max {latencies[-1] * 1000:.1f} ms"
        )

        # A failure the code did not expect is masked, and its id leads to the logged details.
        response, _ = await post(client, BROKEN, conversation_id)
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR", error
        error_id = error["extensions"]["errorId"]
        assert error["message"] == f"Unexpected error; it was logged with id {error_id}."
        text = json.dumps(response.json())
        assert "clusters_gone" not in text and "does not exist" not in text, text
        logged = [record for record in caplog.records if error_id in record.getMessage()]
        assert logged and logged[0].exc_info is not None
        assert "clusters" in str(logged[0].exc_info[1])
