"""The `Relationship` type: a typed edge between two nodes of a conversation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.limits import ESTIMATED_SIZE
from graph.relay import CREATED_AT, UPDATED_AT, Node

if TYPE_CHECKING:
    from graph.conversations import Conversation
    from graph.nodes import ThreadNode
    from graph.utterances import Utterance

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]
LazyUtterance = Annotated["Utterance", strawberry.lazy("graph.utterances")]


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

    @strawberry.field
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await info.context.loaders.at(info).conversation_by_id.load(self.conversation_id)

    @strawberry.field
    async def from_node(self, info: Info) -> LazyNode | None:
        return await info.context.loaders.at(info).node_by_id.load(self.from_node_id)

    @strawberry.field
    async def to_node(self, info: Info) -> LazyNode | None:
        return await info.context.loaders.at(info).node_by_id.load(self.to_node_id)

    @strawberry.field(
        description="The utterances that support the relationship, in list order.",
        metadata={ESTIMATED_SIZE: 5},
    )
    async def supporting_utterances(self, info: Info) -> list[LazyUtterance]:
        if not self.supporting_utterance_ids:
            return []
        loader = info.context.loaders.at(info).utterance_by_id
        found = await loader.load_many(self.supporting_utterance_ids)
        return [utterance for utterance in found if utterance is not None]
