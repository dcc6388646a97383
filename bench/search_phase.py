"""The search and analytics phase: `python3 manage.py bench --phase search`.

Generates, with INSERT ... SELECT over generate_series, `--conversations` conversations holding
`--utterances` utterances (12 words each from a 2,000-word vocabulary with a Zipf-like, log-uniform
distribution) and `--api-calls` API calls over two months; then measures, one request at a time,
p50 / p99 of a two-word search, a phrase search, a search narrowed to one conversation, cost by
model per day over a month and latency percentiles by feature, each beside its SQL floor: the
same statement (built by the same domain code) prepared and run through asyncpg. The server and
the floor are asked in turn, a request each, so that a drift in the machine's load (the client,
the server and PostgreSQL share its cores) weighs on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from db.session import SESSION_SETTINGS
from db.settings import connect_arguments, resolve_database_url
from graph.analytics_sql import StatsRequest, stats_statement
from graph.search_sql import Search, SearchRequest

VIEWER = "local-developer"  # the server runs in development mode: every request is this user
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)

SEARCH = """query($q: String!, $ids: [ID!], $kinds: [SearchKind!]) {
  search(query: $q, first: 20, conversationIds: $ids, kinds: $kinds)
  { edges { node { rank headline hit { __typename ... on Node { id } } } } } }"""
COST = """query($after: DateTime!, $before: DateTime!) {
  apiCallStats(groupBy: [MODEL, BUCKET], bucket: DAY, timeZone: "Europe/Berlin", first: 500,
               filter: {startedAfter: $after, startedBefore: $before}) {
    totalCount nodes { model bucket aggregate { count totalCost { sum } } } } }"""
LATENCY = """query { apiCallStats(groupBy: [FEATURE], first: 100) {
  nodes { feature aggregate { count latencyMs { p50 p95 p99 } } } } }"""

GENERATE = """
INSERT INTO conversations (conversation_name, conversation_type, source_type, started_at,
                           owner_id, visibility)
SELECT 'bench conversation ' || n, 'transcript', 'bench',
       timestamptz '2026-09-01' + n * interval '1 hour', $1::text, 'private'
FROM generate_series(1, $2) AS n;

CREATE TEMP TABLE ids AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM conversations;

INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number, timestamp_start)
SELECT ids.id,
       (SELECT string_agg('w' || floor(exp(random() * ln(2000)))::int, ' ')
        FROM generate_series(1, 12) WHERE u.n >= 0),
       's' || (u.n % 4), u.n / $1, (u.n / $1) * 5.0
FROM generate_series(0, $2 - 1) AS u(n)
JOIN ids ON ids.n = u.n % $1 + 1;

INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model, prompt_tokens,
    completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost, latency_ms, status,
    started_at)
SELECT ids.id, '/v1/chat', 'feature_' || (c.n % 6), 'provider_' || (c.n % 2),
       'model_' || (c.n % 5), 1000, 200, 1200, ((c.n % 997) / 100000.0)::float8,
       ((c.n % 89) / 100000.0)::float8, (((c.n % 997) + (c.n % 89)) / 100000.0)::float8,
       CASE WHEN c.n % 20 = 0 THEN NULL ELSE 50 + (c.n::bigint * 7919) % 3000 END,
       CASE WHEN c.n % 50 = 0 THEN 'error' ELSE 'success' END,
       timestamptz '2026-09-15' + (c.n * (5184000.0 / $2)) * interval '1 second'
FROM generate_series(0, $2 - 1) AS c(n)
JOIN ids ON ids.n = c.n % $1 + 1;
"""


def compiled(statement: Any, values: dict[str, Any] | None = None) -> tuple[str, list[Any]]:
    """The SQL and positional parameters SQLAlchemy sends through asyncpg for `statement` run
    with the bound values `values`."""
    compiled_statement = statement.compile(dialect=asyncpg_dialect())
    names = compiled_statement.positiontup or []
    parameters = compiled_statement.construct_params(values)
    return str(compiled_statement), [parameters[name] for name in names]


async def generate(connection: asyncpg.Connection, arguments: argparse.Namespace, log: Any) -> None:
    """The rows, with the text index dropped during the load and built after it (one sort
    instead of a million index insertions), as one would load a corpus (then vacuumed)."""
    statements = [part.strip() for part in GENERATE.split(";\n") if part.strip()]
    parameters: list[tuple[Any, ...]] = [
        (VIEWER, arguments.conversations),
        (),
        (arguments.conversations, arguments.utterances),
        (arguments.conversations, arguments.api_calls),
    ]
    index = await connection.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_utterances_text_search'"
    )
    await connection.execute("SET maintenance_work_mem = '256MB'")
    async with connection.transaction():  # an interrupted load leaves no half corpus behind
        await connection.execute("DROP INDEX idx_utterances_text_search")
        for statement, values in zip(statements, parameters, strict=True):
            started = time.perf_counter()
            await connection.execute(statement, *values)
            log(f"  {statement.split(chr(10))[0][:40]}: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        await connection.execute(index)
    log(f"  text index: {time.perf_counter() - started:.1f} s")


async def timed(calls: list[Any], count: int) -> list[dict[str, float]]:
    """p50 and p99 of each call, made `count` times in turn (one of each, then again), so that a
    drift in the machine's load over the measurement weighs on each alike."""
    for call in calls:
        await call()
    latencies: list[list[float]] = [[] for _ in calls]
    for _ in range(count):
        for call, measured in zip(calls, latencies, strict=True):
            started = time.perf_counter()
            await call()
            measured.append(time.perf_counter() - started)
    figures = []
    for measured in latencies:
        measured.sort()
        p99 = measured[min(len(measured) - 1, int(len(measured) * 0.99))]
        figures.append(
            {
                "p50_ms": round(statistics.median(measured) * 1000, 2),
                "p99_ms": round(p99 * 1000, 2),
            }
        )
    return figures


