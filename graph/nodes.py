"""`ThreadNode` (a row of `nodes`), the typed shapes of its JSONB columns, and its traversals."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from graph.context import Context
from graph.enums import DialogueType, RelationshipDirection
from graph.filters import RelationshipFilter, any_of
from graph.limits import ESTIMATED_SIZE
from graph.relay import CREATED_AT, UPDATED_AT, Node
from graph.scalars import JSON

if TYPE_CHECKING:
    from graph.clusters import Cluster
    from graph.conversations import Conversation
    from graph.edits import Edit
    from graph.relationships import Relationship
    from graph.utterances import Utterance

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyRelationship = Annotated["Relationship", strawberry.lazy("graph.relationships")]
LazyCluster = Annotated["Cluster", strawberry.lazy("graph.clusters")]
LazyUtterance = Annotated["Utterance", strawberry.lazy("graph.utterances")]
LazyEdit = Annotated["Edit", strawberry.lazy("graph.edits")]

MIN_STRENGTH = (
    "Only relationships with `strength` at or above this (inclusive; strength runs 0 to 1)."
)


@strawberry.type(description="Another speaker's share of a node.")
class SecondarySpeaker:
    speaker_id: str | None = strawberry.field(
        description="The speaker id (the `speakerId` of their utterances)."
    )
    percentage: float | None = strawberry.field(
        description="This speaker's share of the node, in percent (as `contributionPercentage` is"
        " for the primary speaker)."
    )


@strawberry.type(description="Who speaks in a node (`speakerInfo`).")
class SpeakerInfo:
    primary_speaker: str | None = strawberry.field(description="The speaker id who says most.")
    speaker_name: str | None = strawberry.field(description="The primary speaker's display name.")
    contribution_percentage: float | None = strawberry.field(
        description="The primary speaker's share of the node, in percent."
    )
    secondary_speakers: list[SecondarySpeaker] | None = strawberry.field(
        description="The other speakers, with their shares."
    )


@strawberry.type(description="A change of speaker inside a node (`speakerTransitions[]`).")
class SpeakerTransition:
    from_speaker: str | None = strawberry.field(description="The speaker id before the change.")
    to_speaker: str | None = strawberry.field(description="The speaker id after the change.")
    utterance_index: int | None = strawberry.field(
        description="Where in the node's utterances the change happens."
    )
    transition_type: str | None = strawberry.field(
        description="question_answer, interruption, handoff or agreement."
    )
    context_snippet: str | None = strawberry.field(
        description="A few words around the change, as the analysis quoted them."
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    """A JSONB value read as text: a string as it is, anything else as its JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _speaker_info(root: ThreadNode) -> SpeakerInfo | None:
    raw = root.__dict__.get("speaker_info")
    if not isinstance(raw, dict):
        return None
    secondary = raw.get("secondary_speakers")
    return SpeakerInfo(
        primary_speaker=_text(raw.get("primary_speaker")),
        speaker_name=_text(raw.get("speaker_name")),
        contribution_percentage=_number(raw.get("contribution_percentage")),
        secondary_speakers=None
        if not isinstance(secondary, list)
        else [
            SecondarySpeaker(
                speaker_id=_text(item.get("speaker_id")),
                percentage=_number(item.get("percentage")),
            )
            for item in secondary
            if isinstance(item, dict)
        ],
    )


def _speaker_transitions(root: ThreadNode) -> list[SpeakerTransition] | None:
    raw = root.__dict__.get("speaker_transitions")
    if raw is None:
        return None
    return [
        SpeakerTransition(
            from_speaker=_text(item.get("from_speaker")),
            to_speaker=_text(item.get("to_speaker")),
            utterance_index=item.get("utterance_index")
            if isinstance(item.get("utterance_index"), int)
            else None,
            transition_type=_text(item.get("transition_type")),
            context_snippet=_text(item.get("context_snippet")),
        )
        for item in raw
        if isinstance(item, dict)
    ]


