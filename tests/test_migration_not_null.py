"""Revision 4f7a1c9e2d63 on a database holding rows an older version left empty.

Below it the columns allow NULL; the upgrade fills each empty one with its default (`updated_at`
with the row's `created_at`), without touching the other columns or the `updated_at` the row
had, and then refuses NULL. The downgrade allows NULL again and keeps the values.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic import command

from db.base import Base
from db.settings import PROJECT_ROOT
from tests.conftest import asyncpg_dsn

REVISION = "4f7a1c9e2d63"
PATH = PROJECT_ROOT / "alembic" / "versions" / f"{REVISION}_not_null_where_always_filled.py"
SPEC = importlib.util.spec_from_file_location("not_null_revision", PATH)
assert SPEC is not None and SPEC.loader is not None
MIGRATION = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(MIGRATION)
BEFORE = MIGRATION.down_revision
STAMP = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

EMPTY_ROWS = """
INSERT INTO conversations (id, conversation_name, conversation_type, source_type, started_at,
  owner_id, created_at, updated_at, visibility, total_utterances, total_words, total_nodes,
  total_claims)
VALUES ($1, 'old', 'chat', 'x', now(), 'o', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       ($2, 'kept', 'chat', 'x', now(), 'o', $5, $5, 'public', 3, 4, 1, 0);
INSERT INTO nodes (id, conversation_id, node_name, summary, chunk_ids, created_at, updated_at,
  node_type, level, is_bookmark, is_contextual_progress, is_tangent, is_crux, canvas_width,
  canvas_height)
VALUES ($3, $1, 'n', 's', '{}', $5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       ($4, $2, 'm', 's', '{}', $5, $5, 'topic', 4, true, true, true, true, 10, 20);
INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number, created_at,
  updated_at)
VALUES ($1, 'transcript words', 's', 1, NULL, NULL);
INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type,
  created_at, updated_at, strength, confidence, is_bidirectional)
VALUES ($1, $3, $4, 'supports', $5, NULL, NULL, NULL, NULL);
INSERT INTO clusters (conversation_id, cluster_name, level, node_ids, created_at, updated_at,
  auto_generated)
VALUES ($1, 'c', 0, '{}', NULL, NULL, NULL);
INSERT INTO edits_log (conversation_id, target_type, target_id, field_name, edit_type, user_id,
  created_at, exported_for_training)
VALUES ($1, 'node', $3, 'node_name', 'correction', 'u', NULL, NULL);
"""


@pytest.fixture
async def before(database_factory, alembic_config_for):
    url = await database_factory.create()
    config = alembic_config_for(url)
    await asyncio.to_thread(command.upgrade, config, BEFORE)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    ids = [uuid.uuid4() for _ in range(4)]
    # Sent as one script, so asyncpg takes no parameters: inline them.
    script = EMPTY_ROWS
    for index, value in enumerate([*ids, STAMP.isoformat()], start=1):
        script = script.replace(f"${index}", f"'{value}'")
    await connection.execute(script)
    yield connection, config, ids
    await connection.close()


async def row(connection: asyncpg.Connection, table: str, where: str, *arguments) -> dict:
    return dict(await connection.fetchrow(f"SELECT * FROM {table} WHERE {where}", *arguments))


async def test_upgrade_fills_empty_columns_with_their_defaults(before) -> None:
    connection, config, (old, _kept, node, kept_node) = before
    kept_before = await row(connection, "nodes", "id = $1", kept_node)
    await asyncio.to_thread(command.upgrade, config, REVISION)

    conversation = await row(connection, "conversations", "id = $1", old)
    assert conversation["created_at"] is not None
    assert conversation["updated_at"] == conversation["created_at"]
    assert (conversation["visibility"], conversation["total_utterances"]) == ("private", 0)
    assert (conversation["total_words"], conversation["total_nodes"]) == (0, 0)
    assert conversation["total_claims"] == 0

    filled = await row(connection, "nodes", "id = $1", node)
    assert filled["updated_at"] == STAMP  # its created_at, not the time of the migration
    assert (filled["node_type"], filled["level"]) == ("conversational_thread", 1)
    flags = ("is_bookmark", "is_contextual_progress", "is_tangent", "is_crux")
    assert [filled[flag] for flag in flags] == [False] * 4
    assert (filled["canvas_width"], filled["canvas_height"]) == (350, 200)
    # A row that had every value keeps them, its updated_at included.
    assert await row(connection, "nodes", "id = $1", kept_node) == kept_before

    relationship = await row(connection, "relationships", "conversation_id = $1", old)
    assert (relationship["strength"], relationship["confidence"]) == (1.0, 1.0)
    assert relationship["is_bidirectional"] is False
    assert relationship["updated_at"] == STAMP
    cluster = await row(connection, "clusters", "conversation_id = $1", old)
    assert cluster["auto_generated"] is True and cluster["updated_at"] is not None
    edit = await row(connection, "edits_log", "conversation_id = $1", old)
    assert edit["exported_for_training"] is False and edit["created_at"] is not None
    utterance = await row(connection, "utterances", "conversation_id = $1", old)
    assert utterance["updated_at"] == utterance["created_at"] is not None

    for table, columns in MIGRATION.COLUMNS.items():
        for column in columns:
            assert await not_null(connection, table, column), (table, column)
    with pytest.raises(asyncpg.NotNullViolationError):
        await connection.execute("UPDATE nodes SET is_bookmark = NULL")


async def not_null(connection: asyncpg.Connection, table: str, column: str) -> bool:
    return await connection.fetchval(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2",
        table,
        column,
    )


async def test_the_models_say_not_null_for_every_column_the_revision_fills() -> None:
    for table, columns in MIGRATION.COLUMNS.items():
        for column in columns:
            assert not Base.metadata.tables[table].columns[column].nullable, (table, column)


async def test_downgrade_allows_null_again_and_keeps_the_values(before) -> None:
    connection, config, (old, *_rest) = before
    await asyncio.to_thread(command.upgrade, config, REVISION)
    filled = await row(connection, "conversations", "id = $1", old)
    await asyncio.to_thread(command.downgrade, config, BEFORE)
    assert await row(connection, "conversations", "id = $1", old) == filled
    for table, columns in MIGRATION.COLUMNS.items():
        for column in columns:
            assert not await not_null(connection, table, column), (table, column)
