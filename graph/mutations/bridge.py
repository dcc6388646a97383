"""TEMPORARY stand-ins until the read API's types land; replaced by imports of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON


@strawberry.type(name="Conversation")
class ConversationType:
    id: strawberry.ID
    conversation_name: str
    updated_at: datetime | None
    deleted_at: datetime | None
    total_utterances: int | None
    total_words: int | None
    total_nodes: int | None


@strawberry.type(name="Node")
class NodeType:
    id: strawberry.ID
    node_name: str
    summary: str
    parent_id: strawberry.ID | None
    children_ids: list[strawberry.ID] | None
    predecessor_id: strawberry.ID | None
    successor_id: strawberry.ID | None
    utterance_ids: list[strawberry.ID] | None
    canvas_x: int | None
    canvas_y: int | None
    canvas_width: int | None
    canvas_height: int | None
    updated_at: datetime | None


@strawberry.type(name="Relationship")
class RelationshipType:
    id: strawberry.ID
    from_node_id: strawberry.ID
    to_node_id: strawberry.ID
    relationship_type: str
    strength: float | None
    updated_at: datetime | None


@strawberry.type(name="Cluster")
class ClusterType:
    id: strawberry.ID
    cluster_name: str
    node_ids: list[strawberry.ID]
    parent_cluster_id: strawberry.ID | None
    child_cluster_ids: list[strawberry.ID] | None
    updated_at: datetime | None


@strawberry.type(name="Utterance")
class UtteranceType:
    id: strawberry.ID
    sequence_number: int
    text: str
    speaker_id: str
    updated_at: datetime | None


@strawberry.type(name="Edit")
class EditType:
    id: strawberry.ID
    target_type: str
    target_id: strawberry.ID
    field_name: str
    old_value: str | None
    new_value: str | None
    edit_type: str
    training_dataset_id: str | None


@strawberry.type(name="ApiCall")
class ApiCallType:
    id: strawberry.ID
    model: str
    total_tokens: int
    total_cost: float
    extra: JSON | None = None


def _copy(kind: Any, row: Any) -> Any:
    names = [field.name for field in kind.__strawberry_definition__.fields]
    return kind(**{name: getattr(row, name, None) for name in names})


def conversation_out(row: Any) -> ConversationType:
    return _copy(ConversationType, row)


def node_out(row: Any) -> NodeType:
    return _copy(NodeType, row)


def relationship_out(row: Any) -> RelationshipType:
    return _copy(RelationshipType, row)


def cluster_out(row: Any) -> ClusterType:
    return _copy(ClusterType, row)


def utterance_out(row: Any) -> UtteranceType:
    return _copy(UtteranceType, row)


def edit_out(row: Any) -> EditType:
    return _copy(EditType, row)


def api_call_out(row: Any) -> ApiCallType:
    return _copy(ApiCallType, row)
