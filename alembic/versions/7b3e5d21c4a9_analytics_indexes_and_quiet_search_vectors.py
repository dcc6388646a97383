"""Covering indexes for the API-calls aggregates; the search triggers write a conversation's
vector only when it changes.

Revision ID: 7b3e5d21c4a9
Revises: 4f7a2c91d3e8
Create Date: 2026-12-01 11:30:00

`apiCallStats` reads the calls of a time range grouped by a few keys (graph/analytics_sql.py):
`idx_api_calls_started_covering` is the range's index with the keys, the visibility column and the
totals in its leaves, so such a query is an index-only scan of the range instead of the table;
it replaces `idx_api_calls_started` (same key). `idx_api_calls_feature_latency` hands latency
percentiles by feature their values already in order. Both are built with CREATE INDEX
CONCURRENTLY outside a transaction (`autocommit_block`), which takes no lock that blocks writes on
a large log; an interrupted run leaves an invalid index behind, which running the upgrade again
drops and rebuilds. The offline script (`alembic upgrade --sql`) builds them the plain way, as
2d53642fc09d explains.

The search triggers of 2d53642fc09d wrote every touched conversation's vector, even when it came
out the same (an utterance of stop words only): the write then counted as a change of the
conversation and stamped its `updated_at`. They now skip conversations whose vector is unchanged.
"""

from collections.abc import Sequence

from alembic import context, op

from db.settings import get_settings

revision: str = "7b3e5d21c4a9"
down_revision: str | Sequence[str] | None = "4f7a2c91d3e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGCONFIG = f"'{get_settings().search_config}'::regconfig"

INDEXES = (
    (
        "idx_api_calls_started_covering",
        "api_calls_log (started_at) INCLUDE (conversation_id, provider, model, feature,"
        " total_tokens, total_cost, latency_ms)",
    ),
    (
        "idx_api_calls_feature_latency",
        "api_calls_log (feature, latency_ms) INCLUDE (conversation_id)",
    ),
)
REPLACED = ("idx_api_calls_started", "api_calls_log (started_at)")

REFRESH_VECTORS = """
CREATE OR REPLACE FUNCTION lct_refresh_conversation_vectors(ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE conversations c
    SET tsv_search = computed.vector
    FROM (
        SELECT id, lct_conversation_search_vector(id, conversation_name) AS vector
        FROM conversations WHERE id = ANY (ids)
    ) AS computed
    WHERE c.id = computed.id AND c.tsv_search IS DISTINCT FROM computed.vector
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
        WHERE c.id = added.conversation_id AND added.words <> ''::tsvector;
    EXCEPTION WHEN program_limit_exceeded THEN
        PERFORM lct_refresh_conversation_vectors(
            ARRAY(SELECT DISTINCT conversation_id FROM added_rows));
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
        PERFORM lct_refresh_conversation_vectors(
            ARRAY(SELECT DISTINCT conversation_id FROM old_rows));
    ELSE
        PERFORM lct_refresh_conversation_vectors(ARRAY(
            SELECT o.conversation_id FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.text IS DISTINCT FROM n.text OR o.conversation_id <> n.conversation_id
            UNION
            SELECT n.conversation_id FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.conversation_id <> n.conversation_id
        ));
    END IF;
    RETURN NULL;
END
$$
"""


def _build(pairs: Sequence[tuple[str, str]]) -> None:
    concurrently = "" if context.is_offline_mode() else " CONCURRENTLY"
    for name, target in pairs:
        op.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")
        op.execute(f"CREATE INDEX{concurrently} {name} ON {target}")


def _drop(names: Sequence[str]) -> None:
    concurrently = "" if context.is_offline_mode() else " CONCURRENTLY"
    for name in names:
        op.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")


def upgrade() -> None:
    op.execute(REFRESH_VECTORS)
    op.execute(UTTERANCES_ADDED)
    op.execute(UTTERANCES_CHANGED)
    with op.get_context().autocommit_block():
        _build(INDEXES)
        _drop([REPLACED[0]])


def downgrade() -> None:
    with op.get_context().autocommit_block():
        _build([REPLACED])
        _drop([name for name, _target in reversed(INDEXES)])
    # 2d53642fc09d's trigger functions, from its own module.
    previous = context.script.get_revision("2d53642fc09d").module  # type: ignore[union-attr]
    op.execute(previous.UTTERANCES_ADDED)
    op.execute(previous.UTTERANCES_CHANGED)
    op.execute("DROP FUNCTION lct_refresh_conversation_vectors(uuid[])")
