"""Initial schema: the seven tables of Live Conversational Threads V2.

Revision ID: 732e0cd9a870
Revises:
Create Date: 2025-01-01 00:00:00

This revision is a compatibility contract (see the initial-schema spec): databases created by it
exist in the wild, so its tables, index names and constraint names never change. Later revisions
build on top of it. The one allowed difference from the original is the id default: the original
used uuid_generate_v4() from uuid-ossp, which some servers (the embedded one among them) lack, so
the default falls back to the built-in gen_random_uuid() where the extension is unavailable.

The downgrade leaves uuid-ossp alone unless this revision's upgrade installed it and nothing else
depends on it: the extension is database-wide, and may have been there before, in use by others.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "732e0cd9a870"
down_revision: str | Sequence[str] | None = None
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

CREATE_TABLES = """
CREATE TABLE conversations (
    id uuid NOT NULL,
    conversation_name text NOT NULL,
    conversation_type text NOT NULL,
    source_type text NOT NULL,
    source_metadata jsonb,
    participant_count integer DEFAULT 0,
    participants jsonb[],
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    duration_seconds integer,
    goals jsonb[],
    goal_progress jsonb,
    gcs_path text,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    deleted_at timestamp with time zone,
    owner_id text NOT NULL,
    visibility text DEFAULT 'private',
    shared_with text[],
    total_utterances integer DEFAULT 0,
    total_words integer DEFAULT 0,
    total_nodes integer DEFAULT 0,
    total_claims integer DEFAULT 0,
    tsv_search tsvector,
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT valid_conversation_type
        CHECK (conversation_type = ANY (ARRAY['live_audio', 'transcript', 'chat', 'hybrid'])),
    CONSTRAINT valid_visibility CHECK (visibility = ANY (ARRAY['private', 'shared', 'public']))
);

CREATE TABLE utterances (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    text text NOT NULL,
    text_cleaned text,
    speaker_id text NOT NULL,
    speaker_name text,
    speaker_role text,
    sequence_number integer NOT NULL,
    timestamp_start double precision,
    timestamp_end double precision,
    duration_seconds double precision,
    chunk_id uuid,
    node_id uuid,
    thread_id uuid,
    confidence_score double precision,
    language text DEFAULT 'en',
    emotion text,
    energy_level double precision,
    platform_metadata jsonb,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT utterances_pkey PRIMARY KEY (id),
    CONSTRAINT utterances_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT valid_timestamps CHECK (
        (timestamp_start IS NULL AND timestamp_end IS NULL)
        OR timestamp_end IS NULL
        OR timestamp_end >= timestamp_start
    )
);

CREATE TABLE nodes (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    node_name text NOT NULL,
    summary text NOT NULL,
    key_points text[],
    node_type text DEFAULT 'conversational_thread',
    level integer DEFAULT 1,
    parent_id uuid,
    children_ids uuid[],
    is_bookmark boolean DEFAULT false,
    is_contextual_progress boolean DEFAULT false,
    is_tangent boolean DEFAULT false,
    is_crux boolean DEFAULT false,
    predecessor_id uuid,
    successor_id uuid,
    chunk_ids uuid[] NOT NULL,
    utterance_ids uuid[],
    speaker_info jsonb,
    speaker_transitions jsonb[],
    dialogue_type text,
    claim_ids uuid[],
    timestamp_start double precision,
    timestamp_end double precision,
    duration_seconds double precision,
    cluster_info jsonb,
    display_preferences jsonb,
    canvas_x integer,
    canvas_y integer,
    canvas_width integer DEFAULT 350,
    canvas_height integer DEFAULT 200,
    zoom_level_visible integer[],
    confidence_score double precision,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT nodes_pkey PRIMARY KEY (id),
    CONSTRAINT nodes_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT nodes_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES nodes (id),
    CONSTRAINT nodes_predecessor_id_fkey FOREIGN KEY (predecessor_id) REFERENCES nodes (id),
    CONSTRAINT nodes_successor_id_fkey FOREIGN KEY (successor_id) REFERENCES nodes (id),
    CONSTRAINT valid_dialogue_type CHECK (
        dialogue_type IS NULL
        OR dialogue_type = ANY (ARRAY['monologue', 'dialogue', 'multi-party', 'consensus'])
    )
);

