"""The benchmark: generated conversations, the real server under uvicorn, figures over HTTP.

    python3 manage.py bench [--sizes 100,1000,10000] [--compare bench/results/<file>.json] ...

1. creates a database of its own on the configured server (`DATABASE_URL`, or the embedded one),
   migrates it and fills it with one generated conversation per size (5 utterances and about 3
   relationships per node, nested clusters, edits and API calls) and a few hundred small ones;
2. measures the floor: PostgreSQL building the canvas data as one JSON document (one statement
   with `json_agg`, through asyncpg);
3. starts `python -m graph.serve` as a subprocess and sends, over HTTP, the canvas query, a
   five-level traversal, a page of the conversation list, a refetch by id and a canvas move: p50
   and p99 latency one at a time, throughput at each concurrency, SQL statements per request,
   response bytes and the server's peak RSS in each phase;
4. with `--workers 1,2` (the default) it measures throughput again with two uvicorn workers;
5. prints a table and writes every figure as JSON (`bench/results/`), and with `--compare` shows
   the change from a saved run.

Client, server and PostgreSQL share this machine's cores, as they do on a developer's machine;
the figures say so with the core count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import URL

from bench import documents, importing
from bench.importing import event_loop_stall
from bench.live import lines as live_lines
from bench.live import measure_live
from db.demo import generate_conversation, generate_small_conversations
from db.session import SESSION_SETTINGS
from db.settings import PROJECT_ROOT, Settings, connect_arguments, resolve_database_url
from graph.serve import asyncpg_dsn, migrate

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
SQL_COUNT = re.compile(rb'"sqlStatements":\s*(\d+)')


@dataclass
class Figures:
    """One operation at one size."""

    operation: str
    size: int | None
    requests: int = 0
    errors: int = 0
    first_error: str | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    throughput: dict[str, float] = field(default_factory=dict)  # "c8": requests per second
    throughput_errors: dict[str, int] = field(default_factory=dict)
    sql_statements: int | None = None
    response_bytes: int | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # per phase: "c1", "c8", ...
    # per throughput phase: CPU cores kept busy by the server's processes and by the machine
    cpu_cores: dict[str, dict[str, float]] = field(default_factory=dict)
    # per phase: the server's worst event-loop stall (its heartbeat; one worker's with several)
    worst_stall_ms: dict[str, float | None] = field(default_factory=dict)
    note: str | None = None


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(figures: Figures, latencies: list[float]) -> None:
    if not latencies:
        return
    figures.p50_ms = round(statistics.median(latencies) * 1000, 3)
    figures.p90_ms = round(_percentile(latencies, 0.90) * 1000, 3)
    figures.p99_ms = round(_percentile(latencies, 0.99) * 1000, 3)
    figures.max_ms = round(max(latencies) * 1000, 3)
    figures.mean_ms = round(statistics.fmean(latencies) * 1000, 3)


# -- the server process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _process_tree(pid: int) -> list[int]:
    """The pid and its descendants (uvicorn's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of the processes (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, over all cores (Linux /proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


class CpuMeter:
    """How many cores the server and the whole machine kept busy during one phase."""

    def __init__(self, server: Server) -> None:
        self.pids = _process_tree(server.process.pid)
        self.started = time.perf_counter()
        self.server = _cpu_seconds(self.pids)
        self.machine = _machine_busy_seconds()

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        return {
            "server": round((_cpu_seconds(self.pids) - self.server) / elapsed, 2),
            "machine": round((_machine_busy_seconds() - self.machine) / elapsed, 2),
        }


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class GraphQLProcess:
    """A GraphQL server run as a subprocess on a free port, its output kept for errors."""

    def __init__(self, command: list[str], cwd: Path, environment: dict[str, str], port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.output.extend(stdout), daemon=True).start()

    async def ready(self, timeout: float = 120) -> None:
        """Returns once `{ __typename }` is answered; raises with the output if it never is."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError("the server exited:\n" + "".join(self.output[-30:]))
                try:
                    response = await client.post(
                        f"{self.base}/graphql", json={"query": "{ __typename }"}
                    )
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not answer:\n" + "".join(self.output[-30:]))
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Server(GraphQLProcess):
    """`python -m graph.serve` on a free port, against the benchmark's database."""

    def __init__(self, database: URL, workers: int, max_page_size: int) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": asyncpg_dsn(database),
            "LCT_DEBUG_SQL_COUNT": "1",
            "LCT_DEMO": "0",
            # the defaults refuse a 10,000-node page and the five-level traversal (each unpaged
            # list counts as a full page in the cost estimate), so the benchmark raises both
            "LCT_MAX_PAGE_SIZE": str(max(max_page_size, 1000)),
            "LCT_MAX_NODES": str(10**12),
        }
        port = _free_port()
        command = [sys.executable, "-m", "graph.serve", "--port", str(port)]
        command += ["--workers", str(workers), "--no-demo", "--no-access-log"]
        super().__init__(command, PROJECT_ROOT, environment, port)

    def reset_peak_rss(self) -> None:
        """Linux: writing 5 to clear_refs resets VmHWM, so each phase gets its own peak."""
        for pid in _process_tree(self.process.pid):
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        """The largest peak resident set of the server's processes since the last reset."""
        peaks = [_status_kb(pid, "VmHWM") for pid in _process_tree(self.process.pid)]
        return round(max(peaks, default=0) / 1024, 1)


