"""Cluster mutations: create, update, delete, change membership."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from db.models import Cluster
from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import ClusterType, cluster_out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    parse_ids,
    parse_optional_id,
    provided,
    refuse_cleared,
    result_union,
    run_mutation,
)
from graph.services import clusters


@strawberry.input
class ClusterFieldsInput:
    cluster_name: str | None = strawberry.UNSET
    level: int | None = strawberry.UNSET
    summary: str | None = strawberry.UNSET
    key_themes: list[str] | None = strawberry.UNSET
    auto_generated: bool | None = strawberry.UNSET
    clustering_algorithm: str | None = strawberry.UNSET
    clustering_confidence: float | None = strawberry.UNSET
    color: str | None = strawberry.UNSET
    icon: str | None = strawberry.UNSET


@strawberry.input
class CreateClusterInput(ClusterFieldsInput):
    conversation_id: strawberry.ID
    cluster_name: str
    node_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    parent_cluster_id: strawberry.ID | None = None


@strawberry.input
class UpdateClusterInput(ClusterFieldsInput):
    id: strawberry.ID
    expected_updated_at: datetime = strawberry.field(
        description="The `updatedAt` the client last saw; a different one is a ConflictError."
    )
    parent_cluster_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Move under another cluster (null: a root)."
    )


def _values(data: ClusterFieldsInput) -> dict[str, Any]:
    values = provided(
        data,
        exclude=("id", "expected_updated_at", "conversation_id", "node_ids", "parent_cluster_id"),
    )
    refuse_cleared(values, Cluster)
    return values


for _input in (CreateClusterInput, UpdateClusterInput):
    inherit_descriptions(_input, ClusterType)


@strawberry.type
class ClusterPayload:
    cluster: ClusterType


@strawberry.type
class DeleteClusterPayload:
    deleted_id: strawberry.ID


Errors = ValidationError | NotFoundError | ConflictError | ForbiddenError
ClusterResult = Annotated[ClusterPayload | Errors, result_union("ClusterResult", "ClusterPayload")]
DeleteClusterResult = Annotated[
    DeleteClusterPayload | Errors, result_union("DeleteClusterResult", "DeleteClusterPayload")
]


@strawberry.type
class ClusterMutations:
    @strawberry.mutation(
        description="A new cluster of nodes of one conversation, under `parentClusterId` if given."
    )
    async def create_cluster(
        self,
        info: strawberry.Info,
        input: CreateClusterInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> ClusterResult:
        async def action(session, actor):
            cluster = await clusters.create_cluster(
                session,
                actor,
                parse_id(input.conversation_id, "conversationId"),
                _values(input),
                parse_ids(input.node_ids, "nodeIds"),
                parse_optional_id(input.parent_cluster_id, "parentClusterId"),
            )
            return ClusterPayload(cluster=cluster_out(cluster))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(description="Changes the fields sent; each changed field is logged.")
    async def update_cluster(
        self,
        info: strawberry.Info,
        input: UpdateClusterInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> ClusterResult:
        async def action(session, actor):
            change_parent = input.parent_cluster_id is not strawberry.UNSET
            cluster = await clusters.update_cluster(
                session,
                actor,
                parse_id(input.id, "id"),
                input.expected_updated_at,
                _values(input),
                parent_cluster_id=parse_id(input.parent_cluster_id, "parentClusterId")
                if change_parent and input.parent_cluster_id is not None
                else None,
                change_parent=change_parent,
            )
            return ClusterPayload(cluster=cluster_out(cluster))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(
        description="Adds and removes member nodes. No version needed: set changes from two "
        "editors both apply."
    )
    async def change_cluster_membership(
        self,
        info: strawberry.Info,
        cluster_id: strawberry.ID,
        add_node_ids: list[strawberry.ID] | None = None,
        remove_node_ids: list[strawberry.ID] | None = None,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> ClusterResult:
        async def action(session, actor):
            cluster = await clusters.change_membership(
                session,
                actor,
                parse_id(cluster_id, "clusterId"),
                parse_ids(add_node_ids, "addNodeIds"),
                parse_ids(remove_node_ids, "removeNodeIds"),
            )
            return ClusterPayload(cluster=cluster_out(cluster))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(description="Deletes a cluster; its child clusters move up to its parent.")
    async def delete_cluster(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> DeleteClusterResult:
        async def action(session, actor):
            deleted = await clusters.delete_cluster(session, actor, parse_id(id, "id"))
            return DeleteClusterPayload(deleted_id=strawberry.ID(str(deleted)))

        return await run_mutation(info, action, comment=comment, confidence=confidence)
