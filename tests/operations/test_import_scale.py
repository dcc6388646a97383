"""Import and the list-taking mutations at scale: work linear in the input, and an event loop that
keeps serving other clients meanwhile (issue 14, "No stalls").

The server runs in this process (`LiveServer`), so `time.thread_time()` around a request counts the
Python work of client and server, and none of PostgreSQL's: the figure that grows with the square
of a list when a mutation scans it inside a loop over it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

import asyncpg
import httpx
import pytest

from bench.importing import document
from db.settings import PROJECT_ROOT
from graph import jsonbody
from graph.heartbeat import EventLoopMonitor
from graph.services.transfer import loading
from tests.conftest import LiveServer, asyncpg_dsn, plain_url, server_settings
from tests.mutations import documents
from tests.mutations.invariants import violations

BODY_LIMIT = 50_000_000


@pytest.fixture(scope="module")
async def server(database_url: Any) -> AsyncIterator[str]:
    live = LiveServer(server_settings(database_url, max_body_bytes=BODY_LIMIT))
    await live.start()
    yield live.url
    await live.stop()


@pytest.fixture(scope="module")
async def client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=300) as http:
        yield http


@pytest.fixture
async def database(database_url: Any) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


async def call(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = next(iter(body["data"].values()))
    return data


async def worst_stall(client: httpx.AsyncClient) -> float:
    response = await client.get("/debug/event-loop")
    assert response.status_code == 200
    return float(response.json()["worstStallMs"]) / 1000


# -- the heartbeat ---------------------------------------------------------------------------


async def test_the_heartbeat_sees_a_blocked_loop_and_each_reader_keeps_its_own_figure() -> None:
    monitor = EventLoopMonitor(interval=0.01)
    first, second = monitor.window(), monitor.window()
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # holds the event loop, as a long CPU step would
        await asyncio.sleep(0.05)
        assert first.take() >= 0.25
        assert first.take() < 0.25  # taken: a new period began
        assert second.take() >= 0.25  # the other reader's figure was left alone
    finally:
        await monitor.stop()


async def test_the_debug_route_is_off_by_default(database_url: Any) -> None:
    live = LiveServer(server_settings(database_url, debug_sql_count=False))
    await live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url) as http:
            assert (await http.get("/debug/event-loop")).status_code == 404
    finally:
        await live.stop()


# -- large request bodies -------------------------------------------------------------------

PADDING = " " * jsonbody.SMALL_BYTES


@pytest.mark.parametrize(
    "text",
    [
        '{"query": "{ a }", "variables": {"document": {"nodes": [{"id": "n1", "x": [1, 2.5, null,'
        ' true, "\\u00e9\\ud83d\\ude00"]}, {}], "e": [], "o": {}}}, "extensions": null}',
        '[{"query": "q"}, {"query": "r", "variables": {"a": [[1, [2, [3]]]]}}]',
        '{"a": [1, 2,',
        '{"a" 1}',
        "[1, 2] x",
        '{"a": [1, }',
        '{"a": 1,}',
        '"just a string"',
    ],
)
async def test_a_large_body_parses_as_json_loads_parses_it(text: str) -> None:
    body = (PADDING + text + PADDING).encode()
    try:
        expected: Any = json.loads(body)
    except json.JSONDecodeError as error:
        expected = (error.msg, error.pos)
    try:
        parsed: Any = await jsonbody.loads(body)
    except json.JSONDecodeError as error:
        parsed = (error.msg, error.pos)
    assert parsed == expected


async def test_a_large_malformed_body_is_a_bad_request(client: httpx.AsyncClient) -> None:
    body = b'{"query": "{ __typename }", "variables": {"a": [' + b"1, " * 200_000 + b"}}"
    headers = {"content-type": "application/json"}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text[:300]
    assert (await client.get("/health")).status_code == 200


# -- a large import --------------------------------------------------------------------------


async def test_a_large_import_is_stored_whole_while_the_server_keeps_answering(
    client: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """2,000 nodes and 8,000 utterances (3.4 MB): the size that held the old server's event loop
    for seconds. Every row is stored as the document says, and /health answers meanwhile."""
    source = document(2_000, 8_000)
    await worst_stall(client)
    done = asyncio.Event()
    health: list[float] = []

    async def ping() -> None:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as pinger:
            while not done.is_set():
                started = time.perf_counter()
                assert (await pinger.get("/health")).status_code == 200
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

    pinging = asyncio.create_task(ping())
    started = time.perf_counter()
    try:
        result = await call(client, documents.IMPORT_CONVERSATION, document=source)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        await pinging
    stall = await worst_stall(client)
    assert result["__typename"] == "ImportConversationPayload", result
    assert len(health) >= 5, "the import ended before /health was asked: make it larger"
    # The old import held the loop for most of its time (its checks in one go). Bounds relative
    # to the import's own time hold on a loaded machine too, where everything is slower.
    print(f"import {elapsed:.2f} s, worst stall {stall:.3f} s, /health max {max(health):.3f} s")
    assert stall < 0.2 + elapsed / 4, (stall, elapsed)
    assert max(health) < 0.2 + elapsed / 4, (max(health), elapsed)

    ids = {reference: uuid.UUID(value) for reference, value in result["idMap"].items()}
    conversation_id = uuid.UUID(result["conversation"]["id"])
    assert result["conversation"]["totalNodes"] == 2_000
    assert result["conversation"]["totalUtterances"] == 8_000
    nodes = {
        row["id"]: row
        for row in await database.fetch(
            "SELECT * FROM nodes WHERE conversation_id = $1", conversation_id
        )
    }
    for item in source["nodes"]:
        row = nodes[ids[item["id"]]]
        assert row["node_name"] == item["nodeName"]
        assert row["parent_id"] == (ids[item["parentId"]] if "parentId" in item else None)
        assert row["predecessor_id"] == (
            ids[item["predecessorId"]] if "predecessorId" in item else None
        )
    owners = dict(
        await database.fetch(
            "SELECT id, node_id FROM utterances WHERE conversation_id = $1", conversation_id
        )
    )
    assert owners == {ids[item["id"]]: ids[item["nodeId"]] for item in source["utterances"]}
    counts = await database.fetchrow(
        "SELECT (SELECT count(*) FROM relationships WHERE conversation_id = $1) AS relationships,"
        " (SELECT count(*) FROM clusters WHERE conversation_id = $1) AS clusters,"
        " (SELECT count(*) FROM edits_log WHERE conversation_id = $1) AS edits",
        conversation_id,
    )
    assert dict(counts) == {name: len(source[name]) for name in counts.keys()}  # noqa: SIM118
    assert await violations(database, [conversation_id]) == []


async def test_an_error_deep_in_a_large_import_names_its_row_and_stores_nothing(
    client: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """PostgreSQL refuses one row deep in a section's `COPY`: the error names that row's path."""
    source = document(300, 6_000)
    source["utterances"][5_500]["sequenceNumber"] = 17  # a duplicate only the database sees
    before = await database.fetchval("SELECT count(*) FROM utterances")
    result = await call(client, documents.IMPORT_CONVERSATION, document=source)
    assert (result["__typename"], result["field"], result["code"]) == (
        "ValidationError",
        "utterances[5500].sequenceNumber",
        "DUPLICATE",
    )
    assert await database.fetchval("SELECT count(*) FROM utterances") == before


TWICE = """
mutation($document: JSON!) {
  first: importConversation(document: $document) {
    ... on ImportConversationPayload { conversation { totalNodes totalUtterances } }
  }
  second: importConversation(document: $document) {
    ... on ImportConversationPayload { conversation { totalNodes totalUtterances } }
  }
}"""


async def test_one_document_imported_twice_in_an_operation_is_imported_whole_twice(
    client: httpx.AsyncClient,
) -> None:
    """The import reads its document without changing it (the prepared rows are what it frees)."""
    response = await client.post(
        "/graphql", json={"query": TWICE, "variables": {"document": document(30, 90)}}
    )
    data = response.json()["data"]
    assert (
        data["first"]
        == data["second"]
        == {"conversation": {"totalNodes": 30, "totalUtterances": 90}}
    )


# -- linear work -----------------------------------------------------------------------------


def lines_run(function: Callable[[], Any]) -> int:
    """How many lines of Python `function` runs (comprehensions included): a count, not a time,
    so that the comparison below cannot be upset by a busy machine."""
    count = 0

    def trace(frame: FrameType, event: str, _: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        function()
    finally:
        sys.settrace(None)
    return count


def shaped(nodes: int, utterances: int) -> dict[str, Any]:
    """The shapes the old checks were quadratic in: a hierarchy as deep as the document, every
    utterance owned by one node, and many children listed by their parents."""
    source = document(nodes, utterances)
    for index, item in enumerate(source["nodes"]):
        item.pop("parentId", None)
        if index:
            item["parentId"] = f"n{index - 1}"
        if index + 1 < nodes:
            item["childrenIds"] = [f"n{index + 1}"]
    for item in source["utterances"]:
        item["nodeId"] = "n0"
    return source


def test_checking_a_document_runs_lines_in_proportion_to_its_size() -> None:
    small, large = shaped(200, 1_000), shaped(800, 4_000)
    ratio = lines_run(lambda: loading.prepare(large, False)) / lines_run(
        lambda: loading.prepare(small, False)
    )
    assert 3.5 < ratio < 4.5, ratio


class UuidComparisons:
    """Counts `uuid.UUID.__eq__` calls while on: a list scanned for a UUID compares it with each
    element, so a scan inside a loop over the same list makes the count grow with the square of
    the list, while dict and set look-ups compare almost never. A count, not a time: a busy
    machine cannot change it. The server runs in this process, so its comparisons are counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.on = False
        original = uuid.UUID.__eq__

        def counting(this: uuid.UUID, other: object) -> Any:
            if self.on:
                self.count += 1
            return original(this, other)

        monkeypatch.setattr(uuid.UUID, "__eq__", counting)

    async def during(self, action: Callable[[], Any]) -> int:
        self.count, self.on = 0, True
        try:
            await action()
        finally:
            self.on = False
        return self.count


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> UuidComparisons:
    return UuidComparisons(monkeypatch)


