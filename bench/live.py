"""The benchmark's subscription phase: N WebSocket subscribers on one conversation, one writer.

    python3 manage.py bench --subscribers 2000 --live-changes 30

Starts its own `python -m graph.serve` (one process) on the benchmark's database, opens
`subscribers` graphql-transport-ws connections, each with the same `conversationChanged`
subscription, and measures:

- the server's RSS before and after they are all subscribed and idle: KB per idle subscriber;
- delivery latency: receipt time minus the change's `at` (written by the trigger in the writing
  transaction, just before its commit), for every subscriber and change, at `rate` changes a
  second (`moveNodes` over HTTP), p50 / p99 / max;
- SQL statements per change: the statements of the change's resolution (`extensions` with
  LCT_DEBUG_SQL_COUNT) plus the channel's one read of the change, and how many subscribers shared
  that resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import websockets
from sqlalchemy.engine import URL

DOCUMENT = """
subscription($id: ID!) {
  conversationChanged(id: $id) { cursor kind at nodes { id canvasX canvasY } }
}"""

CREATE = """
mutation { createConversation(input: {conversationName: "live bench", conversationType: CHAT,
  sourceType: "bench"}) { ... on ConversationPayload { conversation { id } } } }"""

NODE = """
mutation($id: ID!) { createNode(input: {conversationId: $id, nodeName: "moving", summary: "s"})
  { ... on NodePayload { node { id } } } }"""

MOVE = """
mutation($id: ID!, $x: Int!) { moveNodes(moves: [{id: $id, canvasX: $x, canvasY: 0}])
  { __typename } }"""


def _rss_kb(pid: int) -> int:
    from bench.processes import process_tree as _process_tree
    from bench.processes import status_kb as _status_kb

    return sum(_status_kb(child, "VmRSS") for child in _process_tree(pid))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Connection:
    """One subscriber: its socket and the (receipt time, message) pairs it got."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            async for raw in self.socket:
                self.received.append((time.time(), json.loads(raw)))


async def _subscribe(url: str, conversation: str) -> Connection:
    socket = await websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], max_queue=None
    )
    await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    await socket.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": DOCUMENT, "variables": {"id": conversation}},
            }
        )
    )
    connection = Connection(socket)
    connection.task = asyncio.create_task(connection.listen())
    return connection


async def measure_live(
    database: URL,
    subscribers: int,
    changes: int,
    log: Callable[[str], None],
    rate: float = 1.0,
) -> dict[str, Any]:
    from bench.server import Server

    os.environ["LCT_LIVE_MAX_CONNECTIONS"] = str(subscribers + 100)
    try:
        server = Server(database, 1, 1000)
    finally:
        del os.environ["LCT_LIVE_MAX_CONNECTIONS"]
    connections: list[Connection] = []
    registered = 0
    connect_seconds = 0.0
    try:
        await server.ready()
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:

            async def gql(query: str, **variables: Any) -> dict[str, Any]:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                body: dict[str, Any] = response.json()
                assert not body.get("errors"), body
                return body["data"]

            conversation = (await gql(CREATE))["createConversation"]["conversation"]["id"]
            node = (await gql(NODE, id=conversation))["createNode"]["node"]["id"]
            await asyncio.sleep(1)
            rss_before = _rss_kb(server.process.pid)
            url = server.base.replace("http", "ws", 1) + "/graphql"
            started = time.monotonic()
            for start in range(0, subscribers, 100):
                batch = range(start, min(start + 100, subscribers))
                connections += await asyncio.gather(*(_subscribe(url, conversation) for _ in batch))
            # graphql-transport-ws does not acknowledge a subscribe: a first change received
            # by every connection says that every subscription is registered.
            # A subscription started after a change does not get it: one every 2 s until
            # every connection has one.
            deadline = time.monotonic() + 600
            warm_up = 0
            while time.monotonic() < deadline and not all(c.received for c in connections):
                warm_up -= 1  # a move to where the node already is changes nothing
                await gql(MOVE, id=node, x=warm_up)
                await asyncio.sleep(2)
            connect_seconds = time.monotonic() - started
            registered = sum(1 for connection in connections if connection.received)
            for connection in connections:
                connection.received.clear()
            await asyncio.sleep(3)  # the server idle
            rss_after = _rss_kb(server.process.pid)
            log(
                f"live: {registered}/{subscribers} subscribed in {connect_seconds:.1f} s,"
                f" RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB"
            )

            writes: list[float] = []
            for number in range(changes):
                began = time.monotonic()
                await gql(MOVE, id=node, x=number)
                writes.append(time.monotonic() - began)
                await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - began)))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                len(connection.received) < changes for connection in connections
            ):
                await asyncio.sleep(0.2)
    finally:
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.socket.close()
            if connection.task is not None:
                connection.task.cancel()
        server.stop()

    latencies: list[float] = []
    statements: set[int] = set()
    shared: list[int] = []
    errors = 0
    first_error = None
    for connection in connections:
        for received_at, message in connection.received:
            payload = message.get("payload") or {}
            if message.get("type") != "next" or payload.get("errors"):
                errors += 1
                first_error = first_error or json.dumps(message)[:300]
                continue
            change = payload["data"]["conversationChanged"]
            written = datetime.fromisoformat(change["at"]).timestamp()
            latencies.append((received_at - written) * 1000)
            extensions = payload.get("extensions") or {}
            if "sqlStatements" in extensions:
                statements.add(int(extensions["sqlStatements"]))
                shared.append(int(extensions.get("sharedBy") or 0))
    expected = subscribers * changes
    return {
        "subscribers": subscribers,
        "changes": changes,
        "rate_per_second": rate,
        "delivered": len(latencies),
        "expected": expected,
        "errors": errors,
        "first_error": first_error,
        "connect_seconds": round(connect_seconds, 1),
        "registered": registered,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 1) if latencies else None,
            "p99": round(_percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
        "write_ms_p50": round(statistics.median(writes) * 1000, 1) if writes else None,
        # the resolution's statements, plus the channel's one read of the change
        "sql_statements_per_change": (max(statements) + 1) if statements else None,
        "resolution_shared_by": max(shared) if shared else None,
        "rss_mb_before": round(rss_before / 1024, 1),
        "rss_mb_idle_subscribed": round(rss_after / 1024, 1),
        "rss_kb_per_idle_subscriber": round((rss_after - rss_before) / max(subscribers, 1), 1),
    }


def lines(live: dict[str, Any]) -> list[str]:
    """The phase's lines of the printed table."""
    latency = live["latency_ms"]
    return [
        f"subscriptions: {live['subscribers']} subscribers, {live['changes']} changes at"
        f" {live['rate_per_second']:g}/s: delivered {live['delivered']}/{live['expected']},"
        f" errors {live['errors']}",
        f"  delivery latency (change written -> received) p50 {latency['p50']} ms,"
        f" p99 {latency['p99']} ms, max {latency['max']} ms",
        f"  SQL statements per change {live['sql_statements_per_change']}"
        f" (one resolution shared by {live['resolution_shared_by']} subscribers)",
        f"  server RSS {live['rss_mb_before']} -> {live['rss_mb_idle_subscribed']} MB:"
        f" {live['rss_kb_per_idle_subscriber']} KB per idle subscriber",
    ]