CREATE TABLE relationships (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    from_node_id uuid NOT NULL,
    to_node_id uuid NOT NULL,
    relationship_type text NOT NULL,
    relationship_subtype text,
    explanation text,
    strength double precision DEFAULT '1'::double precision,
    confidence double precision DEFAULT '1'::double precision,
    supporting_utterance_ids uuid[],
    is_bidirectional boolean DEFAULT false,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT relationships_pkey PRIMARY KEY (id),
    CONSTRAINT relationships_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT relationships_from_node_id_fkey FOREIGN KEY (from_node_id)
        REFERENCES nodes (id) ON DELETE CASCADE,
    CONSTRAINT relationships_to_node_id_fkey FOREIGN KEY (to_node_id)
        REFERENCES nodes (id) ON DELETE CASCADE,
    CONSTRAINT no_self_reference CHECK (from_node_id <> to_node_id),
    CONSTRAINT valid_confidence CHECK (confidence >= 0 AND confidence <= 1),
    CONSTRAINT valid_strength CHECK (strength >= 0 AND strength <= 1)
);

CREATE TABLE clusters (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    cluster_name text NOT NULL,
    level integer NOT NULL,
    parent_cluster_id uuid,
    node_ids uuid[] NOT NULL,
    child_cluster_ids uuid[],
    summary text,
    key_themes text[],
    auto_generated boolean DEFAULT true,
    clustering_algorithm text,
    clustering_confidence double precision,
    color text,
    icon text,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT clusters_pkey PRIMARY KEY (id),
    CONSTRAINT clusters_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT clusters_parent_cluster_id_fkey FOREIGN KEY (parent_cluster_id)
        REFERENCES clusters (id)
);

CREATE TABLE edits_log (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    target_type text NOT NULL,
    target_id uuid NOT NULL,
    field_name text NOT NULL,
    old_value text,
    new_value text,
    edit_type text NOT NULL,
    user_comment text,
    user_id text NOT NULL,
    user_confidence double precision DEFAULT '1'::double precision,
    exported_for_training boolean DEFAULT false,
    training_dataset_id text,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT edits_log_pkey PRIMARY KEY (id),
    CONSTRAINT edits_log_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT valid_edit_type
        CHECK (edit_type = ANY (ARRAY['correction', 'addition', 'deletion', 'merge', 'split'])),
    CONSTRAINT valid_target_type CHECK (target_type = ANY (ARRAY[
        'node', 'relationship', 'cluster', 'speaker_attribution', 'claim', 'utterance'
    ]))
);

