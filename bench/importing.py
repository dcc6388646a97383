"""The import phase of the benchmark: one large conversation document through `importConversation`.

    python3 manage.py bench --phase import [--import-nodes 20000 --import-utterances 100000]

Generates an analysis document (nodes over five levels with their timeline, utterances, about two
relationships per node, nested clusters, edits), starts the server with the body limit raised for
it, imports it over HTTP once, and meanwhile pings `GET /health` every 50 ms from another
connection. Reports import time and throughput (rows per second), the /health latencies during the
import, the server's worst event-loop stall (its heartbeat, `GET /debug/event-loop`), and checks
the stored rows against the document.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from db.settings import Settings, connect_arguments, resolve_database_url

IMPORT = """
mutation($document: JSON!) {
  importConversation(document: $document) {
    __typename
    ... on ImportConversationPayload { conversation { id totalUtterances totalNodes } }
    ... on ValidationError { field message code }
    ... on NotFoundError { field message }
  }
}"""

LEVELS = 5
BODY_LIMIT = 200_000_000
SPEAKERS = ("ann", "bob", "cy", "dee")
WORDS = ("ship", "risk", "plan", "budget", "review", "release", "metric", "customer", "design")


def level_sizes(nodes: int) -> list[int]:
    """About four times more nodes per level down, at least one per level."""
    levels = min(LEVELS, nodes)
    weights = [4**index for index in range(levels)]
    sizes = [max(1, nodes * weight // sum(weights)) for weight in weights]
    sizes[-1] += nodes - sum(sizes)
    return sizes


def document(nodes: int, utterances: int, *, seed: int = 7) -> dict[str, Any]:
    """A valid import document: references are short strings, as the analysis pipeline writes."""
    rng = random.Random(seed)
    node_rows: list[dict[str, Any]] = []
    previous_level: list[str] = []
    for level, size in enumerate(level_sizes(nodes), start=1):
        current = []
        for index in range(size):
            reference = f"n{len(node_rows)}"
            row: dict[str, Any] = {
                "id": reference,
                "nodeName": f"Topic {len(node_rows)}: {rng.choice(WORDS)}",
                "summary": " ".join(rng.choice(WORDS) for _ in range(12)),
                "keyPoints": [f"point {rng.choice(WORDS)}" for _ in range(2)],
                "level": level,
                "canvasX": index * 40,
                "canvasY": level * 300,
                "speakerInfo": {"primary": rng.choice(SPEAKERS)},
                "zoomLevelVisible": [level],
            }
            if previous_level:
                row["parentId"] = previous_level[index % len(previous_level)]
            node_rows.append(row)
            current.append(reference)
        previous_level = current
    # The timeline runs through the deepest level; each of its nodes owns a run of utterances.
    leaves = previous_level
    for before, after in itertools.pairwise(leaves):
        node_rows[int(after[1:])]["predecessorId"] = before
    utterance_rows = []
    for index in range(utterances):
        owner = leaves[index * len(leaves) // max(utterances, 1)]
        utterance_rows.append(
            {
                "id": f"u{index}",
                "sequenceNumber": index,
                "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))),
                "speakerId": rng.choice(SPEAKERS),
                "timestampStart": index * 2.0,
                "timestampEnd": index * 2.0 + 1.5,
                "nodeId": owner,
            }
        )
    relationships: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    while len(relationships) < 2 * nodes and nodes > 1:
        start, end = rng.randrange(nodes), rng.randrange(nodes)
        if start == end or (start, end) in seen:
            continue
        seen.add((start, end))
        relationships.append(
            {
                "id": f"r{len(relationships)}",
                "fromNodeId": f"n{start}",
                "toNodeId": f"n{end}",
                "relationshipType": rng.choice(("supports", "contradicts", "follows")),
                "strength": round(rng.random(), 3),
                "supportingUtteranceIds": [f"u{rng.randrange(utterances)}"] if utterances else [],
            }
        )
    clusters: list[dict[str, Any]] = []
    for index in range(max(1, nodes // 50)):
        members = [f"n{item}" for item in range(index * 50, min(nodes, index * 50 + 50))]
        cluster: dict[str, Any] = {
            "id": f"c{index}",
            "clusterName": f"Cluster {index}",
            "level": 0 if index < 10 else 1,
            "nodeIds": members,
        }
        if index >= 10:
            cluster["parentClusterId"] = f"c{index % 10}"
        clusters.append(cluster)
    edits = [
        {
            "id": f"e{index}",
            "targetType": "node",
            "targetId": f"n{rng.randrange(nodes)}",
            "fieldName": "node_name",
            "oldValue": "before",
            "newValue": "after",
            "editType": "correction",
            "userId": "pipeline",
        }
        for index in range(nodes // 10)
    ]
    return {
        "format": "lct-graph.conversation",
        "version": 1,
        "conversation": {
            "conversationName": f"Import benchmark, {nodes} nodes",
            "conversationType": "transcript",
            "sourceType": "pipeline",
            "startedAt": "2026-11-01T10:00:00+00:00",
        },
        "utterances": utterance_rows,
        "nodes": node_rows,
        "relationships": relationships,
        "clusters": clusters,
        "edits": edits,
    }


def rows_of(doc: dict[str, Any]) -> dict[str, int]:
    return {
        name: len(doc[name])
        for name in ("utterances", "nodes", "relationships", "clusters", "edits")
    }


async def event_loop_stall(client: httpx.AsyncClient) -> float | None:
    """The server's worst event-loop stall (ms) since the last call, which resets it."""
    try:
        response = await client.get("/debug/event-loop")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return float(response.json()["worstStallMs"])


