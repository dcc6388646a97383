"""Full-text search: conversations.tsv_search holds name and transcript; GIN indexes on the text of
utterances and nodes.

Revision ID: 2d53642fc09d
Revises: bee3b2142479
Create Date: 2026-12-01 08:00:00

`conversations.tsv_search` is the conversation's name (weight A) and its transcript (weight D). A
generated column cannot read another table, so triggers keep it: an insert of utterances appends
their words (one UPDATE per statement and conversation, linear in what was inserted); a change of
an utterance's text, a moved or deleted utterance, or a rename recomputes the conversation's
vector. A transcript whose vector would pass PostgreSQL's 1 MB limit keeps its words without
positions (phrase and proximity ranking then see the name only), so no write ever fails on it.
Writing tsv_search alone does not move `updated_at` (the trigger's WHEN clause): it is derived.

The indexes on utterances and nodes are expression indexes, so no column is added and no table
rewritten. They and the backfill run outside a transaction (`autocommit_block`): the backfill in
batches of BATCH conversations, each committed, after the triggers exist (so nothing written
meanwhile is missed); the indexes with CREATE INDEX CONCURRENTLY, which takes no lock that blocks
writes. An interrupted run leaves an invalid index behind; running the upgrade again drops and
rebuilds it. The offline script (`alembic upgrade --sql`) builds them without CONCURRENTLY, since
it may be run as one multi-statement string, where PostgreSQL refuses it. The configuration is LCT_SEARCH_CONFIG's when this runs (db/search.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from db.settings import get_settings

revision: str = "2d53642fc09d"
down_revision: str | Sequence[str] | None = "bee3b2142479"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 200
CONFIG = get_settings().search_config
REGCONFIG = f"'{CONFIG}'::regconfig"

JOINED = """
CREATE OR REPLACE FUNCTION lct_joined(parts text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string(parts, ' '), '') $$
"""

CONVERSATION_VECTOR = f"""
CREATE OR REPLACE FUNCTION lct_conversation_search_vector(conversation uuid, name text)
RETURNS tsvector LANGUAGE plpgsql STABLE AS $$
DECLARE
    title tsvector := setweight(to_tsvector({REGCONFIG}, coalesce(name, '')), 'A');
BEGIN
    BEGIN
        RETURN title || (
            SELECT to_tsvector({REGCONFIG}, coalesce(string_agg(text, E'\\n'
                                                                ORDER BY sequence_number), ''))
            FROM utterances WHERE conversation_id = conversation
        );
    EXCEPTION WHEN program_limit_exceeded THEN
        RETURN title || (
            SELECT coalesce(array_to_tsvector(array_agg(DISTINCT word.lexeme)), ''::tsvector)
            FROM utterances, unnest(to_tsvector({REGCONFIG}, text)) AS word
            WHERE conversation_id = conversation
        );
    END;
END
$$
"""

SET_CONVERSATION_VECTOR = f"""
CREATE OR REPLACE FUNCTION lct_set_conversation_tsv() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.tsv_search := setweight(to_tsvector({REGCONFIG}, coalesce(NEW.conversation_name, '')),
                                    'A');
    ELSE
        NEW.tsv_search := lct_conversation_search_vector(NEW.id, NEW.conversation_name);
    END IF;
    RETURN NEW;
END
$$
"""

# 5d1f0c3a9b27's function, as it wrote it (a downgrade restores it to the letter).
PREVIOUS_SET_CONVERSATION_VECTOR = """
CREATE OR REPLACE FUNCTION lct_set_conversation_tsv() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.tsv_search := to_tsvector('english', coalesce(NEW.conversation_name, ''));
    RETURN NEW;
END
$$
"""

UTTERANCES_ADDED = f"""
CREATE OR REPLACE FUNCTION lct_utterances_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        UPDATE conversations c
        SET tsv_search = coalesce(c.tsv_search, ''::tsvector) || added.words
        FROM (
            SELECT conversation_id,
                   to_tsvector({REGCONFIG}, string_agg(text, E'\\n' ORDER BY sequence_number))
                       AS words
            FROM added_rows GROUP BY conversation_id
        ) AS added
        WHERE c.id = added.conversation_id;
    EXCEPTION WHEN program_limit_exceeded THEN
        UPDATE conversations c
        SET tsv_search = lct_conversation_search_vector(c.id, c.conversation_name)
        WHERE c.id IN (SELECT conversation_id FROM added_rows);
    END;
    RETURN NULL;
