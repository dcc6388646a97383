"""The `Cluster` type: a named group of nodes, nested in a hierarchy of its own."""

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

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyEdit = Annotated["Edit", strawberry.lazy("graph.edits")]
LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]


PARENT = ToOne("cluster", reference="parent_cluster_id")
CHILDREN = Members("cluster", column="child_cluster_ids", estimated_size=10)
NODES = Members("node", column="node_ids", estimated_size=50)
EDITS = edits_of("cluster")


@strawberry.type(description="A named group of a conversation's nodes; clusters nest.")
class Cluster(Node):
    conversation_id: strawberry.ID = strawberry.field(description="The id of `conversation`.")
    cluster_name: str
    level: int = strawberry.field(description="Depth in the cluster hierarchy.")
    parent_cluster_id: strawberry.ID | None = strawberry.field(description="The id of `parent`.")
    node_ids: list[strawberry.ID] = strawberry.field(description="The ids of `nodes`.")
    child_cluster_ids: list[strawberry.ID] | None = strawberry.field(
        description="The ids of `children`."
    )
    summary: str | None
    key_themes: list[str] | None = strawberry.field(
        description="The themes the cluster's nodes share, in order."
    )
    auto_generated: bool = strawberry.field(
        description="Whether the analysis made the cluster (false: a person did)."
    )
    clustering_algorithm: str | None = strawberry.field(
        description="Which algorithm made the cluster, free text (null for a person's)."
    )
    clustering_confidence: float | None = strawberry.field(
        description="0 to 1: how sure `clusteringAlgorithm` is of the cluster."
    )
    color: str | None = strawberry.field(
        description="The colour a client draws the cluster in, free text stored as given (the"
        " demo data uses CSS hex colours such as `#4e79a7`)."
    )
    icon: str | None = strawberry.field(
        description="The name of an icon a client draws the cluster with, free text stored as "
        "given."
    )
    created_at: datetime = strawberry.field(description=CREATED_AT)
    updated_at: datetime = strawberry.field(description=UPDATED_AT)

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)

    @PARENT.field(description="The enclosing cluster; null at the top.")
    async def parent(self, info: Info) -> Cluster | None:
        return await PARENT.resolve(self, info)

    @CHILDREN.field(description="The clusters nested directly inside this one.")
    async def children(self, info: Info) -> list[Cluster]:
        return await CHILDREN.resolve(self, info)

    @NODES.field(description="The member nodes, in `nodeIds` order.")
    async def nodes(self, info: Info) -> list[LazyNode]:
        return await NODES.resolve(self, info)

    @EDITS.field(description="The edits made to this cluster, newest first.")
    async def edits(self, info: Info) -> list[LazyEdit]:
        return await EDITS.resolve(self, info)