CREATE TABLE api_calls_log (
    id uuid NOT NULL,
    conversation_id uuid,
    endpoint text NOT NULL,
    feature text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    total_tokens integer NOT NULL,
    prompt_cost double precision NOT NULL,
    completion_cost double precision NOT NULL,
    total_cost double precision NOT NULL,
    latency_ms integer,
    status text NOT NULL,
    error_message text,
    started_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    request_id text,
    CONSTRAINT api_calls_log_pkey PRIMARY KEY (id),
    CONSTRAINT api_calls_log_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE SET NULL
);
"""

CREATE_INDEXES = """
CREATE INDEX idx_conversations_owner ON conversations (owner_id);
CREATE INDEX idx_conversations_started ON conversations (started_at);
CREATE INDEX idx_conversations_tsv ON conversations USING gin (tsv_search);
CREATE INDEX idx_utterances_conversation ON utterances (conversation_id, sequence_number);
CREATE INDEX idx_utterances_speaker ON utterances (conversation_id, speaker_id);
CREATE INDEX idx_utterances_timestamp ON utterances (conversation_id, timestamp_start);
CREATE INDEX idx_utterances_chunk ON utterances (chunk_id);
CREATE INDEX idx_utterances_node ON utterances (node_id);
CREATE INDEX idx_utterances_thread ON utterances (thread_id);
CREATE INDEX idx_nodes_conversation ON nodes (conversation_id);
CREATE INDEX idx_nodes_level ON nodes (conversation_id, level);
CREATE INDEX idx_nodes_temporal ON nodes (conversation_id, timestamp_start);
CREATE INDEX idx_nodes_bookmarks ON nodes (conversation_id) WHERE is_bookmark = true;
CREATE INDEX idx_nodes_tangents ON nodes (conversation_id) WHERE is_tangent = true;
CREATE INDEX idx_nodes_speaker ON nodes (conversation_id, (speaker_info ->> 'primary_speaker'));
CREATE INDEX idx_relationships_from ON relationships (from_node_id);
CREATE INDEX idx_relationships_to ON relationships (to_node_id);
CREATE INDEX idx_relationships_type ON relationships (conversation_id, relationship_type);
CREATE INDEX idx_clusters_conversation ON clusters (conversation_id);
CREATE INDEX idx_clusters_level ON clusters (conversation_id, level);
CREATE INDEX idx_edits_conversation ON edits_log (conversation_id);
CREATE INDEX idx_edits_target ON edits_log (target_type, target_id);
CREATE INDEX idx_edits_training ON edits_log (exported_for_training)
    WHERE exported_for_training = false;
CREATE INDEX idx_api_calls_conversation ON api_calls_log (conversation_id);
CREATE INDEX idx_api_calls_feature ON api_calls_log (feature);
CREATE INDEX idx_api_calls_provider_model ON api_calls_log (provider, model);
CREATE INDEX idx_api_calls_started ON api_calls_log (started_at);
CREATE INDEX idx_api_calls_cost ON api_calls_log (total_cost);
"""

# uuid-ossp where the server ships it (as the original did), gen_random_uuid() where it does not.
ID_DEFAULTS = """
DO $$
DECLARE
    generator text := 'gen_random_uuid()';
    table_name text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp') THEN
        CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
        generator := 'uuid_generate_v4()';
    END IF;
    FOREACH table_name IN ARRAY ARRAY[{tables}] LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN id SET DEFAULT ' || generator, table_name);
    END LOOP;
END
$$;
""".format(tables=", ".join(f"'{table}'" for table in TABLES))


# "Installed by the upgrade" means created in the upgrade's transaction, which also created the
# tables: the catalog rows of the extension and of the conversations row type then carry the same
# xmin. Decided before the tables go, dropped after them (their id defaults may use it). Anything
# else depending on it, or a role that does not own it, keeps the extension.
DROP_EVERYTHING = """
DO $$
DECLARE
    installed_here boolean := EXISTS (
        SELECT 1 FROM pg_extension installed, pg_type conversations
        WHERE installed.extname = 'uuid-ossp'
          AND conversations.typrelid = to_regclass('conversations')
          AND installed.xmin = conversations.xmin
    );
BEGIN
    DROP TABLE IF EXISTS {tables} CASCADE;
    IF installed_here THEN
        BEGIN
            DROP EXTENSION "uuid-ossp";
        EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
            RAISE NOTICE 'the uuid-ossp extension is kept: %', SQLERRM;
        END;
    END IF;
END
$$
""".format(tables=", ".join(reversed(TABLES)))


def _statements(script: str) -> list[str]:
    return [part.strip().rstrip(";") for part in script.split(";\n") if part.strip()]


def upgrade() -> None:
    for statement in _statements(CREATE_TABLES) + _statements(CREATE_INDEXES):
        op.execute(statement)
    op.execute(ID_DEFAULTS)


def downgrade() -> None:
    op.execute(DROP_EVERYTHING)