# -- load --------------------------------------------------------------------------------------


@dataclass
class Request:
    query: str
    variables: Callable[[int], dict[str, Any]]
    expect: re.Pattern[bytes] | None = None  # in every good response (a mutation's success type)


def _is_error(status: int, body: bytes) -> str | None:
    """Cheap on a 10 MB body: strawberry writes `errors` after `data`, before `extensions`."""
    if status != 200:
        return f"HTTP {status}: {body[:300]!r}"
    if body.startswith(b'{"errors"') or b'"errors"' in body[-4096:]:
        return body[-600:].decode(errors="replace")
    return None


async def _send(
    client: httpx.AsyncClient, request: Request, index: int
) -> tuple[float, bytes, str | None]:
    payload = {"query": request.query, "variables": request.variables(index)}
    started = time.perf_counter()
    response = await client.post("/graphql", json=payload)
    body = response.content
    elapsed = time.perf_counter() - started
    error = _is_error(response.status_code, body)
    if error is None and request.expect is not None and not request.expect.search(body):
        error = body[:600].decode(errors="replace")
    return elapsed, body, error


async def _run(
    client: httpx.AsyncClient,
    request: Request,
    *,
    concurrency: int,
    count: int,
    duration: float,
    minimum: int,
) -> tuple[list[float], float, int, str | None, bytes | None]:
    """Sends up to `count` requests (no new one after `duration` s once `minimum` are done) from
    `concurrency` loops; returns latencies, elapsed time, errors, the first error, a body."""
    next_index = 0
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    sample: bytes | None = None
    started = time.perf_counter()

    async def loop() -> None:
        nonlocal next_index, errors, first_error, sample
        while next_index < count:
            if len(latencies) >= minimum and time.perf_counter() - started > duration:
                return
            index = next_index
            next_index += 1
            elapsed, body, error = await _send(client, request, index)
            latencies.append(elapsed)
            if error is not None:
                errors += 1
                first_error = first_error or error
            elif sample is None:
                sample = body

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors, first_error, sample


async def measure(
    server: Server,
    figures: Figures,
    request: Request,
    *,
    concurrencies: list[int],
    count: int,
    duration: float,
) -> None:
    limits = httpx.Limits(max_connections=max([1, *concurrencies]), max_keepalive_connections=64)
    # no timeout: at concurrency 32 a 10,000-node canvas waits for 31 others on one event loop
    async with httpx.AsyncClient(base_url=server.base, timeout=None, limits=limits) as client:
        # warm-up: connections, prepared statements, caches; also the figures of one response
        for index in range(2):
            _, body, error = await _send(client, request, index)
            if error:
                figures.errors += 1
                figures.first_error = error
                return
            figures.response_bytes = len(body)
            counted = SQL_COUNT.search(body[-400:])
            figures.sql_statements = int(counted.group(1)) if counted else None
        server.reset_peak_rss()
        await event_loop_stall(client)
        latencies, _, errors, first_error, _ = await _run(
            client, request, concurrency=1, count=count, duration=duration, minimum=5
        )
        figures.worst_stall_ms["c1"] = await event_loop_stall(client)
        figures.peak_rss_mb["c1"] = server.peak_rss_mb()
        figures.requests = len(latencies)
        figures.errors += errors
        figures.first_error = figures.first_error or first_error
        _summary(figures, latencies)
        for concurrency in concurrencies:
            server.reset_peak_rss()
            await event_loop_stall(client)
            meter = CpuMeter(server)
            done, elapsed, errors, first_error, _ = await _run(
                client,
                request,
                concurrency=concurrency,
                count=max(count, 4 * concurrency),
                duration=duration,
                minimum=concurrency,
            )
            figures.worst_stall_ms[f"c{concurrency}"] = await event_loop_stall(client)
            figures.peak_rss_mb[f"c{concurrency}"] = server.peak_rss_mb()
            figures.cpu_cores[f"c{concurrency}"] = meter.cores()
            # successes only: a request refused or timed out fast is no throughput
            figures.throughput[f"c{concurrency}"] = round((len(done) - errors) / elapsed, 2)
            figures.throughput_errors[f"c{concurrency}"] = errors
            figures.first_error = figures.first_error or first_error


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Dataset:
    database: URL
    conversations: dict[int, uuid.UUID]  # size -> id
    node_ids: dict[int, list[uuid.UUID]]  # size -> some level-5 node ids
    relationship_counts: dict[int, int]
    generation_seconds: dict[str, float]


