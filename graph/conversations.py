"""The `Conversation` type, the typed shapes of its JSONB columns, and its traversals."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.enums import ConversationType, EditType, RelationshipDirection, TargetType, Visibility
from graph.filters import (
    ApiCallFilter,
    ClusterFilter,
    EditFilter,
    NodeFilter,
    RelationshipFilter,
    UtteranceFilter,
)
from graph.nodes import MIN_STRENGTH
from graph.pagination import Connection, Direction, user_error
from graph.permissions import owner_only
from graph.relations import Paged, ToMany
from graph.relay import CREATED_AT, UPDATED_AT, Node
from graph.scalars import JSON
from graph.shapes import column_shape

if TYPE_CHECKING:
    from graph.api_calls import ApiCall
    from graph.clusters import Cluster
    from graph.edits import Edit
    from graph.nodes import ThreadNode
    from graph.relationships import Relationship
    from graph.utterances import Utterance

Info = strawberry.Info[Context, None]

LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]
LazyRelationship = Annotated["Relationship", strawberry.lazy("graph.relationships")]
LazyCluster = Annotated["Cluster", strawberry.lazy("graph.clusters")]
LazyUtterance = Annotated["Utterance", strawberry.lazy("graph.utterances")]
LazyEdit = Annotated["Edit", strawberry.lazy("graph.edits")]
LazyApiCall = Annotated["ApiCall", strawberry.lazy("graph.api_calls")]


@strawberry.type(description="A person taking part in a conversation (`participants[]`).")
class Participant:
    id: str | None = strawberry.field(
        description="The participant's id on the platform the conversation came from."
    )
    name: str | None
    role: str | None = strawberry.field(description="facilitator, participant or observer.")
    email: str | None
    avatar_url: str | None = strawberry.field(description="A picture of the participant, as a URL.")
    platform_id: str | None = strawberry.field(
        description="Which platform `id` belongs to (e.g. zoom, slack)."
    )
    metadata: JSON | None = strawberry.field(
        description="Free-form JSON about the participant, stored as given."
    )


@strawberry.type(description="What a conversation is meant to achieve (`goals[]`).")
class Goal:
    goal_type: str | None = strawberry.field(
        description="learn, decide, build_rapport, brainstorm, resolve_conflict or custom."
    )
    description: str | None
    target_metric: str | None = strawberry.field(
        description="What measures progress towards the goal, free text."
    )
    target_value: JSON | None = strawberry.field(
        description="The value of `targetMetric` that meets the goal, any JSON."
    )
    weight: float | None = strawberry.field(
        description="How much the goal counts relative to the conversation's other goals, as"
        " set by whoever wrote it; the API checks no range (the demo data uses 0.2 to 1)."
    )


@strawberry.enum(description="What `nodes` is sorted by (ties broken by id).")
class NodeOrderField(Enum):
    TIMESTAMP_START = "timestamp_start"
    LEVEL = "level"
    NODE_NAME = "node_name"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@strawberry.enum(description="What `utterances` is sorted by (ties broken by id).")
class UtteranceOrderField(Enum):
    SEQUENCE_NUMBER = "sequence_number"
    TIMESTAMP_START = "timestamp_start"
    CREATED_AT = "created_at"


@strawberry.enum(description="What `relationships` is sorted by (ties broken by id).")
class RelationshipOrderField(Enum):
    CREATED_AT = "created_at"
    STRENGTH = "strength"
    RELATIONSHIP_TYPE = "relationship_type"


@strawberry.enum(description="What `edits` is sorted by (ties broken by id).")
class EditOrderField(Enum):
    CREATED_AT = "created_at"


@strawberry.enum(description="What `apiCalls` is sorted by (ties broken by id).")
class ApiCallOrderField(Enum):
    STARTED_AT = "started_at"
    TOTAL_COST = "total_cost"


def _utterances(
    speaker_id: tuple[str, ...] | None = None,
    time_from: float | None = None,
    time_to: float | None = None,
) -> UtteranceFilter:
    return UtteranceFilter(speaker_ids=speaker_id, time_from=time_from, time_to=time_to)


def _relationships(
    relationship_type: tuple[str, ...] | None = None, min_strength: float | None = None
) -> RelationshipFilter:
    return RelationshipFilter(types=relationship_type, min_strength=min_strength)


def _edits(
    target_type: tuple[str, ...] | None = None,
    edit_type: tuple[str, ...] | None = None,
    user_id: str | None = None,
) -> EditFilter:
    return EditFilter(target_types=target_type, edit_types=edit_type, user_id=user_id)


def _api_calls(
    feature: tuple[str, ...] | None = None,
    provider: tuple[str, ...] | None = None,
    model: tuple[str, ...] | None = None,
    status: str | None = None,
) -> ApiCallFilter:
    return ApiCallFilter(features=feature, providers=provider, models=model, status=status)


NODES = Paged("node", column="conversation_id", key=NodeFilter, order_column="timestamp_start")
ROOT_NODES = ToMany(
    "node",
    column="conversation_id",
    conditions=lambda node: [node.c.parent_id.is_(None)],
    estimated_size=10,
)
UTTERANCES = Paged(
    "utterance", column="conversation_id", key=_utterances, order_column="sequence_number"
)
RELATIONSHIPS = Paged("relationship", column="conversation_id", key=_relationships)
CLUSTERS = ToMany("cluster", column="conversation_id", key=ClusterFilter, estimated_size=50)
EDITS = Paged("edit", column="conversation_id", key=_edits)
API_CALLS = Paged("api_call", column="conversation_id", key=_api_calls, order_column="started_at")


@strawberry.type(description="A conversation: its utterances analysed into a graph of nodes.")
class Conversation(Node):
    conversation_name: str
    conversation_type: ConversationType
    source_type: str = strawberry.field(
        description="How it was captured or delivered (e.g. upload, pipeline, zoom)."
    )
    source_metadata: JSON | None = strawberry.field(
        description="Free-form JSON from the source (meeting ids, channel names ...), stored as "
        "given."
    )
    participant_count: int | None = strawberry.field(
        description="How many people took part, as delivered; null when unknown."
    )
    participants: list[Participant | None] | None = column_shape("participants")
    started_at: datetime = strawberry.field(
        description="When the conversation started (the time `createConversation` ran unless "
        "given)."
    )
    ended_at: datetime | None
    duration_seconds: int | None = strawberry.field(
        description="How long it lasted, in seconds, as delivered."
    )
    goals: list[Goal | None] | None = column_shape("goals")
    goal_progress: JSON | None = strawberry.field(description="Progress towards `goals`.")
    gcs_path: str | None = strawberry.field(description="Where the raw recording is stored.")
    created_at: datetime = strawberry.field(description=CREATED_AT)
    updated_at: datetime = strawberry.field(description=UPDATED_AT)
    deleted_at: datetime | None = strawberry.field(
        description="When it was soft-deleted; null for a live conversation."
    )
    owner_id: str = strawberry.field(
        description="The user (the token's `sub`) who owns it: the only one who may change it."
    )
    visibility: Visibility = strawberry.field(description="Who may read it besides the owner.")
    shared_with: list[str] | None = owner_only(
        "shared_with",
        description="User ids that may read it when `visibility` is SHARED; null for anyone"
        " but the owner.",
    )
    total_utterances: int = strawberry.field(
        description="How many utterances it has; kept exact by the API."
    )
    total_words: int = strawberry.field(
        description="Whitespace-separated words over all utterances."
    )
    total_nodes: int = strawberry.field(description="How many nodes it has; kept exact by the API.")
    total_claims: int = strawberry.field(
        description="How many claims the analysis found; stored as delivered."
    )

    @NODES.field(description="The conversation's nodes, filtered; default order: `timestampStart`.")
    async def nodes(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        level: Annotated[
            list[int] | None, strawberry.argument(description="Only nodes at these levels.")
        ] = None,
        zoom_level_visible: Annotated[
            int | None, strawberry.argument(description="Only nodes drawn at this zoom level.")
        ] = None,
        node_type: list[str] | None = None,
        is_bookmark: bool | None = None,
        is_tangent: bool | None = None,
        is_crux: bool | None = None,
        is_contextual_progress: bool | None = None,
        primary_speaker: Annotated[
            str | None,
            strawberry.argument(
                description="Only nodes whose `speakerInfo.primarySpeaker` is this speaker id"
                " (the `speakerId` of their utterances)."
            ),
        ] = None,
        time_from: Annotated[
            float | None,
            strawberry.argument(description="Only nodes whose time span ends at or after this."),
        ] = None,
        time_to: Annotated[
            float | None,
            strawberry.argument(description="Only nodes whose time span starts at or before this."),
        ] = None,
        order_by: NodeOrderField = NodeOrderField.TIMESTAMP_START,
        direction: Direction = Direction.ASC,
    ) -> Connection[LazyNode]:
        return await NODES.resolve(
            self,
            info,
            first=first,
            after=after,
            level=level,
            zoom_level_visible=zoom_level_visible,
            node_type=node_type,
            is_bookmark=is_bookmark,
            is_tangent=is_tangent,
            is_crux=is_crux,
            is_contextual_progress=is_contextual_progress,
            primary_speaker=primary_speaker,
            time_from=time_from,
            time_to=time_to,
            order_by=order_by,
            direction=direction,
        )

    @ROOT_NODES.field(
        description="The nodes without a parent: the top of the hierarchy, in time order."
    )
    async def root_nodes(self, info: Info) -> list[LazyNode]:
        return await ROOT_NODES.resolve(self, info)

    @UTTERANCES.field(description="The conversation's utterances; default order: `sequenceNumber`.")
    async def utterances(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        speaker_id: list[str] | None = None,
        time_from: Annotated[
            float | None, strawberry.argument(description="Only utterances starting at or after.")
        ] = None,
        time_to: Annotated[
            float | None, strawberry.argument(description="Only utterances starting at or before.")
        ] = None,
        order_by: UtteranceOrderField = UtteranceOrderField.SEQUENCE_NUMBER,
        direction: Direction = Direction.ASC,
    ) -> Connection[LazyUtterance]:
        return await UTTERANCES.resolve(
            self,
            info,
            first=first,
            after=after,
            speaker_id=speaker_id,
            time_from=time_from,
            time_to=time_to,
            order_by=order_by,
            direction=direction,
        )

    @RELATIONSHIPS.field(description="The relationships between the conversation's nodes.")
    async def relationships(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
        order_by: RelationshipOrderField = RelationshipOrderField.CREATED_AT,
        direction: Direction = Direction.ASC,
    ) -> Connection[LazyRelationship]:
        return await RELATIONSHIPS.resolve(
            self,
            info,
            first=first,
            after=after,
            relationship_type=relationship_type,
            min_strength=min_strength,
            order_by=order_by,
            direction=direction,
        )

    @CLUSTERS.field(description="The conversation's clusters of nodes, by level then name.")
    async def clusters(self, info: Info, level: int | None = None) -> list[LazyCluster]:
        return await CLUSTERS.resolve(self, info, level=level)

    @EDITS.field(description="The edits log of the conversation; default: newest first.")
    async def edits(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        target_type: list[TargetType] | None = None,
        edit_type: list[EditType] | None = None,
        user_id: str | None = None,
        direction: Direction = Direction.DESC,
    ) -> Connection[LazyEdit]:
        return await EDITS.resolve(
            self,
            info,
            first=first,
            after=after,
            target_type=target_type,
            edit_type=edit_type,
            user_id=user_id,
            direction=direction,
        )

    @API_CALLS.field(description="The LLM calls made for the conversation; default: newest first.")
    async def api_calls(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        feature: list[str] | None = None,
        provider: list[str] | None = None,
        model: list[str] | None = None,
        status: Annotated[
            str | None,
            strawberry.argument(
                description="Only calls whose `status` is exactly this (e.g. success, error)."
            ),
        ] = None,
        order_by: ApiCallOrderField = ApiCallOrderField.STARTED_AT,
        direction: Direction = Direction.DESC,
    ) -> Connection[LazyApiCall]:
        return await API_CALLS.resolve(
            self,
            info,
            first=first,
            after=after,
            feature=feature,
            provider=provider,
            model=model,
            status=status,
            order_by=order_by,
            direction=direction,
        )


def conversation_id_of(value: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise user_error(f"{str(value)[:60]!r} is not a valid conversation id.") from None


__all__ = [
    "Conversation",
    "Goal",
    "Participant",
    "RelationshipDirection",
]
