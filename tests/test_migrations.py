"""The migration history walked both ways, offline SQL, and the revision closing the seed's gaps.

Every test makes its own database, so none depends on another or on the order they run in.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from db.settings import PROJECT_ROOT
from tests.conftest import asyncpg_dsn

INITIAL = "732e0cd9a870"
GAPS = "5d1f0c3a9b27"
TABLES = (
    "conversations",
    "utterances",
    "nodes",
    "relationships",
    "clusters",
    "edits_log",
    "api_calls_log",
)
ALEMBIC = Path(sys.executable).with_name("alembic")


def history() -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


async def current_revision(connection: asyncpg.Connection) -> str | None:
    exists = await connection.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not exists:
        return None
    rows = await connection.fetch("SELECT version_num FROM alembic_version")
    assert len(rows) <= 1
    return rows[0]["version_num"] if rows else None


SNAPSHOT_QUERIES = {
    "relations": """
        SELECT c.relname || ' ' || c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic_version%'""",
    "columns": """
        SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
               || ' ' || coalesce(column_default, '-')
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'alembic_version'""",
    "indexes": """
        SELECT indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version'""",
    "constraints": """
        SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
          AND conrelid::regclass::text <> 'alembic_version'""",
    "triggers": """
        SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal""",
    "functions": """
        SELECT p.proname || ' ' || md5(p.prosrc) FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace""",
    "extensions": "SELECT extname FROM pg_extension",
    "types": """
        SELECT typname FROM pg_type t
        WHERE typnamespace = 'public'::regnamespace AND typrelid = 0 AND typelem = 0""",
}


async def snapshot(connection: asyncpg.Connection) -> dict[str, list[str]]:
    """Everything a migration can create in the database, as sorted lines."""
    return {
        part: sorted(row[0] for row in await connection.fetch(query))
        for part, query in SNAPSHOT_QUERIES.items()
    }


@pytest.fixture
async def empty_database(database_factory):
    return await database_factory.create()


async def test_history_is_one_line_from_the_initial_revision() -> None:
    revisions = history()
    assert revisions[:2] == [INITIAL, GAPS]
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    assert script.get_bases() == [INITIAL]
    assert script.get_heads() == [revisions[-1]]


async def test_walk_base_head_base_head(empty_database, alembic_config_for) -> None:
    config = alembic_config_for(empty_database)
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        empty = await snapshot(connection)
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await current_revision(connection) == history()[-1]
        at_head = await snapshot(connection)
        assert set(at_head["relations"]) >= {f"{table} r" for table in TABLES}

        await asyncio.to_thread(command.downgrade, config, "base")
        assert await current_revision(connection) is None
        # The downgrade removes all of it: tables, indexes, triggers, functions, extensions.
        assert await snapshot(connection) == empty

        await asyncio.to_thread(command.upgrade, config, "head")
        assert await current_revision(connection) == history()[-1]
        assert await snapshot(connection) == at_head
    finally:
        await connection.close()


async def test_walk_one_revision_at_a_time(empty_database, alembic_config_for) -> None:
    """+1 up to head and -1 back to base; each step lands on the next revision, and each
    downgrade restores exactly the schema the step before it had."""
    config = alembic_config_for(empty_database)
    revisions = history()
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        snapshots = [await snapshot(connection)]
        for revision in revisions:
            await asyncio.to_thread(command.upgrade, config, "+1")
            assert await current_revision(connection) == revision
            snapshots.append(await snapshot(connection))
        assert len({repr(s) for s in snapshots}) == len(snapshots), "a revision changed nothing"

        for index in range(len(revisions) - 1, -1, -1):
            await asyncio.to_thread(command.downgrade, config, "-1")
            assert await current_revision(connection) == (revisions[index - 1] if index else None)
            assert await snapshot(connection) == snapshots[index]
    finally:
        await connection.close()


async def has_uuid_ossp(connection: asyncpg.Connection, *, installed: bool = False) -> bool:
    catalog = "pg_extension WHERE extname" if installed else "pg_available_extensions WHERE name"
    return await connection.fetchval(f"SELECT count(*) > 0 FROM {catalog} = 'uuid-ossp'")


