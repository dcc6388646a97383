"""Close the gaps between the seed's promises and the initial revision.

Revision ID: 5d1f0c3a9b27
Revises: 732e0cd9a870
Create Date: 2026-11-24 06:00:00

- id defaults: the built-in gen_random_uuid(), whether or not uuid-ossp is installed;
- indexes on the self-referencing foreign keys (parent, predecessor, successor, parent cluster);
- GIN indexes on the uuid[] / int[] columns the API searches by member;
- UNIQUE(conversation_id, sequence_number) on utterances and
  UNIQUE(from_node_id, to_node_id, relationship_type) on relationships, from the data model
  (a database that already repeats such a key is refused with the keys named, and left as it was);
- ON DELETE SET NULL on the self references, so deleting a node or cluster never fails on them;
- updated_at kept current by the database on every UPDATE, and tsv_search filled from the
  conversation name, by triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError

revision: str = "5d1f0c3a9b27"
down_revision: str | Sequence[str] | None = "732e0cd9a870"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "conversations",
    "utterances",
    "nodes",
    "relationships",
    "clusters",
    "edits_log",
    "api_calls_log",
)
TABLES_WITH_UPDATED_AT = ("conversations", "nodes", "clusters")

INDEXES = (
    ("idx_nodes_parent", "nodes", "(parent_id)"),
    ("idx_nodes_predecessor", "nodes", "(predecessor_id)"),
    ("idx_nodes_successor", "nodes", "(successor_id)"),
    ("idx_clusters_parent", "clusters", "(parent_cluster_id)"),
    ("idx_clusters_node_ids", "clusters", "USING gin (node_ids)"),
    ("idx_nodes_zoom_levels", "nodes", "USING gin (zoom_level_visible)"),
)

SELF_REFERENCES = (
    ("nodes", "nodes_parent_id_fkey", "parent_id", "nodes"),
    ("nodes", "nodes_predecessor_id_fkey", "predecessor_id", "nodes"),
    ("nodes", "nodes_successor_id_fkey", "successor_id", "nodes"),
    ("clusters", "clusters_parent_cluster_id_fkey", "parent_cluster_id", "clusters"),
)

UNIQUES = (
    (
        "utterances",
        "utterances_conversation_id_sequence_number_key",
        "conversation_id, sequence_number",
    ),
    (
        "relationships",
        "relationships_from_node_id_to_node_id_relationship_type_key",
        "from_node_id, to_node_id, relationship_type",
    ),
)

EXAMPLES = 3


def _repeated_keys_query(table: str, columns: str) -> str:
    """How many keys of `columns` repeat in `table`, and the first few, as one row."""
    return f"""
        SELECT count(*) AS repeated,
               string_agg(example, ', ' ORDER BY position)
                   FILTER (WHERE position <= {EXAMPLES}) AS examples
        FROM (
            SELECT '(' || concat_ws(', ', {columns}) || ') ' || count(*) || ' times' AS example,
                   row_number() OVER (ORDER BY {columns}) AS position
            FROM {table} GROUP BY {columns} HAVING count(*) > 1
        ) AS repeats"""


REFUSAL_START = "revision 5d1f0c3a9b27 adds unique keys that existing rows repeat: "
REFUSAL_END = (
    "; delete the extra rows (or give them keys of their own) and upgrade again"
    " (the database was left unchanged)"
)
PROBLEM = "{count} ({columns}) keys repeat in {table}, for example {examples}"


def _refuse_repeated_keys() -> None:
    """ADD CONSTRAINT ... UNIQUE on rows that repeat a key fails with a bare database error; say
    which keys, before anything changes. Offline (`--sql`) the same check is a DO block that
    raises when the script is applied."""
    if context.is_offline_mode():
        checks = "".join(
            f"""
    SELECT found.repeated, found.examples INTO repeated_keys, example_keys
    FROM ({_repeated_keys_query(table, columns)}) AS found;
    IF repeated_keys > 0 THEN
        problems := array_append(problems, format(
            '{PROBLEM.format(count="%s", columns=columns, table=table, examples="%s")}',
            repeated_keys, example_keys));
    END IF;"""
            for table, _name, columns in UNIQUES
        )
        op.execute(
            f"""
DO $$
DECLARE
    problems text[] := '{{}}';
    repeated_keys bigint;
    example_keys text;
BEGIN{checks}
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION '%', '{REFUSAL_START}' || array_to_string(problems, '; ')
            || '{REFUSAL_END}';
    END IF;
END
$$"""
        )
        return
    problems = []
    for table, _name, columns in UNIQUES:
        found = op.get_bind().execute(sa.text(_repeated_keys_query(table, columns))).one()
        if found.repeated:
            problems.append(
                PROBLEM.format(
                    count=found.repeated, columns=columns, table=table, examples=found.examples
                )
            )
    if problems:
        raise CommandError(REFUSAL_START + "; ".join(problems) + REFUSAL_END)


SET_UPDATED_AT = """
CREATE OR REPLACE FUNCTION lct_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$
"""

SET_TSV_SEARCH = """
CREATE OR REPLACE FUNCTION lct_set_conversation_tsv() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.tsv_search := to_tsvector('english', coalesce(NEW.conversation_name, ''));
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    _refuse_repeated_keys()
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    for name, table, definition in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} {definition}")
    for table, name, columns in UNIQUES:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({columns})")
    for table, name, column, referenced in SELF_REFERENCES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {referenced} (id) ON DELETE SET NULL"
        )
    # Filled before the updated_at trigger exists, so the backfill leaves updated_at alone.
    op.execute(
        "UPDATE conversations SET tsv_search = "
        "to_tsvector('english', coalesce(conversation_name, '')) WHERE tsv_search IS NULL"
    )
    op.execute(SET_UPDATED_AT)
    for table in TABLES_WITH_UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lct_set_updated_at()"
        )
    op.execute(SET_TSV_SEARCH)
    op.execute(
        "CREATE TRIGGER conversations_set_tsv BEFORE INSERT OR UPDATE OF conversation_name "
        "ON conversations FOR EACH ROW EXECUTE FUNCTION lct_set_conversation_tsv()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER conversations_set_tsv ON conversations")
    op.execute("DROP FUNCTION lct_set_conversation_tsv()")
    for table in TABLES_WITH_UPDATED_AT:
        op.execute(f"DROP TRIGGER {table}_set_updated_at ON {table}")
    op.execute("DROP FUNCTION lct_set_updated_at()")
    for table, name, column, referenced in SELF_REFERENCES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {referenced} (id)"
        )
    for table, name, _columns in UNIQUES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _table, _definition in INDEXES:
        op.execute(f"DROP INDEX {name}")
    # The initial revision's default: uuid-ossp where it is installed, gen_random_uuid() otherwise.
    op.execute(
        """
        DO $$
        DECLARE
            generator text := 'gen_random_uuid()';
            table_name text;
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'uuid-ossp') THEN
                generator := 'uuid_generate_v4()';
            END IF;
            FOREACH table_name IN ARRAY ARRAY[{tables}] LOOP
                EXECUTE format('ALTER TABLE %I ALTER COLUMN id SET DEFAULT ' || generator, table_name);
            END LOOP;
        END
        $$
        """.format(tables=", ".join(f"'{table}'" for table in TABLES))
    )
