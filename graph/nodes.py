"""`ThreadNode` (a row of `nodes`), the typed shapes of its JSONB columns, and its traversals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.enums import DialogueType, RelationshipDirection
from graph.filters import DIRECTION_ENDS, DirectedFilter, RelationshipFilter
from graph.relations import (
    OF_CONVERSATION,
    Ancestors,
    Containing,
    EitherEnd,
    Members,
    ToMany,
    ToOne,
    edits_of,
)
from graph.relay import CREATED_AT, UPDATED_AT, Node
from graph.scalars import JSON
from graph.shapes import column_shape

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


def _directed(
    direction: str = "both",
    relationship_type: tuple[str, ...] | None = None,
    min_strength: float | None = None,
) -> DirectedFilter:
    return DirectedFilter(
        types=relationship_type, min_strength=min_strength, ends=DIRECTION_ENDS[direction]
    )


def _relationships(
    relationship_type: tuple[str, ...] | None = None, min_strength: float | None = None
) -> RelationshipFilter:
    return RelationshipFilter(types=relationship_type, min_strength=min_strength)


PARENT = ToOne("node", reference="parent_id")
PREDECESSOR = ToOne("node", reference="predecessor_id")
SUCCESSOR = ToOne("node", reference="successor_id")
CHILDREN = Members("node", column="children_ids", estimated_size=4)
ANCESTORS = Ancestors("node", reference="parent_id", estimated_size=5)
OUTGOING = ToMany("relationship", column="from_node_id", key=_relationships, estimated_size=10)
INCOMING = ToMany("relationship", column="to_node_id", key=_relationships, estimated_size=10)
RELATIONSHIPS = EitherEnd(
    "relationship", ends=DIRECTION_ENDS["both"], key=_directed, estimated_size=20
)
CLUSTERS = Containing("cluster", column="node_ids", estimated_size=5)
UTTERANCES = ToMany("utterance", column="node_id", estimated_size=10)
EDITS = edits_of("node")


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
    speaker_info: SpeakerInfo | None = column_shape("speaker_info")
    speaker_transitions: list[SpeakerTransition] | None = column_shape("speaker_transitions")
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

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)

    @PARENT.field(description="The node one level up; null for a root node.")
    async def parent(self, info: Info) -> ThreadNode | None:
        return await PARENT.resolve(self, info)

    @CHILDREN.field(description="The nodes one level down, in sibling order.")
    async def children(self, info: Info) -> list[ThreadNode]:
        return await CHILDREN.resolve(self, info)

    @ANCESTORS.field(description="The parent, its parent and so on up to the root, nearest first.")
    async def ancestors(self, info: Info) -> list[ThreadNode]:
        return await ANCESTORS.resolve(self, info)

    @PREDECESSOR.field(description="The previous node in time.")
    async def predecessor(self, info: Info) -> ThreadNode | None:
        return await PREDECESSOR.resolve(self, info)

    @SUCCESSOR.field(description="The next node in time.")
    async def successor(self, info: Info) -> ThreadNode | None:
        return await SUCCESSOR.resolve(self, info)

    @OUTGOING.field(description="The relationships from this node to others.")
    async def outgoing(
        self,
        info: Info,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
    ) -> list[LazyRelationship]:
        return await OUTGOING.resolve(
            self, info, relationship_type=relationship_type, min_strength=min_strength
        )

    @INCOMING.field(description="The relationships from other nodes to this one.")
    async def incoming(
        self,
        info: Info,
        relationship_type: list[str] | None = None,
        min_strength: Annotated[
            float | None,
            strawberry.argument(description=MIN_STRENGTH),
        ] = None,
    ) -> list[LazyRelationship]:
        return await INCOMING.resolve(
            self, info, relationship_type=relationship_type, min_strength=min_strength
        )

    @RELATIONSHIPS.field(
        description="The node's relationships in the given direction: outgoing ones first."
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
        return await RELATIONSHIPS.resolve(
            self,
            info,
            direction=direction,
            relationship_type=relationship_type,
            min_strength=min_strength,
        )

    @CLUSTERS.field(description="The clusters this node is a member of.")
    async def clusters(self, info: Info) -> list[LazyCluster]:
        return await CLUSTERS.resolve(self, info)

    @UTTERANCES.field(description="The utterances assigned to this node, in sequence order.")
    async def utterances(self, info: Info) -> list[LazyUtterance]:
        return await UTTERANCES.resolve(self, info)

    @EDITS.field(description="The edits made to this node, newest first.")
    async def edits(self, info: Info) -> list[LazyEdit]:
        return await EDITS.resolve(self, info)