@strawberry.type(
    description="A topic node of a conversation's graph (a row of `nodes`; `Node` is the Relay"
    " interface)."
)
class ThreadNode(Node):
    conversation_id: strawberry.ID = strawberry.field(description="The id of `conversation`.")
    node_name: str
    summary: str
    key_points: list[str] | None = strawberry.field(description="The node's main points, in order.")
    node_type: str = strawberry.field(
        description="What kind of node the analysis made, as free text: `conversational_thread`"
        " unless said otherwise (the demo data calls its most detailed level `utterance_group`)."
    )
    level: int = strawberry.field(
        description="Depth in the hierarchy: 1 is the coarsest theme, 5 the most detailed."
    )
    parent_id: strawberry.ID | None = strawberry.field(description="The id of `parent`.")
    children_ids: list[strawberry.ID] | None = strawberry.field(
        description="The ids of `children`, in sibling order."
    )
    is_bookmark: bool = strawberry.field(description="Whether a person bookmarked the node.")
    is_contextual_progress: bool = strawberry.field(
        description="Whether the node moves the conversation's goals forward."
    )
    is_tangent: bool = strawberry.field(description="Whether the node is a digression.")
    is_crux: bool = strawberry.field(
        description="Whether the node is a crux: a point the disagreement turns on."
    )
    predecessor_id: strawberry.ID | None = strawberry.field(
        description="The id of the previous node in time (`predecessor`)."
    )
    successor_id: strawberry.ID | None = strawberry.field(
        description="The id of the next node in time (`successor`)."
    )
    chunk_ids: list[uuid.UUID] = strawberry.field(
        description="The transcript chunks the node was built from."
    )
    utterance_ids: list[strawberry.ID] | None = strawberry.field(
        description="The ids of the utterances the node covers."
    )
    speaker_info: SpeakerInfo | None = strawberry.field(resolver=_speaker_info)
    speaker_transitions: list[SpeakerTransition] | None = strawberry.field(
        resolver=_speaker_transitions
    )
    dialogue_type: DialogueType | None = strawberry.field(
        description="How many people speak in the node; null when the analysis did not say."
    )
    claim_ids: list[uuid.UUID] | None = strawberry.field(
        description="The claims made in the node (claims have no object type yet)."
    )
    timestamp_start: float | None = strawberry.field(
        description="Seconds from the start of the conversation."
    )
    timestamp_end: float | None = strawberry.field(
        description="Seconds from the start of the conversation."
    )
    duration_seconds: float | None = strawberry.field(
        description="How long the node lasts, in seconds, as the analysis delivered it."
    )
    cluster_info: JSON | None = strawberry.field(
        description="Free-form JSON about the node's clustering, stored as delivered (the demo"
        " data holds `{cluster_id, cluster_name}`). The API does not keep it in step with"
        " `clusters`, which is where membership lives."
    )
    display_preferences: JSON | None = strawberry.field(
        description="Free-form JSON for how a client draws the node, stored as given (the demo"
        " data holds `{color, collapsed}`)."
    )
    canvas_x: int | None = strawberry.field(
        description="The node's left edge on the canvas, in canvas pixels (x grows to the right,"
        " as in Obsidian's JSON Canvas, which the canvas exports to)."
    )
    canvas_y: int | None = strawberry.field(
        description="The node's top edge on the canvas, in canvas pixels (y grows downwards)."
    )
    canvas_width: int = strawberry.field(
        description="The node's width on the canvas, in canvas pixels: at least 1 when set"
        " through the API, 350 when the node was created without one."
    )
    canvas_height: int = strawberry.field(
        description="The node's height on the canvas, in canvas pixels: at least 1 when set"
        " through the API, 200 when the node was created without one."
    )
    zoom_level_visible: list[int] | None = strawberry.field(
        description="The canvas zoom levels at which the node is drawn."
    )
    confidence_score: float | None = strawberry.field(
        description="0 to 1: how sure the analysis is of the node."
    )
    created_at: datetime = strawberry.field(description=CREATED_AT)
    updated_at: datetime = strawberry.field(description=UPDATED_AT)

    @strawberry.field
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await info.context.loaders.at(info).conversation_by_id.load(self.conversation_id)

    @strawberry.field(description="The node one level up; null for a root node.")
    async def parent(self, info: Info) -> ThreadNode | None:
        if self.parent_id is None:
            return None
        return await info.context.loaders.at(info).node_by_id.load(self.parent_id)

    @strawberry.field(
        description="The nodes one level down, in sibling order.", metadata={ESTIMATED_SIZE: 4}
    )
    async def children(self, info: Info) -> list[ThreadNode]:
        if not self.children_ids:
            return []
        found = await info.context.loaders.at(info).node_by_id.load_many(self.children_ids)
        return [child for child in found if child is not None]

    @strawberry.field(
        description="The parent, its parent and so on up to the root, nearest first.",
        metadata={ESTIMATED_SIZE: 5},
    )
    async def ancestors(self, info: Info) -> list[ThreadNode]:
        if self.parent_id is None:
            return []
        return await info.context.loaders.at(info).ancestors_by_node_id.load(self.id)

    @strawberry.field(description="The previous node in time.")
    async def predecessor(self, info: Info) -> ThreadNode | None:
        if self.predecessor_id is None:
            return None
        return await info.context.loaders.at(info).node_by_id.load(self.predecessor_id)

    @strawberry.field(description="The next node in time.")
    async def successor(self, info: Info) -> ThreadNode | None:
        if self.successor_id is None:
            return None
        return await info.context.loaders.at(info).node_by_id.load(self.successor_id)

    @strawberry.field(
        description="The relationships from this node to others.", metadata={ESTIMATED_SIZE: 10}
    )
    async def outgoing(
        self,
        info: Info,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
    ) -> list[LazyRelationship]:
        key = RelationshipFilter(types=any_of(relationship_type), min_strength=min_strength)
        loader = info.context.loaders.at(info).relationships_by_from_node_id
        return await loader.load((self.id, key))

    @strawberry.field(
        description="The relationships from other nodes to this one.", metadata={ESTIMATED_SIZE: 10}
    )
    async def incoming(
        self,
        info: Info,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
    ) -> list[LazyRelationship]:
        key = RelationshipFilter(types=any_of(relationship_type), min_strength=min_strength)
        return await info.context.loaders.at(info).relationships_by_to_node_id.load((self.id, key))

    @strawberry.field(
        description="The node's relationships in the given direction: outgoing ones first.",
        metadata={ESTIMATED_SIZE: 20},
    )
    async def relationships(
        self,
        info: Info,
        direction: RelationshipDirection = RelationshipDirection.BOTH,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
    ) -> list[LazyRelationship]:
        key = RelationshipFilter(types=any_of(relationship_type), min_strength=min_strength)
        loaders = info.context.loaders.at(info)
        found = []
        if direction is not RelationshipDirection.INCOMING:
            found += await loaders.relationships_by_from_node_id.load((self.id, key))
        if direction is not RelationshipDirection.OUTGOING:
            found += await loaders.relationships_by_to_node_id.load((self.id, key))
        return found

    @strawberry.field(
        description="The clusters this node is a member of.", metadata={ESTIMATED_SIZE: 5}
    )
    async def clusters(self, info: Info) -> list[LazyCluster]:
        return await info.context.loaders.at(info).clusters_by_node_id.load(self.id)

    @strawberry.field(
        description="The utterances assigned to this node, in sequence order.",
        metadata={ESTIMATED_SIZE: 10},
    )
    async def utterances(self, info: Info) -> list[LazyUtterance]:
        return await info.context.loaders.at(info).utterances_by_node_id.load(self.id)

    @strawberry.field(
        description="The edits made to this node, newest first.", metadata={ESTIMATED_SIZE: 10}
    )
    async def edits(self, info: Info) -> list[LazyEdit]:
        return await info.context.loaders.at(info).edits_by_node_id.load(self.id)
