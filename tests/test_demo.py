"""The generated conversations keep every rule of the graph, checked against the database."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.demo import (
    GOAL_TYPES,
    TRANSITION_TYPES,
    generate_conversation,
    generate_small_conversations,
    level_counts,
)
from db.models import Conversation, Node
from db.session import create_session_factory
from tests.conftest import DatabaseFactory, alembic_config, asyncpg_dsn

NODES = 1000


@pytest.fixture(scope="module")
async def connection(database_url: URL) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
async def conversation_id(connection: asyncpg.Connection) -> uuid.UUID:
    return await generate_conversation(connection, nodes=NODES, seed=11, owner_id="demo-owner")


async def _rows(connection: asyncpg.Connection, table: str, conversation_id: uuid.UUID) -> list:
    return await connection.fetch(
        f"SELECT * FROM {table} WHERE conversation_id = $1", conversation_id
    )


def test_level_counts_cover_five_levels() -> None:
    assert level_counts(0) == []
    assert level_counts(3) == [1, 1, 1]
    assert level_counts(5) == [1, 1, 1, 1, 1]
    for total in (6, 100, 1000, 10_000):
        counts = level_counts(total)
        assert sum(counts) == total
        assert len(counts) == 5
        assert counts == sorted(counts)


async def test_conversation_row_and_counters(
    connection: asyncpg.Connection, conversation_id: uuid.UUID
) -> None:
    conversation = await connection.fetchrow(
        "SELECT * FROM conversations WHERE id = $1", conversation_id
    )
    utterances = await _rows(connection, "utterances", conversation_id)
    assert conversation["owner_id"] == "demo-owner"
    assert conversation["visibility"] == "private"
    assert conversation["deleted_at"] is None
    assert conversation["total_nodes"] == NODES
    assert conversation["total_utterances"] == len(utterances) == 5 * NODES
    assert conversation["total_words"] == sum(len(row["text"].split()) for row in utterances)
    assert conversation["tsv_search"] is not None
    participants = [json.loads(raw) for raw in conversation["participants"]]
    assert conversation["participant_count"] == len(participants) >= 3
    for participant in participants:
        assert {"id", "name", "role"} <= participant.keys()
        assert participant["role"] in ("facilitator", "participant", "observer")
    goals = [json.loads(raw) for raw in conversation["goals"]]
    assert goals
    assert all(goal["goal_type"] in GOAL_TYPES and goal["description"] for goal in goals)
    assert conversation["ended_at"] > conversation["started_at"]


async def test_node_hierarchy_and_temporal_chain(
    connection: asyncpg.Connection, conversation_id: uuid.UUID
) -> None:
    nodes = {row["id"]: row for row in await _rows(connection, "nodes", conversation_id)}
    assert len(nodes) == NODES
    assert Counter(row["level"] for row in nodes.values()).keys() == {1, 2, 3, 4, 5}
    for node in nodes.values():
        if node["parent_id"] is None:
            assert node["level"] == 1
        else:
            parent = nodes[node["parent_id"]]
            assert parent["level"] == node["level"] - 1
            assert node["id"] in parent["children_ids"]
            assert parent["timestamp_start"] <= node["timestamp_start"]
            assert node["timestamp_end"] <= parent["timestamp_end"]
        for child in node["children_ids"]:
            assert nodes[child]["parent_id"] == node["id"]
        if node["successor_id"] is not None:
            successor = nodes[node["successor_id"]]
            assert successor["predecessor_id"] == node["id"]
            assert successor["level"] == node["level"]
            assert successor["timestamp_start"] > node["timestamp_start"]
        assert node["zoom_level_visible"] and node["level"] in node["zoom_level_visible"]
        assert node["canvas_x"] is not None and node["canvas_y"] is not None
        assert node["chunk_ids"]
    # exactly one chain per level
    heads = Counter(row["level"] for row in nodes.values() if row["predecessor_id"] is None)
    assert heads == Counter({level: 1 for level in range(1, 6)})
    flags = ("is_bookmark", "is_tangent", "is_crux", "is_contextual_progress")
    for flag in flags:
        assert 0 < sum(row[flag] for row in nodes.values()) < NODES / 2


async def test_speakers_and_utterances(
    connection: asyncpg.Connection, conversation_id: uuid.UUID
) -> None:
    nodes = {row["id"]: row for row in await _rows(connection, "nodes", conversation_id)}
    utterances = await _rows(connection, "utterances", conversation_id)
    assert sorted(row["sequence_number"] for row in utterances) == list(range(5 * NODES))
    assert len({row["speaker_id"] for row in utterances}) >= 3
    by_node: dict[uuid.UUID, list[Any]] = {}
    for utterance in utterances:
        by_node.setdefault(utterance["node_id"], []).append(utterance)
        assert utterance["timestamp_end"] >= utterance["timestamp_start"]
    assert by_node.keys() == nodes.keys()
    for node_id, node in nodes.items():
        own = sorted(by_node[node_id], key=lambda row: row["sequence_number"])
        assert len(own) == 5
        assert node["utterance_ids"] == [row["id"] for row in own]
        assert set(node["chunk_ids"]) == {row["chunk_id"] for row in own}
        info = json.loads(node["speaker_info"])
        words = Counter[str]()
        for row in own:
            words[row["speaker_id"]] += len(row["text"].split())
        assert info["primary_speaker"] == words.most_common(1)[0][0]
        assert 0 < info["contribution_percentage"] <= 100
        transitions = [json.loads(raw) for raw in node["speaker_transitions"]]
        assert len(transitions) == sum(
            1 for a, b in itertools.pairwise(own) if a["speaker_id"] != b["speaker_id"]
        )
        for transition in transitions:
            assert transition["transition_type"] in TRANSITION_TYPES
            assert transition["from_speaker"] != transition["to_speaker"]


async def test_relationships(connection: asyncpg.Connection, conversation_id: uuid.UUID) -> None:
    relationships = await _rows(connection, "relationships", conversation_id)
    assert 2.5 * NODES <= len(relationships) <= 3 * NODES
    assert len({row["relationship_type"] for row in relationships}) >= 8
    keys = [
        (row["from_node_id"], row["to_node_id"], row["relationship_type"]) for row in relationships
    ]
    assert len(set(keys)) == len(keys)
    outside = await connection.fetchval(
        """
        SELECT count(*) FROM relationships r
        JOIN nodes a ON a.id = r.from_node_id JOIN nodes b ON b.id = r.to_node_id
        WHERE r.conversation_id = $1
          AND (a.conversation_id <> r.conversation_id OR b.conversation_id <> r.conversation_id
               OR r.from_node_id = r.to_node_id)
        """,
        conversation_id,
    )
    assert outside == 0
    temporal = await connection.fetchval(
        """
        SELECT count(*) FROM relationships r JOIN nodes n ON n.id = r.from_node_id
        WHERE r.conversation_id = $1 AND r.relationship_type = 'temporal_next'
          AND n.successor_id = r.to_node_id
        """,
        conversation_id,
    )
    assert temporal == NODES - 5


async def test_nested_clusters(connection: asyncpg.Connection, conversation_id: uuid.UUID) -> None:
    clusters = {row["id"]: row for row in await _rows(connection, "clusters", conversation_id)}
    node_ids = {row["id"] for row in await _rows(connection, "nodes", conversation_id)}
    assert {row["level"] for row in clusters.values()} == {1, 2, 3}
    leaves = [row for row in clusters.values() if not row["child_cluster_ids"]]
    # the leaves partition the nodes
    assert sorted(n for leaf in leaves for n in leaf["node_ids"]) == sorted(node_ids)
    for cluster in clusters.values():
        assert set(cluster["node_ids"]) <= node_ids
        if cluster["parent_cluster_id"] is None:
            assert cluster["level"] == 1
        else:
            parent = clusters[cluster["parent_cluster_id"]]
            assert cluster["id"] in parent["child_cluster_ids"]
            assert parent["level"] == cluster["level"] - 1
            assert set(cluster["node_ids"]) <= set(parent["node_ids"])
        for child in cluster["child_cluster_ids"]:
            assert clusters[child]["parent_cluster_id"] == cluster["id"]


async def test_edits_and_api_calls(
    connection: asyncpg.Connection, conversation_id: uuid.UUID
) -> None:
    edits = await _rows(connection, "edits_log", conversation_id)
    assert len(edits) == NODES // 10
    tables = {
        "node": "nodes",
        "relationship": "relationships",
        "cluster": "clusters",
        "utterance": "utterances",
        "speaker_attribution": "utterances",
    }
    for edit in edits:
        assert edit["user_id"] == "demo-owner"
        found = await connection.fetchval(
            f"SELECT conversation_id FROM {tables[edit['target_type']]} WHERE id = $1",
            edit["target_id"],
        )
        assert found == conversation_id
    calls = await _rows(connection, "api_calls_log", conversation_id)
    assert len(calls) == NODES // 25
    for call in calls:
        assert call["total_tokens"] == call["prompt_tokens"] + call["completion_tokens"]
        assert call["total_cost"] == pytest.approx(call["prompt_cost"] + call["completion_cost"])


async def test_same_seed_same_content(connection: asyncpg.Connection) -> None:
    first, second = [await generate_conversation(connection, nodes=40, seed=5) for _ in range(2)]
    assert first != second  # fresh ids unless id_seed is given

    async def content(conversation_id: uuid.UUID) -> list[tuple[Any, ...]]:
        rows = await connection.fetch(
            "SELECT sequence_number, text, speaker_id FROM utterances"
            " WHERE conversation_id = $1 ORDER BY sequence_number",
            conversation_id,
        )
        return [tuple(row) for row in rows]

    assert await content(first) == await content(second)
    third = await generate_conversation(connection, nodes=40, seed=6)
    assert await content(third) != await content(first)


async def test_id_seed_reproduces_ids(database_factory: DatabaseFactory) -> None:
    ids = []
    for _ in range(2):
        url = await database_factory.create()
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            conversation_id = await generate_conversation(connection, nodes=12, id_seed=3)
            node_ids = await connection.fetch(
                "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY id", conversation_id
            )
            ids.append((conversation_id, [row["id"] for row in node_ids]))
        finally:
            await connection.close()
    assert ids[0] == ids[1]


async def test_session_joins_the_callers_transaction(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        rolled_back = await generate_conversation(session, nodes=20, seed=1)
        await session.rollback()
    async with sessions() as session:
        kept = await generate_conversation(session, nodes=20, seed=1)
        await session.commit()
    async with sessions() as session:
        found = (
            await session.execute(
                select(Conversation.id).where(Conversation.id.in_([rolled_back, kept]))
            )
        ).scalars()
        assert list(found) == [kept]
        count = await session.scalar(
            select(func.count()).select_from(Node).where(Node.conversation_id == kept)
        )
        assert count == 20


async def test_small_conversations(connection: asyncpg.Connection) -> None:
    ids = await generate_small_conversations(
        connection, count=60, seed=2, owner_ids=("alice", "bob", "carol")
    )
    assert len(set(ids)) == 60
    rows = await connection.fetch(
        "SELECT c.id, c.owner_id, c.total_nodes, c.total_utterances,"
        " (SELECT count(*) FROM nodes n WHERE n.conversation_id = c.id) AS nodes,"
        " (SELECT count(*) FROM utterances u WHERE u.conversation_id = c.id) AS utterances"
        " FROM conversations c WHERE c.id = ANY($1::uuid[])",
        ids,
    )
    assert len(rows) == 60
    assert Counter(row["owner_id"] for row in rows) == {"alice": 20, "bob": 20, "carol": 20}
    for row in rows:
        assert 3 <= row["nodes"] == row["total_nodes"] <= 15
        assert row["utterances"] == row["total_utterances"] == 5 * row["nodes"]


async def test_tiny_conversations(connection: asyncpg.Connection) -> None:
    for size in (0, 1, 2):
        conversation_id = await generate_conversation(connection, nodes=size, seed=size)
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM nodes WHERE conversation_id = $1", conversation_id
            )
            == size
        )
