"""The `Cluster` type: a named group of nodes, nested in a hierarchy of its own."""

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

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]


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

    @strawberry.field
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await info.context.loaders.at(info).conversation_by_id.load(self.conversation_id)

    @strawberry.field(description="The enclosing cluster; null at the top.")
    async def parent(self, info: Info) -> Cluster | None:
        if self.parent_cluster_id is None:
            return None
        return await info.context.loaders.at(info).cluster_by_id.load(self.parent_cluster_id)

    @strawberry.field(
        description="The clusters nested directly inside this one.", metadata={ESTIMATED_SIZE: 10}
    )
    async def children(self, info: Info) -> list[Cluster]:
        if not self.child_cluster_ids:
            return []
        found = await info.context.loaders.at(info).cluster_by_id.load_many(self.child_cluster_ids)
        return [cluster for cluster in found if cluster is not None]

    @strawberry.field(
        description="The member nodes, in `nodeIds` order.", metadata={ESTIMATED_SIZE: 50}
    )
    async def nodes(self, info: Info) -> list[LazyNode]:
        if not self.node_ids:
            return []
        found = await info.context.loaders.at(info).node_by_id.load_many(self.node_ids)
        return [node for node in found if node is not None]
