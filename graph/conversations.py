"""The `Conversation` type, the typed shapes of its JSONB columns, and its traversals."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from graph.context import Context
from graph.enums import ConversationType, EditType, RelationshipDirection, TargetType, Visibility
from graph.filters import (
    ApiCallFilter,
    EditFilter,
    NodeFilter,
    RelationshipFilter,
    UtteranceFilter,
    any_of,
)
from graph.limits import ESTIMATED_SIZE
from graph.nodes import MIN_STRENGTH
from graph.pagination import Connection, Direction, Ordering, connection, page_request, user_error
from graph.relay import CREATED_AT, UPDATED_AT, Node
from graph.rendering import connection_items_plan, list_items_plan
from graph.scalars import JSON

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


def _shaped(kind: type, item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    names = kind.__strawberry_definition__.fields  # type: ignore[attr-defined]
    return kind(**{field.python_name: item.get(field.python_name) for field in names})


def _participants(root: Conversation) -> list[Participant | None] | None:
    raw = root.__dict__.get("participants")
    return None if raw is None else [_shaped(Participant, item) for item in raw]


def _shared_with(root: Conversation, info: Info) -> list[str] | None:
    # security: who else may read a conversation is its owner's business only.
    if info.context.viewer_id is None or info.context.viewer_id != root.owner_id:
        return None
    return root.__dict__.get("shared_with")


def _goals(root: Conversation) -> list[Goal | None] | None:
    raw = root.__dict__.get("goals")
    return None if raw is None else [_shaped(Goal, item) for item in raw]


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


ORDER_TYPES: dict[str, tuple[type, bool]] = {
    "timestamp_start": (float, True),
    "level": (int, True),
    "node_name": (str, False),
    "created_at": (datetime, True),
    "updated_at": (datetime, True),
    "sequence_number": (int, False),
    "strength": (float, True),
    "relationship_type": (str, False),
    "started_at": (datetime, False),
    "total_cost": (float, False),
    "conversation_name": (str, False),
}


def ordering(field: Enum, direction: Direction) -> Ordering:
    python_type, nullable = ORDER_TYPES[field.value]
    return Ordering(field.value, python_type, nullable, direction)


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
    participants: list[Participant | None] | None = strawberry.field(resolver=_participants)
    started_at: datetime = strawberry.field(
        description="When the conversation started (the time `createConversation` ran unless "
        "given)."
    )
    ended_at: datetime | None
    duration_seconds: int | None = strawberry.field(
        description="How long it lasted, in seconds, as delivered."
    )
    goals: list[Goal | None] | None = strawberry.field(resolver=_goals)
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
    shared_with: list[str] | None = strawberry.field(
        resolver=_shared_with,
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

    @strawberry.field(
        description="The conversation's nodes, filtered; default order: `timestampStart`."
    )
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
        node_filter = NodeFilter(
            level=any_of(level),
            zoom_level_visible=zoom_level_visible,
            node_type=any_of(node_type),
            is_bookmark=is_bookmark,
            is_tangent=is_tangent,
            is_crux=is_crux,
            is_contextual_progress=is_contextual_progress,
            primary_speaker=primary_speaker,
            time_from=time_from,
            time_to=time_to,
        )
        loaders = info.context.loaders.at(info)
        return await _page(
            info,
            self.id,
            node_filter,
            ordering(order_by, direction),
            first,
            after,
            loaders.nodes_page_by_conversation_id,
            loaders.nodes_count_by_conversation_id,
        )

    @strawberry.field(
        description="The nodes without a parent: the top of the hierarchy, in time order.",
        metadata={ESTIMATED_SIZE: 10},
    )
    async def root_nodes(self, info: Info) -> list[LazyNode]:
        plan = list_items_plan(info)
        if plan is not None:
            await info.context.rendering(info.context.settings.default_page_size)
        return await info.context.loaders.at(info).nodes_by_conversation_id.load(
            (self.id, (NodeFilter(roots_only=True), plan))
        )

    @strawberry.field(description="The conversation's utterances; default order: `sequenceNumber`.")
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
        loaders = info.context.loaders.at(info)
        return await _page(
            info,
            self.id,
            UtteranceFilter(speaker_ids=any_of(speaker_id), time_from=time_from, time_to=time_to),
            ordering(order_by, direction),
            first,
            after,
            loaders.utterances_page_by_conversation_id,
            loaders.utterances_count_by_conversation_id,
        )

    @strawberry.field(description="The relationships between the conversation's nodes.")
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
        loaders = info.context.loaders.at(info)
        return await _page(
            info,
            self.id,
            RelationshipFilter(types=any_of(relationship_type), min_strength=min_strength),
            ordering(order_by, direction),
            first,
            after,
            loaders.relationships_page_by_conversation_id,
            loaders.relationships_count_by_conversation_id,
        )

    @strawberry.field(
        description="The conversation's clusters of nodes, by level then name.",
        metadata={ESTIMATED_SIZE: 50},
    )
    async def clusters(self, info: Info, level: int | None = None) -> list[LazyCluster]:
        loader = info.context.loaders.at(info).clusters_by_conversation_id
        return await loader.load((self.id, level))

    @strawberry.field(description="The edits log of the conversation; default: newest first.")
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
        loaders = info.context.loaders.at(info)
        return await _page(
            info,
            self.id,
            EditFilter(
                target_types=any_of(
                    None if target_type is None else [t.value for t in target_type]
                ),
                edit_types=any_of(None if edit_type is None else [t.value for t in edit_type]),
                user_id=user_id,
            ),
            ordering(EditOrderField.CREATED_AT, direction),
            first,
            after,
            loaders.edits_page_by_conversation_id,
            loaders.edits_count_by_conversation_id,
        )

    @strawberry.field(description="The LLM calls made for the conversation; default: newest first.")
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
        loaders = info.context.loaders.at(info)
        return await _page(
            info,
            self.id,
            ApiCallFilter(
                features=any_of(feature),
                providers=any_of(provider),
                models=any_of(model),
                status=status,
            ),
            ordering(order_by, direction),
            first,
            after,
            loaders.api_calls_page_by_conversation_id,
            loaders.api_calls_count_by_conversation_id,
        )


async def _page(
    info: Info,
    parent: Any,
    list_filter: Any,
    order: Ordering,
    first: int | None,
    after: str | None,
    pages: Any,
    counts: Any,
) -> Any:
    from graph.loaders import ListArgs

    page = page_request(info.context.settings, first, after, order)
    plan = connection_items_plan(info)
    if plan is not None:
        await info.context.rendering(page.first)
    result = await pages.load((parent, ListArgs(list_filter, order, page, plan)))

    async def count() -> int:
        return await counts.load((parent, list_filter))

    return connection(result, after is not None, count)


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
