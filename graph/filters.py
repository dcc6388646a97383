"""The filters of the list fields, as hashable values (they are part of dataloader keys).

Each turns into SQL conditions on its table; a `None` attribute means "no condition". Two sibling
fields with the same arguments share one batch; different arguments are batched separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Table, func, literal
from sqlalchemy.dialects.postgresql import ARRAY

from db.models import ApiCall, Cluster, Conversation, Edit, Node, Relationship, Utterance

conversations: Table = Conversation.__table__  # type: ignore[assignment]
utterances: Table = Utterance.__table__  # type: ignore[assignment]
nodes: Table = Node.__table__  # type: ignore[assignment]
relationships: Table = Relationship.__table__  # type: ignore[assignment]
clusters: Table = Cluster.__table__  # type: ignore[assignment]
edits: Table = Edit.__table__  # type: ignore[assignment]
api_calls: Table = ApiCall.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ConversationFilter:
    owner_id: str | None = None
    conversation_types: tuple[str, ...] | None = None
    source_types: tuple[str, ...] | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    include_deleted: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        table = conversations
        where: list[ColumnElement[bool]] = []
        if not self.include_deleted:
            where.append(table.c.deleted_at.is_(None))
        if self.owner_id is not None:
            where.append(table.c.owner_id == self.owner_id)
        if self.conversation_types is not None:
            where.append(table.c.conversation_type.in_(self.conversation_types))
        if self.source_types is not None:
            where.append(table.c.source_type.in_(self.source_types))
        if self.started_after is not None:
            where.append(table.c.started_at >= self.started_after)
        if self.started_before is not None:
            where.append(table.c.started_at < self.started_before)
        return where


@dataclass(frozen=True)
class NodeFilter:
    level: tuple[int, ...] | None = None
    zoom_level_visible: int | None = None
    node_type: tuple[str, ...] | None = None
    is_bookmark: bool | None = None
    is_tangent: bool | None = None
    is_crux: bool | None = None
    is_contextual_progress: bool | None = None
    primary_speaker: str | None = None
    time_from: float | None = None
    time_to: float | None = None
    roots_only: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        table = nodes
        where: list[ColumnElement[bool]] = []
        if self.level is not None:
            where.append(table.c.level.in_(self.level))
        if self.zoom_level_visible is not None:
            # `@>` so that the GIN index on zoom_level_visible can serve it.
            zoom = literal([self.zoom_level_visible], ARRAY(Integer))
            where.append(table.c.zoom_level_visible.op("@>")(zoom))
        if self.node_type is not None:
            where.append(table.c.node_type.in_(self.node_type))
        for flag in ("is_bookmark", "is_tangent", "is_crux", "is_contextual_progress"):
            value = getattr(self, flag)
            if value is not None:
                where.append(func.coalesce(table.c[flag], False) == value)
        if self.primary_speaker is not None:
            where.append(table.c.speaker_info["primary_speaker"].astext == self.primary_speaker)
        # A node is in the window when its time span overlaps it.
        if self.time_from is not None:
            where.append(
                func.coalesce(table.c.timestamp_end, table.c.timestamp_start) >= self.time_from
            )
        if self.time_to is not None:
            where.append(table.c.timestamp_start <= self.time_to)
        if self.roots_only:
            where.append(table.c.parent_id.is_(None))
        return where


@dataclass(frozen=True)
class RelationshipFilter:
    types: tuple[str, ...] | None = None
    min_strength: float | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = relationships
        where: list[ColumnElement[bool]] = []
        if self.types is not None:
            where.append(table.c.relationship_type.in_(self.types))
        if self.min_strength is not None:
            where.append(table.c.strength >= self.min_strength)
        return where


# The columns holding a node's id, by `RelationshipDirection` (graph/enums.py): outgoing first.
DIRECTION_ENDS: dict[str, tuple[str, ...]] = {
    "outgoing": ("from_node_id",),
    "incoming": ("to_node_id",),
    "both": ("from_node_id", "to_node_id"),
}


@dataclass(frozen=True)
class DirectedFilter(RelationshipFilter):
    """A node's relationships: which ends hold the node, and the relationships' filter."""

    ends: tuple[str, ...] = DIRECTION_ENDS["both"]


@dataclass(frozen=True)
class ClusterFilter:
    level: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        return [] if self.level is None else [clusters.c.level == self.level]


@dataclass(frozen=True)
class UtteranceFilter:
    speaker_ids: tuple[str, ...] | None = None
    time_from: float | None = None
    time_to: float | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = utterances
        where: list[ColumnElement[bool]] = []
        if self.speaker_ids is not None:
            where.append(table.c.speaker_id.in_(self.speaker_ids))
        if self.time_from is not None:
            where.append(table.c.timestamp_start >= self.time_from)
        if self.time_to is not None:
            where.append(table.c.timestamp_start <= self.time_to)
        return where


@dataclass(frozen=True)
class EditFilter:
    target_types: tuple[str, ...] | None = None
    edit_types: tuple[str, ...] | None = None
    user_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = edits
        where: list[ColumnElement[bool]] = []
        if self.target_types is not None:
            where.append(table.c.target_type.in_(self.target_types))
        if self.edit_types is not None:
            where.append(table.c.edit_type.in_(self.edit_types))
        if self.user_id is not None:
            where.append(table.c.user_id == self.user_id)
        return where


@dataclass(frozen=True)
class ApiCallFilter:
    features: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    status: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = api_calls
        where: list[ColumnElement[bool]] = []
        if self.features is not None:
            where.append(table.c.feature.in_(self.features))
        if self.providers is not None:
            where.append(table.c.provider.in_(self.providers))
        if self.models is not None:
            where.append(table.c.model.in_(self.models))
        if self.status is not None:
            where.append(table.c.status == self.status)
        return where


def any_of(values: list[Any] | None) -> tuple[Any, ...] | None:
    """A list argument as a hashable tuple; None (not given) stays None."""
    return None if values is None else tuple(values)
