"""The seven tables of Live Conversational Threads and the change feed's two, at the head
revision.

These models are the source of truth: `alembic check` must find no difference between them and a
database migrated to head. The graph references that PostgreSQL cannot enforce (the uuid[] columns,
`utterances.node_id`) are kept consistent by the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.enums import ConversationType, DialogueType, EditType, TargetType, Visibility, values
from db.search import JOINED_FUNCTION, node_vector, utterance_vector
from db.settings import get_settings

GEN_UUID = sql("gen_random_uuid()")
NOW = sql("now()")

CONVERSATION_TYPES = values(ConversationType)
# full-text search's configuration, fixed in the indexes (db/search.py)
SEARCH_CONFIG = get_settings().search_config
VISIBILITIES = values(Visibility)
DIALOGUE_TYPES = values(DialogueType)
EDIT_TYPES = values(EditType)
TARGET_TYPES = values(TargetType)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'::text" for value in values)
    return f"{column} = ANY (ARRAY[{quoted}])"


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=GEN_UUID)


def _stamp() -> Mapped[datetime]:
    """`created_at` / `updated_at`: set by the database (a trigger keeps `updated_at` current)."""
    return mapped_column(DateTime(timezone=True), server_default=NOW)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_name: Mapped[str] = mapped_column(Text)
    conversation_type: Mapped[str] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(Text)
    source_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    participant_count: Mapped[int | None] = mapped_column(Integer, server_default=sql("0"))
    participants: Mapped[list[dict[str, Any]] | None] = mapped_column(ARRAY(JSONB))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    goals: Mapped[list[dict[str, Any]] | None] = mapped_column(ARRAY(JSONB))
    goal_progress: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    gcs_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(Text, server_default=sql("'private'::text"))
    shared_with: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    total_utterances: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    total_words: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    total_nodes: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    total_claims: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    tsv_search: Mapped[Any | None] = mapped_column(TSVECTOR)

    __table_args__ = (
        CheckConstraint(
            _one_of("conversation_type", CONVERSATION_TYPES), name="valid_conversation_type"
        ),
        CheckConstraint(_one_of("visibility", VISIBILITIES), name="valid_visibility"),
        Index("idx_conversations_owner", "owner_id"),
        Index("idx_conversations_started", "started_at"),
        Index("idx_conversations_tsv", "tsv_search", postgresql_using="gin"),
    )


class Utterance(Base):
    __tablename__ = "utterances"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    text: Mapped[str] = mapped_column(Text)
    text_cleaned: Mapped[str | None] = mapped_column(Text)
    speaker_id: Mapped[str] = mapped_column(Text)
    speaker_name: Mapped[str | None] = mapped_column(Text)
    speaker_role: Mapped[str | None] = mapped_column(Text)
    sequence_number: Mapped[int] = mapped_column(Integer)
    timestamp_start: Mapped[float | None] = mapped_column(Float)
    timestamp_end: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    chunk_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    node_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    thread_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    confidence_score: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(Text, server_default=sql("'en'::text"))
    emotion: Mapped[str | None] = mapped_column(Text)
    energy_level: Mapped[float | None] = mapped_column(Float)
    platform_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp()

    __table_args__ = (
        CheckConstraint(
            "((timestamp_start IS NULL) AND (timestamp_end IS NULL)) OR (timestamp_end IS NULL)"
            " OR (timestamp_end >= timestamp_start)",
            name="valid_timestamps",
        ),
        UniqueConstraint("conversation_id", "sequence_number"),
        Index("idx_utterances_chunk", "chunk_id"),
        Index("idx_utterances_conversation", "conversation_id", "sequence_number"),
        Index("idx_utterances_node", "node_id"),
        Index("idx_utterances_speaker", "conversation_id", "speaker_id"),
        Index("idx_utterances_thread", "thread_id"),
        Index("idx_utterances_timestamp", "conversation_id", "timestamp_start"),
        Index(
            "idx_utterances_text_search",
            sql(utterance_vector(SEARCH_CONFIG)),
            postgresql_using="gin",
        ),
    )


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    node_name: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    key_points: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    node_type: Mapped[str] = mapped_column(
        Text, server_default=sql("'conversational_thread'::text")
    )
    level: Mapped[int] = mapped_column(Integer, server_default=sql("1"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("nodes.id", ondelete="SET NULL")
    )
    children_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    is_bookmark: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    is_contextual_progress: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    is_tangent: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    is_crux: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    predecessor_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("nodes.id", ondelete="SET NULL")
    )
    successor_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("nodes.id", ondelete="SET NULL")
    )
    chunk_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    utterance_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    speaker_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    speaker_transitions: Mapped[list[dict[str, Any]] | None] = mapped_column(ARRAY(JSONB))
    dialogue_type: Mapped[str | None] = mapped_column(Text)
    claim_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    timestamp_start: Mapped[float | None] = mapped_column(Float)
    timestamp_end: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    cluster_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    display_preferences: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    canvas_x: Mapped[int | None] = mapped_column(Integer)
    canvas_y: Mapped[int | None] = mapped_column(Integer)
    canvas_width: Mapped[int] = mapped_column(Integer, server_default=sql("350"))
    canvas_height: Mapped[int] = mapped_column(Integer, server_default=sql("200"))
    zoom_level_visible: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    confidence_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp()

    __table_args__ = (
        CheckConstraint(
            "(dialogue_type IS NULL) OR " + _one_of("dialogue_type", DIALOGUE_TYPES),
            name="valid_dialogue_type",
        ),
        Index("idx_nodes_bookmarks", "conversation_id", postgresql_where=sql("is_bookmark = true")),
        Index("idx_nodes_conversation", "conversation_id"),
        Index("idx_nodes_level", "conversation_id", "level"),
        Index(
            "idx_nodes_speaker",
            "conversation_id",
            sql("(speaker_info ->> 'primary_speaker'::text)"),
        ),
        Index("idx_nodes_tangents", "conversation_id", postgresql_where=sql("is_tangent = true")),
        Index("idx_nodes_temporal", "conversation_id", "timestamp_start"),
        Index("idx_nodes_parent", "parent_id"),
        Index("idx_nodes_predecessor", "predecessor_id"),
        Index("idx_nodes_successor", "successor_id"),
        Index("idx_nodes_zoom_levels", "zoom_level_visible", postgresql_using="gin"),
        Index("idx_nodes_children_ids", "children_ids", postgresql_using="gin"),
        Index("idx_nodes_text_search", sql(node_vector(SEARCH_CONFIG)), postgresql_using="gin"),
    )


# The index above calls lct_joined; a database built from the models needs it too.
event.listen(Node.__table__, "before_create", DDL(JOINED_FUNCTION))


class Relationship(Base):
    __tablename__ = "relationships"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    from_node_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("nodes.id", ondelete="CASCADE")
    )
    to_node_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("nodes.id", ondelete="CASCADE")
    )
    relationship_type: Mapped[str] = mapped_column(Text)
    relationship_subtype: Mapped[str | None] = mapped_column(Text)
    explanation: Mapped[str | None] = mapped_column(Text)
    strength: Mapped[float] = mapped_column(Float, server_default=sql("'1'::double precision"))
    confidence: Mapped[float] = mapped_column(Float, server_default=sql("'1'::double precision"))
    supporting_utterance_ids: Mapped[list[uuid.UUID] | None] = mapped_column(
        ARRAY(UUID(as_uuid=True))
    )
    is_bidirectional: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp()

    __table_args__ = (
        CheckConstraint("from_node_id <> to_node_id", name="no_self_reference"),
        CheckConstraint(
            "(confidence >= (0)::double precision) AND (confidence <= (1)::double precision)",
            name="valid_confidence",
        ),
        CheckConstraint(
            "(strength >= (0)::double precision) AND (strength <= (1)::double precision)",
            name="valid_strength",
        ),
        UniqueConstraint("from_node_id", "to_node_id", "relationship_type"),
        Index("idx_relationships_from", "from_node_id"),
        Index("idx_relationships_to", "to_node_id"),
        Index("idx_relationships_type", "conversation_id", "relationship_type"),
    )


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    cluster_name: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer)
    parent_cluster_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("clusters.id", ondelete="SET NULL")
    )
    node_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    child_cluster_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    summary: Mapped[str | None] = mapped_column(Text)
    key_themes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    auto_generated: Mapped[bool] = mapped_column(Boolean, server_default=sql("true"))
    clustering_algorithm: Mapped[str | None] = mapped_column(Text)
    clustering_confidence: Mapped[float | None] = mapped_column(Float)
    color: Mapped[str | None] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp()

    __table_args__ = (
        Index("idx_clusters_conversation", "conversation_id"),
        Index("idx_clusters_level", "conversation_id", "level"),
        Index("idx_clusters_parent", "parent_cluster_id"),
        Index("idx_clusters_node_ids", "node_ids", postgresql_using="gin"),
        Index("idx_clusters_child_cluster_ids", "child_cluster_ids", postgresql_using="gin"),
    )


class Edit(Base):
    __tablename__ = "edits_log"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    target_type: Mapped[str] = mapped_column(Text)
    target_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    field_name: Mapped[str] = mapped_column(Text)
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    edit_type: Mapped[str] = mapped_column(Text)
    user_comment: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    user_confidence: Mapped[float | None] = mapped_column(
        Float, server_default=sql("'1'::double precision")
    )
    exported_for_training: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    training_dataset_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _stamp()

    __table_args__ = (
        CheckConstraint(_one_of("edit_type", EDIT_TYPES), name="valid_edit_type"),
        CheckConstraint(_one_of("target_type", TARGET_TYPES), name="valid_target_type"),
        Index("idx_edits_conversation", "conversation_id"),
        Index("idx_edits_target", "target_type", "target_id"),
        Index(
            "idx_edits_training",
            "exported_for_training",
            postgresql_where=sql("exported_for_training = false"),
        ),
    )


class ApiCall(Base):
    __tablename__ = "api_calls_log"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="SET NULL")
    )
    endpoint: Mapped[str] = mapped_column(Text)
    feature: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(Integer)
    prompt_cost: Mapped[float] = mapped_column(Float)
    completion_cost: Mapped[float] = mapped_column(Float)
    total_cost: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("idx_api_calls_conversation", "conversation_id"),
        Index("idx_api_calls_cost", "total_cost"),
        Index("idx_api_calls_feature", "feature"),
        Index("idx_api_calls_provider_model", "provider", "model"),
        Index(
            "idx_api_calls_started_covering",
            "started_at",
            postgresql_include=[
                "conversation_id",
                "provider",
                "model",
                "feature",
                "total_tokens",
                "total_cost",
                "latency_ms",
            ],
        ),
        Index(
            "idx_api_calls_feature_latency",
            "feature",
            "latency_ms",
            postgresql_include=["conversation_id"],
        ),
    )


class Change(Base):
    """The change feed: one row per transaction and conversation it changed (graph/live.py).

    Written by the triggers of alembic revision 4f7a2c91d3e8 in the writing transaction, so a
    committed write is in the feed and a rolled-back one is not. `position` counts a
    conversation's changes 1, 2, 3, ... in commit order (the counter row in `change_counters`
    stays locked until the writer commits); `list_position` does the same, on one counter, for the
    changes that matter to conversation lists. No foreign key: a purge's change outlives its
    conversation.
    """

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    position: Mapped[int] = mapped_column(BigInteger)
    list_position: Mapped[int | None] = mapped_column(BigInteger)
    transaction_id: Mapped[int] = mapped_column(BigInteger)
    operation: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=sql("'{}'::text[]"))
    node_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=sql("'{}'::uuid[]")
    )
    relationship_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=sql("'{}'::uuid[]")
    )
    cluster_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=sql("'{}'::uuid[]")
    )
    utterance_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=sql("'{}'::uuid[]")
    )
    access_before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    access_after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=sql("clock_timestamp()")
    )

    __table_args__ = (
        UniqueConstraint("conversation_id", "position"),
        UniqueConstraint("transaction_id", "conversation_id"),
        Index("uq_changes_list_position", "list_position", unique=True),
        Index("idx_changes_created_at", "created_at"),
    )


class ChangeCounter(Base):
    """The last `changes.position` of each conversation; the nil UUID's row counts
    `changes.list_position`."""

    __tablename__ = "change_counters"

    conversation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
