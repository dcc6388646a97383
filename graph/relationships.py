"""The `Relationship` type: a typed edge between two nodes of a conversation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.relations import OF_CONVERSATION, Members, ToOne, edits_of
from graph.relay import CREATED_AT, UPDATED_AT, Node

if TYPE_CHECKING:
    from graph.conversations import Conversation
    from graph.edits import Edit
    from graph.nodes import ThreadNode
    from graph.utterances import Utterance

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyEdit = Annotated["Edit", strawberry.lazy("graph.edits")]
LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]
LazyUtterance = Annotated["Utterance", strawberry.lazy("graph.utterances")]


FROM_NODE = ToOne("node", reference="from_node_id")
TO_NODE = ToOne("node", reference="to_node_id")
SUPPORTING_UTTERANCES = Members("utterance", column="supporting_utterance_ids", estimated_size=5)
EDITS = edits_of("relationship")


@strawberry.type(description="A typed, directed edge from one node to another.")
class Relationship(Node):
    conversation_id: strawberry.ID = strawberry.field(description="The id of `conversation`.")
    from_node_id: strawberry.ID = strawberry.field(description="The id of `fromNode`.")
    to_node_id: strawberry.ID = strawberry.field(description="The id of `toNode`.")
    relationship_type: str = strawberry.field(
        description="e.g. temporal_next, elaborates, contradicts, supports, answers, crux."
    )
    relationship_subtype: str | None = strawberry.field(
        description="A finer kind within `relationshipType`, free text."
    )
    explanation: str | None = strawberry.field(description="Why the two nodes are related.")
    strength: float = strawberry.field(description="0 to 1.")
    confidence: float = strawberry.field(
        description="0 to 1: how sure the analysis is of the relationship."
    )
    supporting_utterance_ids: list[strawberry.ID] | None = strawberry.field(
        description="The ids of `supportingUtterances`."
    )
    is_bidirectional: bool = strawberry.field(
        description="Whether the relationship holds in both directions."
    )
    created_at: datetime = strawberry.field(description=CREATED_AT)
    updated_at: datetime = strawberry.field(description=UPDATED_AT)

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)

    @FROM_NODE.field()
    async def from_node(self, info: Info) -> LazyNode | None:
        return await FROM_NODE.resolve(self, info)

    @TO_NODE.field()
    async def to_node(self, info: Info) -> LazyNode | None:
        return await TO_NODE.resolve(self, info)

    @SUPPORTING_UTTERANCES.field(
        description="The utterances that support the relationship, in list order."
    )
    async def supporting_utterances(self, info: Info) -> list[LazyUtterance]:
        return await SUPPORTING_UTTERANCES.resolve(self, info)

    @EDITS.field(description="The edits made to this relationship, newest first.")
    async def edits(self, info: Info) -> list[LazyEdit]:
        return await EDITS.resolve(self, info)