async def test_downgrade_keeps_a_uuid_ossp_that_was_there_before(
    empty_database, alembic_config_for
) -> None:
    """In use where PostgreSQL records no dependency (a PL/pgSQL body, another application's
    SQL), so only where the extension came from can tell; it came from elsewhere."""
    config = alembic_config_for(empty_database)
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        if not await has_uuid_ossp(connection):
            pytest.skip("this server has no uuid-ossp")
        await connection.execute('CREATE EXTENSION "uuid-ossp"')
        await connection.execute(
            "CREATE FUNCTION other_application_id() RETURNS uuid LANGUAGE plpgsql"
            " AS 'BEGIN RETURN uuid_generate_v4(); END'"
        )
        await asyncio.to_thread(command.upgrade, config, "head")
        await asyncio.to_thread(command.downgrade, config, "base")
        assert await connection.fetchval("SELECT to_regclass('conversations')") is None
        assert await has_uuid_ossp(connection, installed=True)
        assert isinstance(await connection.fetchval("SELECT other_application_id()"), uuid.UUID)
    finally:
        await connection.close()


async def test_downgrade_keeps_uuid_ossp_when_something_else_depends_on_it(
    empty_database, alembic_config_for
) -> None:
    """Installed by the upgrade, since used by another table: the downgrade leaves it (before,
    DROP EXTENSION failed and so did the downgrade)."""
    config = alembic_config_for(empty_database)
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        if not await has_uuid_ossp(connection):
            pytest.skip("this server has no uuid-ossp")
        await asyncio.to_thread(command.upgrade, config, "head")
        await connection.execute(
            "CREATE TABLE other_application_items (id uuid DEFAULT uuid_generate_v4())"
        )
        await asyncio.to_thread(command.downgrade, config, "base")
        assert await current_revision(connection) is None
        assert await connection.fetchval("SELECT to_regclass('conversations')") is None
        assert await has_uuid_ossp(connection, installed=True)
        await connection.execute("INSERT INTO other_application_items DEFAULT VALUES")
        # With its user gone, the next downgrade of a fresh install removes it again.
        await connection.execute("DROP TABLE other_application_items")
        await connection.execute('DROP EXTENSION "uuid-ossp"')
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await has_uuid_ossp(connection, installed=True)
        await asyncio.to_thread(command.downgrade, config, "base")
        assert not await has_uuid_ossp(connection, installed=True)
    finally:
        await connection.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def offline_sql(closed_port: int, *revisions: str) -> str:
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgresql://nobody:secret@127.0.0.1:{closed_port}/nowhere",
    }
    result = subprocess.run(
        [str(ALEMBIC), "upgrade", *revisions, "--sql"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_offline_sql_needs_no_database(closed_port) -> None:
    sql = offline_sql(closed_port, "head")
    assert "CREATE TABLE conversations (" in sql
    assert "CREATE INDEX idx_nodes_speaker ON nodes" in sql
    assert "CREATE INDEX idx_clusters_node_ids ON clusters USING gin (node_ids)" in sql
    assert "ALTER TABLE nodes ALTER COLUMN id SET DEFAULT gen_random_uuid()" in sql
    assert "CREATE TRIGGER conversations_set_updated_at" in sql
    assert "CREATE TABLE alembic_version" in sql
    assert f"UPDATE alembic_version SET version_num='{history()[-1]}'" in sql
    assert sql.count("COMMIT;") >= 1


async def test_offline_sql_builds_what_the_online_upgrade_builds(
    closed_port, database_factory, alembic_config_for
) -> None:
    by_script_url, online_url = await database_factory.create(), await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config_for(online_url), "head")
    sql = offline_sql(closed_port, "head")
    script_connection = await asyncpg.connect(asyncpg_dsn(by_script_url))
    online_connection = await asyncpg.connect(asyncpg_dsn(online_url))
    try:
        await script_connection.execute(sql)
        assert await snapshot(script_connection) == await snapshot(online_connection)
    finally:
        await script_connection.close()
        await online_connection.close()


# --- the gap-closing revision ------------------------------------------------------------------

SEED_ROWS = """
INSERT INTO conversations (conversation_name, conversation_type, source_type, started_at,
                           owner_id, updated_at)
VALUES ('Quarterly budget review', 'transcript', 'google_meet', '2024-05-01T10:00:00Z', 'alice',
        '2024-05-01T11:00:00Z');
INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)
SELECT id, 'We are over budget.', 'alice', n FROM conversations, generate_series(1, 3) AS n;
INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids, updated_at)
SELECT id, 'Budget', 'Over budget', ARRAY[gen_random_uuid()], '2024-05-01T11:00:00Z'
FROM conversations;
INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids, parent_id)
SELECT conversation_id, 'Cuts', 'Where to cut', '{}', id FROM nodes;
INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type)
SELECT a.conversation_id, a.id, b.id, 'elaborates' FROM nodes a JOIN nodes b ON b.parent_id = a.id;
INSERT INTO clusters (conversation_id, cluster_name, level, node_ids)
SELECT conversation_id, 'Money', 1, array_agg(id) FROM nodes GROUP BY conversation_id;
INSERT INTO edits_log (conversation_id, target_type, target_id, field_name, edit_type, user_id)
SELECT conversation_id, 'node', id, 'summary', 'correction', 'alice' FROM nodes LIMIT 1;
INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model, prompt_tokens,
    completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost, status, started_at)
SELECT id, '/v1/chat', 'summarise', 'openai', 'gpt', 10, 5, 15, 0.1, 0.2, 0.3, 'ok', now()
FROM conversations;
"""


async def rows_by_table(connection: asyncpg.Connection) -> dict[str, list[dict[str, object]]]:
    """Each table's rows, ordered by id."""
    found = {}
    for table in TABLES:
        rows = await connection.fetch(f"SELECT to_jsonb(t)::text AS row FROM {table} t ORDER BY id")
        found[table] = [json.loads(row["row"]) for row in rows]
    return found


async def simulate_original_initial_revision(connection: asyncpg.Connection) -> None:
    """Ids default to uuid_generate_v4(), as the original 732e0cd9a870 left them.

    Where the server lacks uuid-ossp (the embedded one), a plain SQL function of that name stands
    in for the extension's.
    """
    available = await connection.fetchval(
        "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'uuid-ossp'"
    )
    if available:
        await connection.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    else:
        await connection.execute(
            "CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql "
            "AS 'SELECT gen_random_uuid()'"
        )
    for table in TABLES:
        await connection.execute(
            f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT uuid_generate_v4()"
        )


@pytest.mark.parametrize("created_by", ["the original 732e0cd9a870", "this project's 732e0cd9a870"])
async def test_gap_revision_upgrades_existing_databases(
    created_by, empty_database, alembic_config_for
) -> None:
    config = alembic_config_for(empty_database)
    await asyncio.to_thread(command.upgrade, config, INITIAL)
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        if created_by.startswith("the original"):
            await simulate_original_initial_revision(connection)
            defaults = await connection.fetch(
                "SELECT DISTINCT column_default FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'id'"
            )
            assert [row["column_default"] for row in defaults] == ["uuid_generate_v4()"]
        await connection.execute(SEED_ROWS)
        before = await rows_by_table(connection)
        assert all(before.values())

        await asyncio.to_thread(command.upgrade, config, "head")

        after = await rows_by_table(connection)
        for table in TABLES:
            # Every row survives with its values; only the search column may be filled in, and
            # later revisions may add columns.
            kept = [
                {key: row[key] for key in before_row if key != "tsv_search"}
                for row, before_row in zip(after[table], before[table], strict=True)
            ]
            assert kept == [
                {key: value for key, value in row.items() if key != "tsv_search"}
                for row in before[table]
            ], table
        defaults = await connection.fetch(
            "SELECT table_name, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'id' "
            "AND table_name <> 'alembic_version'"
        )
        # (the change feed's `changes` has an identity id, not a UUID)
        assert {
            row["table_name"]: row["column_default"]
            for row in defaults
            if row["table_name"] != "changes"
        } == {table: "gen_random_uuid()" for table in TABLES}
        # The backfill filled the search column without touching updated_at.
        backfilled = await connection.fetchrow(
            "SELECT tsv_search @@ to_tsquery('english', 'budget') AS found, updated_at "
            "FROM conversations"
        )
        assert backfilled["found"] is True
        assert backfilled["updated_at"].isoformat() == "2024-05-01T11:00:00+00:00"
        new_id = await connection.fetchval(
            "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
            " started_at, owner_id) VALUES ('new', 'chat', 'slack', now(), 'bob') RETURNING id"
        )
        assert isinstance(new_id, uuid.UUID)
    finally:
        await connection.close()


# Rows a database at the original 732e0cd9a870 may hold, which the gap revision's UNIQUEs refuse:
# five repeated utterance keys (sequence numbers 1, 2, 4, 5, 6) and one repeated relationship.
REPEATED_KEYS = """
INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)
SELECT conversation_id, 'again', 'bob', sequence_number FROM utterances WHERE sequence_number <= 2;
INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)
SELECT id, 'twice', 'carol', n
FROM conversations, generate_series(4, 6) AS n, generate_series(1, 2) AS copy;
INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type)
SELECT conversation_id, from_node_id, to_node_id, relationship_type FROM relationships;
"""
REMOVE_REPEATED_KEYS = """
DELETE FROM utterances later USING utterances earlier
WHERE later.conversation_id = earlier.conversation_id
  AND later.sequence_number = earlier.sequence_number AND later.id > earlier.id;
DELETE FROM relationships later USING relationships earlier
WHERE (later.from_node_id, later.to_node_id, later.relationship_type)
    = (earlier.from_node_id, earlier.to_node_id, earlier.relationship_type)
  AND later.id > earlier.id;
"""


async def expected_refusal_parts(connection: asyncpg.Connection) -> list[str]:
    """What the refusal must name for SEED_ROWS + REPEATED_KEYS: counts and the first keys."""
    conversation = await connection.fetchval("SELECT id FROM conversations")
    edge = await connection.fetchrow("SELECT from_node_id, to_node_id FROM relationships LIMIT 1")
    return [
        "5 (conversation_id, sequence_number) keys repeat in utterances, for example "
        f"({conversation}, 1) 2 times, ({conversation}, 2) 2 times, ({conversation}, 4) 2 times;",
        "1 (from_node_id, to_node_id, relationship_type) keys repeat in relationships, for example "
        f"({edge['from_node_id']}, {edge['to_node_id']}, elaborates) 2 times;",
        "delete the extra rows",
    ]


async def test_offline_sql_refuses_repeated_keys_when_applied(
    closed_port, empty_database, alembic_config_for
) -> None:
    """`--sql` cannot look at the data, so its script carries the check and raises."""
    await asyncio.to_thread(command.upgrade, alembic_config_for(empty_database), INITIAL)
    sql = offline_sql(closed_port, f"{INITIAL}:head")
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        await connection.execute(SEED_ROWS + REPEATED_KEYS)
        before = await snapshot(connection)
        with pytest.raises(asyncpg.RaiseError) as raised:
            await connection.execute(sql)
        await connection.execute("ROLLBACK")  # the script's own transaction, now failed
        for part in await expected_refusal_parts(connection):
            assert part in str(raised.value)
        assert await current_revision(connection) == INITIAL
        assert await snapshot(connection) == before

        await connection.execute(REMOVE_REPEATED_KEYS)
        await connection.execute(sql)
        assert await current_revision(connection) == history()[-1]
    finally:
        await connection.close()


@pytest.fixture
async def head_connection(database_factory, alembic_config_for):
    url = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config_for(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    await connection.execute(SEED_ROWS)
    yield connection
    await connection.close()


async def test_utterance_sequence_numbers_are_unique_per_conversation(head_connection) -> None:
    with pytest.raises(asyncpg.UniqueViolationError) as raised:
        await head_connection.execute(
            "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number) "
            "SELECT id, 'again', 'bob', 2 FROM conversations"
        )
    assert raised.value.constraint_name == "utterances_conversation_id_sequence_number_key"
    await head_connection.execute(
        "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number) "
        "SELECT id, 'next', 'bob', 4 FROM conversations"
    )


async def test_relationships_are_unique_per_pair_and_type(head_connection) -> None:
    duplicate = (
        "INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type) "
        "SELECT conversation_id, from_node_id, to_node_id, $1 FROM relationships"
    )
    with pytest.raises(asyncpg.UniqueViolationError) as raised:
        await head_connection.execute(duplicate, "elaborates")
    assert (
        raised.value.constraint_name
        == "relationships_from_node_id_to_node_id_relationship_type_key"
    )
    await head_connection.execute(duplicate, "supports")  # another type between the same nodes
    assert await head_connection.fetchval("SELECT count(*) FROM relationships") == 2


async def test_a_plain_sql_update_moves_updated_at(head_connection) -> None:
    tables = [
        row["table_name"]
        for row in await head_connection.fetch(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'updated_at' ORDER BY table_name"
        )
    ]
    assert {"conversations", "nodes", "clusters"} <= set(tables)
    for table in tables:
        # An old value set by hand, then an UPDATE of another column: the trigger replaces it.
        await head_connection.execute(
            f"ALTER TABLE {table} DISABLE TRIGGER {table}_set_updated_at;"
            f"UPDATE {table} SET updated_at = '2000-01-01T00:00:00Z';"
            f"ALTER TABLE {table} ENABLE TRIGGER {table}_set_updated_at;"
        )
        await head_connection.execute(f"UPDATE {table} SET created_at = created_at")
        stale = await head_connection.fetchval(
            f"SELECT count(*) FROM {table} WHERE updated_at < now() - interval '1 hour'"
        )
        total = await head_connection.fetchval(f"SELECT count(*) FROM {table}")
        assert total > 0 and stale == 0, table


async def test_tsv_search_follows_the_conversation_name(head_connection) -> None:
    conversation_id = await head_connection.fetchval(
        "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
        " started_at, owner_id) VALUES ('Hiring the platform team', 'chat', 'slack', now(),"
        " 'bob') RETURNING id"
    )
    matches = "SELECT tsv_search @@ to_tsquery('english', $2) FROM conversations WHERE id = $1"
    assert await head_connection.fetchval(matches, conversation_id, "hire") is True
    await head_connection.execute(
        "UPDATE conversations SET conversation_name = 'Office relocation' WHERE id = $1",
        conversation_id,
    )
    assert await head_connection.fetchval(matches, conversation_id, "hire") is False
    assert await head_connection.fetchval(matches, conversation_id, "relocation") is True


async def test_deleting_a_referenced_node_or_cluster_sets_references_to_null(
    head_connection,
) -> None:
    parent, child = await head_connection.fetchrow(
        "SELECT parent_id, id FROM nodes WHERE parent_id IS NOT NULL"
    )
    third = await head_connection.fetchval(
        "INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids, predecessor_id, "
        "successor_id) SELECT conversation_id, 'After', 's', '{}', $1, $1 FROM nodes WHERE id = $1 "
        "RETURNING id",
        parent,
    )
    top_cluster = await head_connection.fetchval("SELECT id FROM clusters")
    sub_cluster = await head_connection.fetchval(
        "INSERT INTO clusters (conversation_id, cluster_name, level, node_ids, parent_cluster_id) "
        "SELECT conversation_id, 'Sub', 2, '{}', id FROM clusters WHERE id = $1 RETURNING id",
        top_cluster,
    )

    await head_connection.execute("DELETE FROM nodes WHERE id = $1", parent)
    await head_connection.execute("DELETE FROM clusters WHERE id = $1", top_cluster)

    assert (
        await head_connection.fetchval("SELECT parent_id FROM nodes WHERE id = $1", child) is None
    )
    assert tuple(
        await head_connection.fetchrow(
            "SELECT predecessor_id, successor_id FROM nodes WHERE id = $1", third
        )
    ) == (None, None)
    assert (
        await head_connection.fetchval(
            "SELECT parent_cluster_id FROM clusters WHERE id = $1", sub_cluster
        )
        is None
    )


async def test_before_the_gap_revision_deleting_a_parent_fails(
    empty_database, alembic_config_for
) -> None:
    """The behaviour the gap revision fixes, so the test above can tell the two apart."""
    await asyncio.to_thread(command.upgrade, alembic_config_for(empty_database), INITIAL)
    connection = await asyncpg.connect(asyncpg_dsn(empty_database))
    try:
        await connection.execute(SEED_ROWS)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await connection.execute("DELETE FROM nodes WHERE parent_id IS NULL")
    finally:
        await connection.close()


async def test_gap_indexes_exist_at_head(head_connection) -> None:
    definitions = {
        row["indexname"]: row["indexdef"]
        for row in await head_connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    }
    assert definitions["idx_nodes_parent"].endswith("ON public.nodes USING btree (parent_id)")
    assert definitions["idx_nodes_predecessor"].endswith("USING btree (predecessor_id)")
    assert definitions["idx_nodes_successor"].endswith("USING btree (successor_id)")
    assert definitions["idx_clusters_parent"].endswith(
        "ON public.clusters USING btree (parent_cluster_id)"
    )
    assert definitions["idx_clusters_node_ids"].endswith("ON public.clusters USING gin (node_ids)")
    assert definitions["idx_nodes_zoom_levels"].endswith("USING gin (zoom_level_visible)")
    # Revision bee3b2142479: parents are found by member of these arrays.
    assert definitions["idx_nodes_children_ids"].endswith(
        "ON public.nodes USING gin (children_ids)"
    )
    assert definitions["idx_clusters_child_cluster_ids"].endswith(
        "ON public.clusters USING gin (child_cluster_ids)"
    )


async def test_parent_lookups_by_member_use_the_gin_indexes(head_connection) -> None:
    """The `@>` form graph/services/hierarchy.py sends, planned with sequential scans off."""
    await head_connection.execute("SET enable_seqscan = off")
    for table, column in (("nodes", "children_ids"), ("clusters", "child_cluster_ids")):
        plan = "\n".join(
            row[0]
            for row in await head_connection.fetch(
                f"EXPLAIN SELECT id FROM {table} WHERE {column} @> ARRAY['{uuid.uuid4()}'::uuid]"
            )
        )
        assert f"idx_{table}_{column}" in plan, plan
