"""Load: requests sent over HTTP from concurrent loops, and the figures of one operation at one
size (latency percentiles, throughput, SQL statements, bytes, peak RSS, CPU, event-loop stalls);
and the floor those of the canvas are compared with: PostgreSQL building the canvas data as one
JSON document, through asyncpg."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench import documents
from bench.dataset import Dataset
from bench.importing import event_loop_stall
from bench.processes import CpuMeter
from bench.server import Server
from db.session import SESSION_SETTINGS
from db.settings import connect_arguments

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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(figures: Figures, latencies: list[float]) -> None:
    if not latencies:
        return
    figures.p50_ms = round(statistics.median(latencies) * 1000, 3)
    figures.p90_ms = round(percentile(latencies, 0.90) * 1000, 3)
    figures.p99_ms = round(percentile(latencies, 0.99) * 1000, 3)
    figures.max_ms = round(max(latencies) * 1000, 3)
    figures.mean_ms = round(statistics.fmean(latencies) * 1000, 3)


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
            meter = CpuMeter(server.process.pid)
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
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "requests": len(latencies),
        "response_bytes": len(document.encode()),
        "nodes": len(data),
        "relationships": sum(len(node["outgoing"]) for node in data),
    }