async def create_dataset(
    server_url: URL, sizes: list[int], small: int, owner: str, log: Callable[[str], None]
) -> Dataset:
    name = f"lct_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(**connect_arguments(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    database = server_url.set(database=name)
    log(f"database {name}: migrating and generating {sizes} + {small} small conversations")
    await asyncio.to_thread(migrate, database)
    connection = await asyncpg.connect(**connect_arguments(database))
    conversations: dict[int, uuid.UUID] = {}
    node_ids: dict[int, list[uuid.UUID]] = {}
    relationship_counts: dict[int, int] = {}
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        await generate_small_conversations(connection, count=small, seed=1, owner_ids=(owner,))
        timings[f"{small}_small"] = round(time.perf_counter() - started, 3)
        for size in sizes:
            started = time.perf_counter()
            conversations[size] = await generate_conversation(
                connection, nodes=size, seed=size, owner_id=owner, name=f"Benchmark, {size} nodes"
            )
            timings[str(size)] = round(time.perf_counter() - started, 3)
            rows = await connection.fetch(
                "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY level DESC, id LIMIT 200",
                conversations[size],
            )
            node_ids[size] = [row["id"] for row in rows]
            relationship_counts[size] = await connection.fetchval(
                "SELECT count(*) FROM relationships WHERE conversation_id = $1",
                conversations[size],
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return Dataset(database, conversations, node_ids, relationship_counts, timings)


async def drop_database(server_url: URL, database: URL) -> None:
    admin = await asyncpg.connect(**connect_arguments(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def measure_floor(
    dataset: Dataset, size: int, *, count: int, duration: float
) -> dict[str, Any]:
    connection = await asyncpg.connect(**connect_arguments(dataset.database))
    try:
        # the server's session settings, so that the floor runs under the same planner
        for name, value in SESSION_SETTINGS.items():
            await connection.execute(f"SET {name} = '{value}'")
        statement = await connection.prepare(documents.CANVAS_FLOOR_SQL)
        conversation_id = dataset.conversations[size]
        document = await statement.fetchval(conversation_id, size)
        latencies: list[float] = []
        started = time.perf_counter()
        while len(latencies) < count and (
            len(latencies) < 10 or time.perf_counter() - started < duration
        ):
            begun = time.perf_counter()
            await statement.fetchval(conversation_id, size)
            latencies.append(time.perf_counter() - begun)
    finally:
        await connection.close()
    data = json.loads(document)["data"]["conversation"]["nodes"]["nodes"]
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "requests": len(latencies),
        "response_bytes": len(document.encode()),
        "nodes": len(data),
        "relationships": sum(len(node["outgoing"]) for node in data),
    }


async def check_canvas(server: Server, dataset: Dataset, size: int) -> str | None:
    """The canvas response is complete: every node and every relationship, compared with the
    database's counts. A fast wrong answer is no result."""
    async with httpx.AsyncClient(base_url=server.base, timeout=120) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": documents.CANVAS,
                "variables": {"id": str(dataset.conversations[size]), "first": size},
            },
        )
    body = response.json()
    if body.get("errors"):
        return f"errors: {json.dumps(body['errors'])[:300]}"
    nodes = body["data"]["conversation"]["nodes"]
    relationships = sum(len(node["outgoing"]) for node in nodes["nodes"])
    if nodes["totalCount"] != size or len(nodes["nodes"]) != size:
        return (
            f"expected {size} nodes, got {len(nodes['nodes'])} (totalCount {nodes['totalCount']})"
        )
    if relationships != dataset.relationship_counts[size]:
        return f"expected {dataset.relationship_counts[size]} relationships, got {relationships}"
    return None