def linear(small: int, large: int) -> bool:
    """Four times the input, at most about four times the comparisons (quadratic: 16 times)."""
    return large <= 6 * small + 100


async def imported(client: httpx.AsyncClient, nodes: int, utterances: int) -> dict[str, str]:
    """A generated conversation (bench/importing.py); its id map."""
    result = await call(client, documents.IMPORT_CONVERSATION, document=document(nodes, utterances))
    assert result["__typename"] == "ImportConversationPayload", result
    id_map: dict[str, str] = result["idMap"]
    return id_map


async def test_import_compares_ids_in_proportion_to_the_document(
    client: httpx.AsyncClient, comparisons: UuidComparisons
) -> None:
    async def importing(nodes: int) -> Any:
        source = shaped(nodes, 5 * nodes)
        return await comparisons.during(
            lambda: call(client, documents.IMPORT_CONVERSATION, document=source)
        )

    small, large = await importing(200), await importing(800)
    assert linear(small, large), (small, large)


async def test_move_nodes_compares_ids_in_proportion_to_its_list(
    client: httpx.AsyncClient, comparisons: UuidComparisons
) -> None:
    ids = await imported(client, 1_200, 100)
    node_ids = [ids[f"n{index}"] for index in range(1_200)]

    async def moving(count: int) -> int:
        moves = [{"id": node, "canvasX": count, "canvasY": 7} for node in node_ids[:count]]

        async def run() -> None:
            result = await call(client, documents.MOVE_NODES, moves=moves)
            assert result["__typename"] == "NodesPayload", result

        return await comparisons.during(run)

    small, large = await moving(300), await moving(1_200)
    assert linear(small, large), (small, large)


