"""The planner phase: the canvas where PostgreSQL's statistics mislead or the tables are crowded.

    python3 manage.py bench --planner

Two situations users meet that a benchmark on a freshly analysed, nearly empty database hides:

- **fresh**: a conversation has just been bulk-loaded and no `ANALYZE` has run yet (autovacuum is
  switched off for the phase's tables, so that it cannot analyse them halfway through): the canvas
  is measured against the floor before and after `ANALYZE`;
- **crowded**: the same conversation in a database that also holds 10,000 other conversations the
  viewer may read, against the database holding it alone.

Each database is created for the phase and dropped afterwards; the server is started on each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from bench import documents
from bench.dataset import Dataset, drop_database
from bench.load import Figures, Request, measure, measure_floor
from bench.server import Server
from db.demo import generate_conversation, generate_small_conversations
from db.settings import connect_arguments
from graph.serve import migrate

TABLES = ("conversations", "nodes", "relationships", "clusters", "utterances", "edits_log")


async def _database(server_url: URL) -> URL:
    name = f"lct_bench_planner_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(**connect_arguments(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    database = server_url.set(database=name)
    await asyncio.to_thread(migrate, database)
    return database


async def _canvas(
    database: URL, conversation: uuid.UUID, size: int, *, count: int, duration: float
) -> dict[str, Any]:
    """The canvas's p50 through the server and the floor's, on the database as it is now."""
    dataset = Dataset(database, {size: conversation}, {}, {}, {})
    floor = await measure_floor(dataset, size, count=count, duration=duration)
    server = Server(database, 1, size)
    try:
        await server.ready()
        figures = Figures("canvas", size)
        request = Request(documents.CANVAS, lambda _: {"id": str(conversation), "first": size})
        await measure(server, figures, request, concurrencies=[], count=count, duration=duration)
    finally:
        server.stop()
    assert figures.p50_ms is not None
    return {
        "canvas_p50_ms": figures.p50_ms,
        "floor_p50_ms": floor["p50_ms"],
        "ratio_to_floor": round(figures.p50_ms / floor["p50_ms"], 2),
        "errors": figures.errors,
    }


async def measure_planner(
    server_url: URL,
    owner: str,
    *,
    size: int,
    others: int,
    count: int,
    duration: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    result: dict[str, Any] = {"size": size, "other_conversations": others}
    alone = await _database(server_url)
    try:
        connection = await asyncpg.connect(**connect_arguments(alone))
        try:
            for table in TABLES:
                await connection.execute(
                    f"ALTER TABLE {table} SET (autovacuum_enabled = off,"
                    " toast.autovacuum_enabled = off)"
                )
            conversation = await generate_conversation(
                connection, nodes=size, seed=size, owner_id=owner, name="Planner, fresh"
            )
            result["fresh"] = await _canvas(
                alone, conversation, size, count=count, duration=duration
            )
            log(f"planner fresh (no ANALYZE): {result['fresh']}")
            await connection.execute("ANALYZE")
            result["alone"] = await _canvas(
                alone, conversation, size, count=count, duration=duration
            )
            log(f"planner alone (analysed): {result['alone']}")
        finally:
            await connection.close()
    finally:
        await drop_database(server_url, alone)
    crowded = await _database(server_url)
    try:
        connection = await asyncpg.connect(**connect_arguments(crowded))
        try:
            await generate_small_conversations(
                connection,
                count=others,
                seed=2,
                owner_ids=(owner,),
                visibilities=("private", "public"),
                largest=8,
                utterances_per_node=2,
            )
            conversation = await generate_conversation(
                connection, nodes=size, seed=size, owner_id=owner, name="Planner, crowded"
            )
            await connection.execute("ANALYZE")
        finally:
            await connection.close()
        result["crowded"] = await _canvas(
            crowded, conversation, size, count=count, duration=duration
        )
        log(f"planner crowded ({others} others): {result['crowded']}")
    finally:
        await drop_database(server_url, crowded)
    result["fresh_over_floor"] = result["fresh"]["ratio_to_floor"]
    result["fresh_over_analysed_floor"] = round(
        result["fresh"]["canvas_p50_ms"] / result["alone"]["floor_p50_ms"], 2
    )
    result["crowded_over_alone"] = round(
        result["crowded"]["canvas_p50_ms"] / result["alone"]["canvas_p50_ms"], 2
    )
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"planner phase, canvas at {result['size']:,} nodes:",
        "| database | canvas p50 ms | floor p50 ms | ratio |",
        "|---|---|---|---|",
    ]
    for name in ("fresh", "alone", "crowded"):
        item = result[name]
        lines.append(
            f"| {name} | {item['canvas_p50_ms']} | {item['floor_p50_ms']} | "
            f"{item['ratio_to_floor']}x |"
        )
    lines.append(
        f"fresh over the analysed floor: {result['fresh_over_analysed_floor']}x; crowded"
        f" ({result['other_conversations']:,} other readable conversations) over alone:"
        f" {result['crowded_over_alone']}x"
    )
    return "\n".join(lines)