async def measure(arguments: argparse.Namespace, log: Any) -> list[dict[str, Any]]:
    from bench.dataset import drop_database
    from bench.server import Server
    from graph.serve import migrate

    server_url = resolve_database_url()
    name = arguments.search_database or f"lct_bench_search_{uuid.uuid4().hex[:8]}"
    database = server_url.set(database=name)
    admin = await asyncpg.connect(**connect_arguments(server_url))
    exists = await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
    if not exists:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    await admin.close()
    # a named database is kept, and generated only when it holds no corpus yet
    keep = arguments.keep_database or arguments.search_database is not None
    results = []
    try:
        await asyncio.to_thread(migrate, database)
        connection = await asyncpg.connect(**connect_arguments(database))
        if not await connection.fetchval("SELECT EXISTS (SELECT FROM api_calls_log)"):
            started = time.perf_counter()
            log(
                f"generating {arguments.utterances:,} utterances in {arguments.conversations:,}"
                f" conversations and {arguments.api_calls:,} API calls in {name} ..."
            )
            await generate(connection, arguments, log)
            log(f"generated in {time.perf_counter() - started:.0f} s")
        # as autovacuum leaves a table some time after a bulk load (and after a migration that
        # built indexes): statistics, and a visibility map that lets index-only scans skip the heap
        started = time.perf_counter()
        await connection.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")
        for setting, value in SESSION_SETTINGS.items():
            await connection.execute(f"SET {setting} = '{value}'")
        one = str(await connection.fetchval("SELECT id FROM conversations ORDER BY id LIMIT 1"))
        server = Server(database, 1, 1000)
        try:
            await server.ready()
            async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
                cases: list[tuple[str, str, dict[str, Any], Any]] = [
                    ("search, two words", SEARCH, {"q": "w40 w41"}, SearchRequest("w40 w41")),
                    (
                        "search, two words, utterances only",
                        SEARCH,
                        {"q": "w40 w41", "kinds": ["UTTERANCE"]},
                        SearchRequest("w40 w41", kinds=("utterance",)),
                    ),
                    ("search, phrase", SEARCH, {"q": '"w40 w41"'}, SearchRequest('"w40 w41"')),
                    (
                        "search, one conversation",
                        SEARCH,
                        {"q": "w7", "ids": [one]},
                        SearchRequest("w7", conversation_ids=(uuid.UUID(one),)),
                    ),
                    (
                        "cost by model per Berlin day, one month",
                        COST,
                        {"after": MONTH_START.isoformat(), "before": MONTH_END.isoformat()},
                        StatsRequest(
                            keys=("model", "bucket"),
                            time_zone="Europe/Berlin",
                            started_after=MONTH_START,
                            started_before=MONTH_END,
                            needed=frozenset({"count", "total_cost_sum"}),
                            totals=False,
                        ),
                    ),
                    (
                        "latency percentiles by feature",
                        LATENCY,
                        {},
                        StatsRequest(
                            keys=("feature",),
                            needed=frozenset(
                                {"count", "latency_p50", "latency_p95", "latency_p99"}
                            ),
                            totals=False,
                        ),
                    ),
                ]
                for label, document, variables, request in cases:

                    async def via_server(
                        document: str = document, variables: Any = variables, label: str = label
                    ) -> None:
                        response = await client.post(
                            "/graphql", json={"query": document, "variables": variables}
                        )
                        body = response.json()
                        if body.get("errors"):
                            raise RuntimeError(f"{label}: {body['errors']}")

                    values = None
                    if isinstance(request, SearchRequest):
                        statement, values = Search(request, VIEWER, "english").page(20, None)
                    else:
                        size = 500 if "bucket" in request.keys else 100
                        statement = stats_statement(request, VIEWER, size, 0)
                    sql, parameters = compiled(statement, values)
                    prepared = await connection.prepare(sql)

                    async def via_sql(
                        prepared: Any = prepared, parameters: Any = parameters
                    ) -> None:
                        await prepared.fetch(*parameters)

                    served, floor = await timed([via_server, via_sql], arguments.requests)
                    ratio = round(served["p50_ms"] / max(floor["p50_ms"], 0.01), 2)
                    results.append(
                        {"operation": label, "server": served, "sql": floor, "ratio": ratio}
                    )
                    log(f"{label}: server {served}, SQL floor {floor}, ratio {ratio}")
        finally:
            server.stop()
        await connection.close()
    finally:
        if not keep:
            await drop_database(server_url, database)
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'operation':<42} {'p50 ms':>8} {'p99 ms':>8} {'SQL p50':>8} {'SQL p99':>8} {'ratio':>6}"
    ]
    for item in results:
        lines.append(
            f"{item['operation']:<42} {item['server']['p50_ms']:>8} {item['server']['p99_ms']:>8}"
            f" {item['sql']['p50_ms']:>8} {item['sql']['p99_ms']:>8} {item['ratio']:>6}"
        )
    return "\n".join(lines)