async def mutation_available(server: Server) -> bool:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        response = await client.post("/graphql", json={"query": documents.MUTATION_FIELDS})
    mutation_type = response.json().get("data", {}).get("__schema", {}).get("mutationType")
    return bool(mutation_type) and any(
        item["name"] == "moveNodes" for item in mutation_type["fields"]
    )


def operations(dataset: Dataset, size: int, page: int) -> dict[str, Request]:
    conversation = str(dataset.conversations[size])
    nodes = [str(node) for node in dataset.node_ids[size]]
    return {
        "canvas": Request(documents.CANVAS, lambda _: {"id": conversation, "first": size}),
        "traversal": Request(documents.TRAVERSAL, lambda _: {"id": conversation}),
        "refetch": Request(documents.REFETCH, lambda index: {"id": nodes[index % len(nodes)]}),
        "move": Request(
            documents.MOVE_NODE,
            expect=re.compile(rb'"__typename":\s*"NodesPayload"'),
            variables=lambda index: {
                "moves": [
                    {
                        "id": nodes[index % len(nodes)],
                        "canvasX": 1000 + index % 977,
                        "canvasY": 500 + index % 613,
                    }
                ]
            },
        ),
        "list": Request(documents.CONVERSATION_LIST, lambda _: {"first": page}),
    }


