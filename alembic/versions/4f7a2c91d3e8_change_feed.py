"""The change feed: `changes`, `change_counters`, and the triggers that fill them.

Revision ID: 4f7a2c91d3e8
Revises: 4f7a1c9e2d63
Create Date: 2026-12-01 08:00:00

Statement-level triggers on conversations, utterances, nodes, relationships and clusters record
every write in the writing transaction: one `changes` row per transaction and conversation,
collecting the kinds of rows written and the ids touched. The first change of a transaction to a
conversation takes the next `position` from the conversation's counter row, which stays locked
until the transaction ends, so positions are gap-free and follow commit order. Changes that
matter to conversation lists (created, sharing, deleted, restored, renamed, purged) also take the
next `list_position` from the nil UUID's counter. Each change is announced with
`NOTIFY lct_changes` (delivered at commit; graph/live.py listens, and polls besides).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4f7a2c91d3e8"
down_revision: str | Sequence[str] | None = "4f7a1c9e2d63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("conversations", "utterances", "nodes", "relationships", "clusters")

NOTE_CHANGE = """
CREATE FUNCTION lct_note_change(
    changed uuid, kind text, touched_table text, touched uuid[], before jsonb, after jsonb,
    listed boolean
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    transaction bigint := pg_current_xact_id()::text::bigint;
    change_id bigint;
    listed_at bigint;
    next_position bigint;
BEGIN
    UPDATE changes SET
        kinds = CASE WHEN kind = ANY (kinds) THEN kinds ELSE kinds || kind END,
        node_ids = CASE WHEN touched_table = 'nodes' THEN node_ids || touched ELSE node_ids END,
        relationship_ids = CASE WHEN touched_table = 'relationships'
            THEN relationship_ids || touched ELSE relationship_ids END,
        cluster_ids = CASE WHEN touched_table = 'clusters'
            THEN cluster_ids || touched ELSE cluster_ids END,
        utterance_ids = CASE WHEN touched_table = 'utterances'
            THEN utterance_ids || touched ELSE utterance_ids END,
        access_before = coalesce(access_before, before),
        access_after = CASE WHEN before IS NULL AND after IS NULL THEN access_after ELSE after END
    WHERE transaction_id = transaction AND conversation_id = changed
    RETURNING id, list_position INTO change_id, listed_at;
    IF change_id IS NULL THEN
        INSERT INTO change_counters AS counter (conversation_id, position) VALUES (changed, 1)
        ON CONFLICT (conversation_id) DO UPDATE SET position = counter.position + 1
        RETURNING position INTO next_position;
        INSERT INTO changes (
            conversation_id, position, transaction_id, kinds, node_ids, relationship_ids,
            cluster_ids, utterance_ids, access_before, access_after
        ) VALUES (
            changed, next_position, transaction, ARRAY[kind],
            CASE WHEN touched_table = 'nodes' THEN touched ELSE '{}' END,
            CASE WHEN touched_table = 'relationships' THEN touched ELSE '{}' END,
            CASE WHEN touched_table = 'clusters' THEN touched ELSE '{}' END,
            CASE WHEN touched_table = 'utterances' THEN touched ELSE '{}' END,
            before, after
        ) RETURNING id INTO change_id;
        PERFORM pg_notify('lct_changes', changed::text);
    END IF;
    IF listed AND listed_at IS NULL THEN
        INSERT INTO change_counters AS counter (conversation_id, position)
        VALUES ('00000000-0000-0000-0000-000000000000', 1)
        ON CONFLICT (conversation_id) DO UPDATE SET position = counter.position + 1
        RETURNING position INTO next_position;
        UPDATE changes SET list_position = next_position WHERE id = change_id;
        PERFORM pg_notify('lct_changes', 'list');
    END IF;
END
$$;
"""

# The access facts of a conversation row that decide who may read it (graph/permissions.py).
ACCESS = """jsonb_build_object('owner_id', {row}.owner_id, 'visibility', {row}.visibility,
    'shared_with', to_jsonb({row}.shared_with), 'deleted', {row}.deleted_at IS NOT NULL)"""

RECORD_CONVERSATION = f"""
CREATE FUNCTION lct_record_conversation_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    item record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR item IN SELECT id, {ACCESS.format(row="inserted")} AS access FROM inserted LOOP
            PERFORM lct_note_change(item.id, 'conversations.INSERT', NULL, NULL, NULL,
                item.access, true);
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR item IN SELECT id, {ACCESS.format(row="deleted")} AS access FROM deleted LOOP
            PERFORM lct_note_change(item.id, 'conversations.DELETE', NULL, NULL, item.access,
                NULL, true);
        END LOOP;
    ELSE
        FOR item IN
            SELECT after.id,
                {ACCESS.format(row="before")} AS access_before,
                {ACCESS.format(row="after")} AS access_after,
                CASE
                    WHEN before.deleted_at IS NULL AND after.deleted_at IS NOT NULL
                        THEN 'conversations.deleted'
                    WHEN before.deleted_at IS NOT NULL AND after.deleted_at IS NULL
                        THEN 'conversations.restored'
                    WHEN before.visibility IS DISTINCT FROM after.visibility
                        OR before.shared_with IS DISTINCT FROM after.shared_with
                        OR before.owner_id IS DISTINCT FROM after.owner_id
                        THEN 'conversations.sharing'
                    WHEN before.conversation_name IS DISTINCT FROM after.conversation_name
                        THEN 'conversations.renamed'
                    ELSE 'conversations.UPDATE'
                END AS kind
            FROM updated_new AS after JOIN updated_old AS before USING (id)
        LOOP
            IF item.kind = 'conversations.UPDATE' THEN
                PERFORM lct_note_change(item.id, item.kind, NULL, NULL, NULL, NULL, false);
            ELSE
                PERFORM lct_note_change(item.id, item.kind, NULL, NULL, item.access_before,
                    item.access_after, true);
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
"""

# A purge's cascade deletes every row of the conversation; the change names none of them.
RECORD_ROWS = """
CREATE FUNCTION lct_record_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    item record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR item IN SELECT conversation_id, array_agg(id) AS ids FROM inserted
                GROUP BY conversation_id LOOP
            PERFORM lct_note_change(item.conversation_id, TG_TABLE_NAME || '.INSERT',
                TG_TABLE_NAME, item.ids, NULL, NULL, false);
        END LOOP;
    ELSIF TG_OP = 'UPDATE' THEN
        FOR item IN SELECT conversation_id, array_agg(id) AS ids FROM updated_new
                GROUP BY conversation_id LOOP
            PERFORM lct_note_change(item.conversation_id, TG_TABLE_NAME || '.UPDATE',
                TG_TABLE_NAME, item.ids, NULL, NULL, false);
        END LOOP;
    ELSE
        FOR item IN SELECT conversation_id, array_agg(id) AS ids FROM deleted
                WHERE EXISTS (SELECT FROM conversations WHERE id = deleted.conversation_id)
                GROUP BY conversation_id LOOP
            PERFORM lct_note_change(item.conversation_id, TG_TABLE_NAME || '.DELETE',
                TG_TABLE_NAME, item.ids, NULL, NULL, false);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
"""


def _triggers(table: str) -> list[str]:
    function = (
        "lct_record_conversation_change" if table == "conversations" else "lct_record_row_change"
    )
    return [
        f"CREATE TRIGGER lct_{table}_inserted AFTER INSERT ON {table}"
        f" REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER lct_{table}_updated AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER lct_{table}_deleted AFTER DELETE ON {table}"
        f" REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("list_position", sa.BigInteger(), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column(
            "kinds",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        *(
            sa.Column(
                column,
                postgresql.ARRAY(postgresql.UUID(as_uuid=True)),
                server_default=sa.text("'{}'::uuid[]"),
                nullable=False,
            )
            for column in ("node_ids", "relationship_ids", "cluster_ids", "utterance_ids")
        ),
        sa.Column("access_before", postgresql.JSONB(), nullable=True),
        sa.Column("access_after", postgresql.JSONB(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="changes_pkey"),
        sa.UniqueConstraint(
            "conversation_id", "position", name="changes_conversation_id_position_key"
        ),
        sa.UniqueConstraint(
            "transaction_id", "conversation_id", name="changes_transaction_id_conversation_id_key"
        ),
    )
    op.create_index("uq_changes_list_position", "changes", ["list_position"], unique=True)
    op.create_index("idx_changes_created_at", "changes", ["created_at"])
    op.create_table(
        "change_counters",
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="change_counters_pkey"),
    )
    op.execute(NOTE_CHANGE)
    op.execute(RECORD_CONVERSATION)
    op.execute(RECORD_ROWS)
    for table in TABLES:
        for statement in _triggers(table):
            op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        for event in ("inserted", "updated", "deleted"):
            op.execute(f"DROP TRIGGER lct_{table}_{event} ON {table}")
    op.execute("DROP FUNCTION lct_record_row_change()")
    op.execute("DROP FUNCTION lct_record_conversation_change()")
    op.execute("DROP FUNCTION lct_note_change(uuid, text, text, uuid[], jsonb, jsonb, boolean)")
    op.drop_table("change_counters")
    op.drop_index("idx_changes_created_at", table_name="changes")
    op.drop_index("uq_changes_list_position", table_name="changes")
    op.drop_table("changes")
