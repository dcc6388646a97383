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

This module is the command line and the order of a run. Its parts: the database
(`bench/dataset.py`), the server processes (`bench/server.py`), their CPU and memory from /proc
(`bench/processes.py`), the load and the floor (`bench/load.py`), the table and the comparison
(`bench/report.py`); the optional phases have modules of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import documents, importing
from bench.dataset import Dataset, create_dataset, drop_database
from bench.live import measure_live
from bench.load import Figures, Request, measure, measure_floor
from bench.report import RESULTS_DIR, compare, derive, git, table
from bench.server import Server
from db.settings import Settings, connect_arguments, resolve_database_url

__all__ = ["main", "run"]


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
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
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
    derive(result)
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


if __name__ == "__main__":
    sys.exit(main())