async def run(arguments: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    settings = Settings()
    server_url = resolve_database_url(settings)
    sizes: list[int] = arguments.sizes
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "sizes": sizes,
            "small_conversations": arguments.small,
            "requests": arguments.requests,
            "duration_s": arguments.duration,
            "concurrency": arguments.concurrency,
            "workers": arguments.workers,
            "list_page": arguments.page,
        },
    }
    dataset = await create_dataset(server_url, sizes, arguments.small, settings.dev_user_id, log)
    result["generation_seconds"] = dataset.generation_seconds
    try:
        connection = await asyncpg.connect(**connect_arguments(dataset.database))
        try:
            result["postgresql"] = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        floor: dict[str, Any] = {}
        for size in sizes:
            floor[str(size)] = await measure_floor(
                dataset, size, count=arguments.requests, duration=arguments.duration
            )
            log(f"floor {size}: p50 {floor[str(size)]['p50_ms']} ms")
        result["floor"] = floor
        result["operations"] = []
        result["scaling"] = {}
        for workers in arguments.workers:
            server = Server(dataset.database, workers, max(sizes))
            try:
                await server.ready()
                log(f"server with {workers} worker(s) on {server.base}")
                if workers == arguments.workers[0]:
                    await _all_operations(server, dataset, arguments, result, log)
                else:
                    await _scaling(server, dataset, arguments, result, workers, log)
            finally:
                server.stop()
        if arguments.peers:
            from bench.peers import measure_peers

            result["peers"] = await measure_peers(
                dataset.database,
                str(dataset.conversations[sizes[0]]),
                lambda url: Server(url, 1, max(sizes)),
                duration=arguments.duration,
                log=log,
            )
        if arguments.planner:
            from bench.planner import measure_planner

            result["planner"] = await measure_planner(
                server_url,
                settings.dev_user_id,
                size=1000 if 1000 in sizes else max(sizes),
                others=arguments.planner_others,
                count=arguments.requests,
                duration=arguments.duration,
                log=log,
            )
        if arguments.subscribers:  # the subscription phase (bench/live.py)
            result["live"] = await measure_live(
                dataset.database, arguments.subscribers, arguments.live_changes, log
            )
    finally:
        if arguments.keep_database:
            log(f"kept database {dataset.database.database}")
        else:
            await drop_database(server_url, dataset.database)
    result["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    _derive(result)
    return result


async def _all_operations(
    server: Server,
    dataset: Dataset,
    arguments: argparse.Namespace,
    result: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    has_mutation = await mutation_available(server)
    result["canvas_check"] = {}
    for size in arguments.sizes:
        problem = await check_canvas(server, dataset, size)
        result["canvas_check"][str(size)] = problem or "complete"
        for name, request in operations(dataset, size, arguments.page).items():
            if name == "list" and size != arguments.sizes[0]:
                continue  # the list does not depend on the conversation's size
            figures = Figures(name, None if name == "list" else size)
            if name == "move" and not has_mutation:
                figures.note = "unavailable: the schema has no moveNodes mutation"
                result["operations"].append(asdict(figures))
                continue
            await measure(
                server,
                figures,
                request,
                concurrencies=arguments.concurrency,
                count=arguments.requests,
                duration=arguments.duration,
            )
            result["operations"].append(asdict(figures))
            log(
                f"{name:<9} {size if figures.size else '-':>6}: p50 {figures.p50_ms} ms, "
                f"p99 {figures.p99_ms} ms, {figures.throughput} req/s, "
                f"{figures.sql_statements} SQL, {figures.response_bytes} B, errors {figures.errors}"
            )


async def _scaling(
    server: Server,
    dataset: Dataset,
    arguments: argparse.Namespace,
    result: dict[str, Any],
    workers: int,
    log: Callable[[str], None],
) -> None:
    """Throughput with more workers, for the operations whose cost is the server's own."""
    size = 1000 if 1000 in arguments.sizes else arguments.sizes[len(arguments.sizes) // 2]
    chosen = operations(dataset, size, arguments.page)
    for name in ("canvas", "refetch", "list"):
        figures = Figures(name, None if name == "list" else size)
        await measure(
            server,
            figures,
            chosen[name],
            concurrencies=arguments.concurrency,
            count=arguments.requests,
            duration=arguments.duration,
        )
        result["scaling"].setdefault(f"workers_{workers}", []).append(asdict(figures))
        log(
            f"{workers} workers, {name} {figures.size or '-'}: {figures.throughput} req/s,"
            f" CPU cores busy (server / machine) {figures.cpu_cores}"
        )


def _derive(result: dict[str, Any]) -> None:
    """The ratios the issue asks for: canvas p50 over the floor, and p50 per node."""
    derived: dict[str, Any] = {}
    for item in result.get("operations", []):
        if item["operation"] != "canvas" or item["p50_ms"] is None:
            continue
        size = str(item["size"])
        floor = result["floor"].get(size)
        derived[size] = {
            "canvas_p50_ms": item["p50_ms"],
            "floor_p50_ms": floor["p50_ms"] if floor else None,
            "ratio_to_floor": round(item["p50_ms"] / floor["p50_ms"], 2) if floor else None,
            "p50_us_per_node": round(item["p50_ms"] * 1000 / int(size), 2),
            "floor_us_per_node": round(floor["p50_ms"] * 1000 / int(size), 2) if floor else None,
        }
    result["canvas_vs_floor"] = derived
    single = {
        (item["operation"], item["size"]): item["throughput"]
        for item in result.get("operations", [])
    }
    scaling: dict[str, Any] = {}
    for key, items in result.get("scaling", {}).items():
        for item in items:
            base = single.get((item["operation"], item["size"]), {})
            for concurrency, value in item["throughput"].items():
                if base.get(concurrency):
                    name = f"{item['operation']}@{item['size'] or '-'} {concurrency}"
                    scaling.setdefault(key, {})[name] = round(value / base[concurrency], 2)
    result["scaling_ratio"] = scaling


def _cpu_lines(result: dict[str, Any]) -> list[str]:
    """One line per operation of the scaling comparison: where the machine's cores went."""
    scaling = result.get("scaling", {})
    runs = {"workers_1": result.get("operations", []), **scaling}
    names = {(item["operation"], item["size"]) for items in scaling.values() for item in items}
    lines = []
    for operation, size in sorted(names, key=str):
        parts = []
        for key, items in runs.items():
            for item in items:
                if (item["operation"], item["size"]) == (operation, size):
                    cores = ", ".join(
                        f"{phase} {value['server']}/{value['machine']}"
                        for phase, value in item.get("cpu_cores", {}).items()
                    )
                    parts.append(f"{key.replace('_', ' ')}: {cores}")
        lines.append(f"  {operation}@{size or '-'}: " + "; ".join(parts))
    return lines


def _git(*arguments: str) -> str:
    try:
        return subprocess.run(
            ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- output ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    concurrencies = [f"c{c}" for c in result["settings"]["concurrency"]]
    header = ["operation", "nodes", "p50 ms", "p99 ms", *[f"{c} req/s" for c in concurrencies],
              "SQL", "bytes", "peak RSS MB", "stall ms", "errors"]  # fmt: skip
    rows = [header]
    for item in result["operations"]:
        if item.get("note"):
            rows.append([item["operation"], _cell(item["size"]), item["note"]])
            continue
        errors = item["errors"] + sum(item["throughput_errors"].values())
        rows.append(
            [
                item["operation"],
                _cell(item["size"]),
                _cell(item["p50_ms"]),
                _cell(item["p99_ms"]),
                *[_cell(item["throughput"].get(c)) for c in concurrencies],
                _cell(item["sql_statements"]),
                _cell(item["response_bytes"]),
                _cell(max(item["peak_rss_mb"].values(), default=None)),
                _cell(max((v for v in item.get("worst_stall_ms", {}).values() if v), default=None)),
                str(errors),
            ]
        )
    widths = [
        max(len(row[i]) for row in rows if len(row) == len(header)) for i in range(len(header))
    ]
    lines = []
    for row in rows:
        if len(row) == 3 and len(header) > 3:
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")
        else:
            lines.append(
                "  ".join(
                    cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                    for i, cell in enumerate(row)
                )
            )
    lines.append("")
    lines.append("canvas vs the SQL floor (one json_agg statement through asyncpg):")
    for size, item in result["canvas_vs_floor"].items():
        lines.append(
            f"  {size:>6} nodes: canvas p50 {_cell(item['canvas_p50_ms'])} ms, floor p50 "
            f"{_cell(item['floor_p50_ms'])} ms, ratio {_cell(item['ratio_to_floor'])}x; "
            f"{_cell(item['p50_us_per_node'])} us/node (floor {_cell(item['floor_us_per_node'])})"
        )
    for key, ratios in result.get("scaling_ratio", {}).items():
        shown = ", ".join(f"{name} {ratio}x" for name, ratio in ratios.items())
        lines.append(f"throughput with {key.replace('_', ' ')} vs 1: {shown}")
    busy = _cpu_lines(result)
    if busy:
        lines.append("CPU cores busy in the throughput phases (server processes / whole machine):")
        lines.extend(busy)
    checks = result.get("canvas_check", {})
    if checks:
        lines.append(
            "canvas responses checked against the database: "
            + ", ".join(f"{size}: {state}" for size, state in checks.items())
        )
    if "live" in result:
        lines.extend(live_lines(result["live"]))
    machine = result["machine"]
    lines.append(
        f"commit {result['commit']}{' (dirty)' if result['dirty'] else ''}, "
        f"{machine['cpus']} CPUs shared by client, server and PostgreSQL "
        f"{result.get('postgresql', '?')}, Python {machine['python']}; load average "
        f"{machine['load_average_at_start'][0]} at start, "
        f"{machine.get('load_average_at_end', ['?'])[0]} at end"
    )
    return "\n".join(lines)


def compare(result: dict[str, Any], saved: dict[str, Any]) -> str:
    """Change from a saved run, per operation and size: p50 and throughput (negative is better
    for latency, positive for throughput)."""

    def key(item: dict[str, Any]) -> tuple[str, Any]:
        return item["operation"], item["size"]

    before = {key(item): item for item in saved.get("operations", [])}
    lines = [f"compared with {saved.get('commit')} ({saved.get('started_at')}):"]
    for item in result["operations"]:
        old = before.get(key(item))
        if old is None or item["p50_ms"] is None or old.get("p50_ms") is None:
            continue
        change = (item["p50_ms"] - old["p50_ms"]) / old["p50_ms"] * 100
        parts = [f"p50 {old['p50_ms']:.2f} -> {item['p50_ms']:.2f} ms ({change:+.0f}%)"]
        for concurrency, value in item["throughput"].items():
            previous = old.get("throughput", {}).get(concurrency)
            if previous:
                parts.append(
                    f"{concurrency} {previous:.1f} -> {value:.1f} req/s "
                    f"({(value - previous) / previous * 100:+.0f}%)"
                )
        if old.get("sql_statements") != item["sql_statements"]:
            parts.append(f"SQL {old.get('sql_statements')} -> {item['sql_statements']}")
        size = item["size"] if item["size"] is not None else "-"
        lines.append(f"  {item['operation']:<9} {size:>6}: " + "; ".join(parts))
    for size, item in result["canvas_vs_floor"].items():
        old_ratio = saved.get("canvas_vs_floor", {}).get(size, {}).get("ratio_to_floor")
        if old_ratio is not None:
            lines.append(f"  canvas/floor {size:>6}: {old_ratio}x -> {item['ratio_to_floor']}x")
    return "\n".join(lines)


def _integers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="manage.py bench", description="Benchmark the GraphQL server (see bench/run.py)."
    )
    parser.add_argument(
        "--sizes",
        type=_integers,
        default=[100, 1000, 10000],
        help="nodes per benchmark conversation (default 100,1000,10000)",
    )
    parser.add_argument("--small", type=int, default=300, help="small conversations around them")
    parser.add_argument(
        "--requests", type=int, default=200, help="requests per measurement at most (default 200)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=8.0,
        help="seconds per measurement at most, once 10 requests are done",
    )
    parser.add_argument(
        "--concurrency",
        type=_integers,
        default=[8, 32],
        help="concurrent clients for the throughput figures (default 8,32)",
    )
    parser.add_argument(
        "--workers",
        type=_integers,
        default=[1, 2],
        help="uvicorn worker counts; the first runs everything (default 1,2)",
    )
    parser.add_argument("--page", type=int, default=50, help="conversation list page size")
    parser.add_argument("--output", type=Path, help="where to write the JSON result")
    parser.add_argument("--compare", type=Path, help="a saved JSON result to compare with")
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the generated database afterwards"
    )
    parser.add_argument(
        "--subscribers", type=int, default=2000, help="WebSocket subscribers (0: no live phase)"
    )
    parser.add_argument("--live-changes", type=int, default=30, help="changes, one a second")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also send small requests to PostGraphile 5 on the same database (bench/peers.py)",
    )
    parser.add_argument(
        "--planner",
        action="store_true",
        help="also measure the canvas before ANALYZE and among many others (bench/planner.py)",
    )
    parser.add_argument(
        "--planner-others",
        type=int,
        default=10_000,
        help="other readable conversations in the planner phase's crowded database",
    )
    parser.add_argument(
        "--phase",
        choices=["graph", "search", "import"],
        default="graph",
        help="graph: the operations above (default); search: bench/search_phase.py;"
        " import: one large importConversation (bench/importing.py)",
    )
    parser.add_argument("--conversations", type=int, default=1000, help="search phase")
    parser.add_argument("--utterances", type=int, default=1_000_000, help="search phase")
    parser.add_argument("--api-calls", type=int, default=1_000_000, help="search phase")
    parser.add_argument("--import-nodes", type=int, default=20_000, help="nodes of the import")
    parser.add_argument(
        "--import-utterances", type=int, default=100_000, help="utterances of the import"
    )
    parser.add_argument(
        "--search-database", help="search phase: measure on this database (kept) without generating"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse(argv)
    saved = None
    if arguments.compare:
        try:
            saved = json.loads(arguments.compare.read_text())
        except (OSError, ValueError) as error:
            print(f"error: cannot read {arguments.compare}: {error}", file=sys.stderr)
            return 2

    def log(message: str) -> None:
        if not arguments.quiet:
            print(message, file=sys.stderr, flush=True)

    if arguments.phase == "search":
        from bench import search_phase

        print(search_phase.table(asyncio.run(search_phase.measure(arguments, log))))
        return 0
    if arguments.phase == "import":
        return importing.main(arguments, log)
    result = asyncio.run(run(arguments, log))
    output = arguments.output or RESULTS_DIR / (
        f"{result['started_at'].replace(':', '').replace('+0000', 'Z')}-{result['commit']}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    if "planner" in result:
        from bench.planner import table as planner_table

        print()
        print(planner_table(result["planner"]))
    if "peers" in result:
        from bench.peers import table as peers_table

        print()
        print(peers_table(result["peers"]))
    if saved is not None:
        print()
        print(compare(result, saved))
    print(f"\nwritten to {output}")
    failed = any(
        item["errors"] or any(item["throughput_errors"].values()) for item in result["operations"]
    ) or any(state != "complete" for state in result.get("canvas_check", {}).values())
    return 1 if failed else 0