async def measure_import(
    base: str,
    database: Any,
    *,
    nodes: int,
    utterances: int,
    log: Any,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Imports one generated document while pinging /health; returns the phase's figures. With
    `server_pid`, also the CPU seconds the server's processes and PostgreSQL's backends spent
    (figures a loaded machine changes less than the elapsed time)."""
    from bench.processes import cpu_seconds as _cpu_seconds
    from bench.processes import process_tree as _process_tree

    started = time.perf_counter()
    doc = document(nodes, utterances)
    body = json.dumps({"query": IMPORT, "variables": {"document": doc}}).encode()
    counts = rows_of(doc)
    log(
        f"import: document of {sum(counts.values())} rows, {len(body) / 1e6:.1f} MB, built in "
        f"{time.perf_counter() - started:.1f} s"
    )
    del doc
    figures: dict[str, Any] = {"rows": counts, "body_bytes": len(body)}
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as importer,
        httpx.AsyncClient(base_url=base, timeout=None) as pinger,
    ):
        await event_loop_stall(pinger)  # reset: the stall of starting up is not this phase's
        done = asyncio.Event()
        pings: list[float] = []

        async def ping() -> None:
            while not done.is_set():
                begun = time.perf_counter()
                response = await pinger.get("/health")
                if response.status_code == 200:
                    pings.append(time.perf_counter() - begun)
                await asyncio.sleep(0.05)

        pinging = asyncio.create_task(ping())
        server_pids = _process_tree(server_pid) if server_pid else []
        server_cpu = _cpu_seconds(server_pids)
        begun = time.perf_counter()
        response = await importer.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        elapsed = time.perf_counter() - begun
        if server_pids:
            figures["server_cpu_seconds"] = round(_cpu_seconds(server_pids) - server_cpu, 2)
            figures["postgresql_cpu_seconds"] = await backend_cpu_seconds(database)
        done.set()
        await pinging
        figures["worst_stall_ms"] = await event_loop_stall(pinger)
    answer: dict[str, Any] = (
        response.json() if response.status_code == 200 else {"status": response.status_code}
    )
    result = (answer.get("data") or {}).get("importConversation") or {}
    figures["seconds"] = round(elapsed, 3)
    figures["rows_per_second"] = round(sum(counts.values()) / elapsed)
    figures["health_requests"] = len(pings)
    if pings:
        figures["health_p50_ms"] = round(statistics.median(pings) * 1000, 2)
        figures["health_max_ms"] = round(max(pings) * 1000, 2)
    if result.get("__typename") != "ImportConversationPayload":
        figures["error"] = json.dumps(answer)[:600]
        return figures
    conversation_id = uuid.UUID(result["conversation"]["id"])
    figures["check"] = await check_stored(database, conversation_id, counts)
    figures["floor_seconds"] = await measure_floor(database, conversation_id)
    return figures


async def backend_cpu_seconds(database: Any) -> float:
    """CPU seconds of the PostgreSQL backends connected to the benchmark's database (the server's
    pool, opened for the import), over their lifetime; Linux, PostgreSQL on this machine."""
    from bench.processes import cpu_seconds as _cpu_seconds

    connection = await asyncpg.connect(**connect_arguments(database))
    try:
        pids = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return round(_cpu_seconds([row["pid"] for row in pids]), 2)


TABLES = {
    "utterances": "utterances",
    "nodes": "nodes",
    "relationships": "relationships",
    "clusters": "clusters",
    "edits": "edits_log",
}


async def measure_floor(database: Any, conversation_id: uuid.UUID) -> float:
    """PostgreSQL alone writing the imported rows: their binary `COPY`, read back beforehand, into
    temporary copies of the tables (same columns, indexes and checks; no foreign keys, triggers
    or self-reference updates), in one transaction rolled back. A lower bound for the import."""
    connection = await asyncpg.connect(**connect_arguments(database))
    try:
        data: dict[str, bytes] = {}
        for table in TABLES.values():
            chunks: list[bytes] = []

            async def keep(chunk: bytes, chunks: list[bytes] = chunks) -> None:
                chunks.append(chunk)

            await connection.copy_from_query(
                f"SELECT * FROM {table} WHERE conversation_id = $1",
                conversation_id,
                output=keep,
                format="binary",
            )
            data[table] = b"".join(chunks)
        started = time.perf_counter()
        async with connection.transaction():
            for table, content in data.items():
                await connection.execute(
                    f"CREATE TEMP TABLE floor_{table} (LIKE {table} INCLUDING ALL) ON COMMIT DROP"
                )
                await connection.copy_to_table(
                    f"floor_{table}", source=io.BytesIO(content), format="binary"
                )
            elapsed = time.perf_counter() - started
            raise _RollBack
    except _RollBack:
        return round(elapsed, 3)
    finally:
        await connection.close()


class _RollBack(Exception):
    """Ends the floor's transaction without keeping anything."""