END
$$
"""

UTTERANCES_CHANGED = """
CREATE OR REPLACE FUNCTION lct_utterances_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE conversations c
        SET tsv_search = lct_conversation_search_vector(c.id, c.conversation_name)
        WHERE c.id IN (SELECT conversation_id FROM old_rows);
    ELSE
        UPDATE conversations c
        SET tsv_search = lct_conversation_search_vector(c.id, c.conversation_name)
        WHERE c.id IN (
            SELECT o.conversation_id FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.text IS DISTINCT FROM n.text OR o.conversation_id <> n.conversation_id
            UNION
            SELECT n.conversation_id FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.conversation_id <> n.conversation_id
        );
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    "CREATE TRIGGER utterances_search_added AFTER INSERT ON utterances"
    " REFERENCING NEW TABLE AS added_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION lct_utterances_added()",
    "CREATE TRIGGER utterances_search_updated AFTER UPDATE ON utterances"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION lct_utterances_changed()",
    "CREATE TRIGGER utterances_search_deleted AFTER DELETE ON utterances"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION lct_utterances_changed()",
)
TRIGGER_NAMES = (
    "utterances_search_added",
    "utterances_search_updated",
    "utterances_search_deleted",
)

INDEXES = (
    ("idx_utterances_text_search", "utterances", f"to_tsvector({REGCONFIG}, text)"),
    (
        "idx_nodes_text_search",
        "nodes",
        f"(setweight(to_tsvector({REGCONFIG}, node_name), 'A')"
        f" || setweight(to_tsvector({REGCONFIG}, summary), 'B')"
        f" || setweight(to_tsvector({REGCONFIG}, lct_joined(key_points)), 'C'))",
    ),
)

BACKFILL_BATCH = """
WITH batch AS (
    SELECT id FROM conversations
    WHERE CAST(:last AS uuid) IS NULL OR id > CAST(:last AS uuid)
    ORDER BY id LIMIT :size
), done AS (
    UPDATE conversations c
    SET tsv_search = lct_conversation_search_vector(c.id, c.conversation_name)
    FROM batch WHERE c.id = batch.id
    RETURNING c.id
)
SELECT (SELECT id FROM done ORDER BY id DESC LIMIT 1)
"""


def upgrade() -> None:
    for function in (JOINED, CONVERSATION_VECTOR, SET_CONVERSATION_VECTOR):
        op.execute(function)
    op.execute(UTTERANCES_ADDED)
    op.execute(UTTERANCES_CHANGED)
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON utterances")
    for trigger in TRIGGERS:
        op.execute(trigger)
    # tsv_search is derived: writing it alone is no change of the conversation.
    op.execute("DROP TRIGGER conversations_set_updated_at ON conversations")
    op.execute(
        "CREATE TRIGGER conversations_set_updated_at BEFORE UPDATE ON conversations FOR EACH ROW"
        " WHEN (OLD.tsv_search IS NOT DISTINCT FROM NEW.tsv_search"
        " OR OLD.conversation_name IS DISTINCT FROM NEW.conversation_name)"
        " EXECUTE FUNCTION lct_set_updated_at()"
    )
    with op.get_context().autocommit_block():
        if context.is_offline_mode():
            op.execute(
                "UPDATE conversations"
                " SET tsv_search = lct_conversation_search_vector(id, conversation_name)"
            )
        else:
            bind = op.get_bind()
            last = None
            while True:
                last = bind.execute(sa.text(BACKFILL_BATCH), {"last": last, "size": BATCH}).scalar()
                if last is None:
                    break
        # An offline script (`upgrade --sql`) is often run as one multi-statement string, in
        # which PostgreSQL refuses CONCURRENTLY; it builds the indexes the plain way.
        concurrently = "" if context.is_offline_mode() else " CONCURRENTLY"
        for name, table, expression in INDEXES:
            op.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")
            op.execute(f"CREATE INDEX{concurrently} {name} ON {table} USING gin ({expression})")


def downgrade() -> None:
    concurrently = "" if context.is_offline_mode() else " CONCURRENTLY"
    with op.get_context().autocommit_block():
        for name, _table, _expression in reversed(INDEXES):
            op.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON utterances")
    op.execute("DROP FUNCTION lct_utterances_added()")
    op.execute("DROP FUNCTION lct_utterances_changed()")
    # The previous revision's trigger function and vectors: the name alone, in the seed's
    # configuration; written while the WHEN clause still leaves updated_at alone.
    op.execute(PREVIOUS_SET_CONVERSATION_VECTOR)
    op.execute(
        "UPDATE conversations SET tsv_search = "
        "to_tsvector('english', coalesce(conversation_name, ''))"
    )
    op.execute("DROP TRIGGER conversations_set_updated_at ON conversations")
    op.execute(
        "CREATE TRIGGER conversations_set_updated_at BEFORE UPDATE ON conversations"
        " FOR EACH ROW EXECUTE FUNCTION lct_set_updated_at()"
    )
    op.execute("DROP FUNCTION lct_conversation_search_vector(uuid, text)")
    op.execute("DROP FUNCTION lct_joined(text[])")
