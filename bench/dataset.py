"""The benchmark's database: created, migrated and filled with generated conversations, and
dropped afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import URL

from db.demo import generate_conversation, generate_small_conversations
from db.settings import connect_arguments
from graph.serve import migrate


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