async def check_stored(database: Any, conversation_id: uuid.UUID, counts: dict[str, int]) -> str:
    """The stored rows, counted per table, against the document's."""
    tables = TABLES
    connection = await asyncpg.connect(**connect_arguments(database))
    try:
        stored = {
            name: await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE conversation_id = $1", conversation_id
            )
            for name, table in tables.items()
        }
        owned = await connection.fetchval(
            "SELECT count(*) FROM utterances WHERE conversation_id = $1 AND node_id IS NOT NULL",
            conversation_id,
        )
    finally:
        await connection.close()
    if stored != counts:
        return f"stored {stored}, document {counts}"
    if owned != counts["utterances"]:
        return f"{owned} of {counts['utterances']} utterances have their node"
    return "complete"


async def run(arguments: Any, log: Any) -> dict[str, Any]:
    """The import phase on a database and server of its own."""
    from bench.dataset import create_dataset, drop_database
    from bench.report import git as _git
    from bench.server import Server

    settings = Settings()
    server_url = resolve_database_url(settings)
    result: dict[str, Any] = {
        "phase": "import",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        },
        "settings": {"nodes": arguments.import_nodes, "utterances": arguments.import_utterances},
    }
    dataset = await create_dataset(server_url, [], 0, settings.dev_user_id, log)
    # the document is far above the default body limit; the benchmark raises it for this run
    os.environ["LCT_MAX_BODY_BYTES"] = str(BODY_LIMIT)
    try:
        server = Server(dataset.database, 1, 100)
        try:
            await server.ready()
            server.reset_peak_rss()
            result["import"] = await measure_import(
                server.base,
                dataset.database,
                nodes=arguments.import_nodes,
                utterances=arguments.import_utterances,
                log=log,
                server_pid=server.process.pid,
            )
            result["import"]["peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.stop()
    finally:
        os.environ.pop("LCT_MAX_BODY_BYTES", None)
        await drop_database(server_url, dataset.database)
    result["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    return result


def table(result: dict[str, Any]) -> str:
    figures = result["import"]
    rows = figures["rows"]
    lines = [
        f"import of {sum(rows.values())} rows ({', '.join(f'{n} {k}' for k, n in rows.items())}),"
        f" {figures['body_bytes'] / 1e6:.1f} MB:",
        f"  {figures['seconds']} s, {figures['rows_per_second']} rows/s;"
        f" stored rows {figures.get('check', 'not checked')}",
        f"  CPU seconds: server {figures.get('server_cpu_seconds')}, PostgreSQL backends"
        f" {figures.get('postgresql_cpu_seconds')}; SQL floor (PostgreSQL alone copying the same"
        f" rows into temporary tables): {figures.get('floor_seconds')} s",
        f"  worst event-loop stall {figures.get('worst_stall_ms')} ms (server heartbeat);"
        f" /health during the import: {figures['health_requests']} requests, p50"
        f" {figures.get('health_p50_ms')} ms, max {figures.get('health_max_ms')} ms",
        f"  peak RSS {figures.get('peak_rss_mb')} MB",
    ]
    if figures.get("error"):
        lines.append(f"  ERROR: {figures['error']}")
    machine = result["machine"]
    lines.append(
        f"commit {result['commit']}, {machine['cpus']} CPUs shared by client, server and"
        f" PostgreSQL; load average {machine['load_average_at_start'][0]} at start,"
        f" {machine['load_average_at_end'][0]} at end"
    )
    return "\n".join(lines)


def main(arguments: Any, log: Any) -> int:
    """`manage.py bench --phase import`: runs the phase, prints its table, writes its JSON."""
    from bench.report import RESULTS_DIR

    result = asyncio.run(run(arguments, log))
    output = arguments.output or RESULTS_DIR / (
        f"import-{result['started_at'].replace(':', '').replace('+0000', 'Z')}"
        f"-{result['commit']}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwritten to {output}")
    figures = result["import"]
    return 1 if figures.get("error") or figures.get("check") != "complete" else 0