def counted(comparisons: UuidComparisons, action: Callable[[], Any]) -> int:
    comparisons.count, comparisons.on = 0, True
    try:
        action()
    finally:
        comparisons.on = False
    return comparisons.count


def fresh(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


@pytest.mark.parametrize(
    "name",
    [
        "clusters.members_after",
        "merge_split.split_list",
        "merge_split.union",
        "hierarchy.in_listed_order",
    ],
)
def test_the_list_steps_of_the_mutations_compare_ids_in_proportion(
    comparisons: UuidComparisons, name: str
) -> None:
    """The list work of changeClusterMembership, splitNode, mergeNodes and deleting a node or a
    cluster (its children move up), on lists of plain UUIDs. Over HTTP the stored ids come back as
    asyncpg's own UUID type, whose comparisons this count cannot see, hence this level."""
    from graph.services import clusters, hierarchy, merge_split

    steps: dict[str, Callable[[list[uuid.UUID], list[uuid.UUID]], Any]] = {
        "clusters.members_after": lambda old, new: clusters.members_after(
            old, new + old[::2], old[1::2]
        ),
        "merge_split.split_list": lambda old, new: merge_split.split_list(
            old, set(copy.copy(old[::2]))
        ),
        "merge_split.union": lambda old, new: merge_split.union(old, new, list(reversed(old))),
        "hierarchy.in_listed_order": lambda old, new: hierarchy.in_listed_order(
            list(reversed(old)), [uuid.UUID(str(item)) for item in old]
        ),
    }
    step = steps[name]

    def run(count: int) -> int:
        old, new = fresh(count), fresh(count)
        return counted(comparisons, lambda: step(old, new))

    small, large = run(500), run(2_000)
    assert linear(small, large), (small, large)


async def test_append_utterances_takes_a_full_batch_of_full_rows(
    client: httpx.AsyncClient,
) -> None:
    """2,000 utterances with every field: 36,000 values, more than one statement can carry (the
    batch limit is 5,000), so the batch goes in by slices; a retry skips every one of them."""
    conversation = await call(
        client,
        documents.CREATE_CONVERSATION,
        input={"conversationName": "batch", "conversationType": "CHAT", "sourceType": "upload"},
    )
    utterances = [
        {
            "sequenceNumber": index,
            "text": f"line {index}",
            "speakerId": "ann",
            "speakerName": "Ann",
            "speakerRole": "host",
            "textCleaned": f"line {index}",
            "timestampStart": float(index),
            "timestampEnd": index + 0.5,
            "durationSeconds": 0.5,
            "chunkId": str(uuid.uuid4()),
            "threadId": str(uuid.uuid4()),
            "confidenceScore": 0.9,
            "language": "en",
            "emotion": "calm",
            "energyLevel": 0.3,
            "platformMetadata": {"index": index},
        }
        for index in range(2_000)
    ]
    conversation_id = conversation["conversation"]["id"]
    first = await call(
        client, documents.APPEND_UTTERANCES, conversationId=conversation_id, utterances=utterances
    )
    assert first["__typename"] == "AppendUtterancesPayload", first
    assert len(first["utterances"]) == 2_000
    assert first["conversation"]["totalUtterances"] == 2_000
    again = await call(
        client, documents.APPEND_UTTERANCES, conversationId=conversation_id, utterances=utterances
    )
    assert again["skippedSequenceNumbers"] == list(range(2_000))
    assert again["conversation"]["totalUtterances"] == 2_000


async def test_a_list_longer_than_a_statement_can_carry_is_a_typed_error(
    client: httpx.AsyncClient,
) -> None:
    """40,000 node ids (an `IN` list of one parameter each stops at 32,767): the answer is the
    not-found of the first one, not an internal error."""
    conversation = await call(
        client,
        documents.CREATE_CONVERSATION,
        input={"conversationName": "wide", "conversationType": "CHAT", "sourceType": "upload"},
    )
    result = await call(
        client,
        documents.CREATE_CLUSTER,
        input={
            "conversationId": conversation["conversation"]["id"],
            "clusterName": "everything",
            "nodeIds": [str(item) for item in fresh(40_000)],
        },
    )
    assert (result["__typename"], result["field"]) == ("NotFoundError", "nodeIds[0]"), result


def test_the_shapes_used_above_are_valid_documents() -> None:
    loading.prepare(copy.deepcopy(shaped(20, 40)), False)


def test_the_import_benchmark_runs_and_reports_every_figure(server_url: Any, tmp_path: Any) -> None:
    """`manage.py bench --phase import` at a tiny size, so that it cannot rot."""
    output = tmp_path / "import.json"
    arguments = ["--phase", "import", "--import-nodes", "40", "--import-utterances", "200"]
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quiet", *arguments, "--output", str(output)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": plain_url(server_url)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    figures = json.loads(output.read_text())["import"]
    assert figures["check"] == "complete"
    assert figures["rows"]["nodes"] == 40 and figures["rows"]["utterances"] == 200
    assert figures["worst_stall_ms"] is not None and figures["worst_stall_ms"] >= 0
    assert figures["seconds"] > 0 and figures["floor_seconds"] > 0
    assert "worst event-loop stall" in finished.stdout
