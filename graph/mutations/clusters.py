"""Cluster mutations: create, update, delete, change membership."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import ClusterType, out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    parse_ids,
    parse_optional_id,
    result_union,
    run_mutation,
)
from graph.mutations.inputs import fields_from, input_type
from graph.services import clusters
from graph.services.clusters import ClusterFields
from graph.services.fields import UNSET

ClusterFieldsInput: Any = input_type("ClusterFieldsInput", ClusterFields)


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
                clusters.CreateCluster(
                    conversation_id=parse_id(input.conversation_id, "conversationId"),
                    fields=fields_from(ClusterFields, input),
                    node_ids=tuple(parse_ids(input.node_ids, "nodeIds")),
                    parent_cluster_id=parse_optional_id(input.parent_cluster_id, "parentClusterId"),
                ),
            )
            return ClusterPayload(cluster=out(cluster))

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
            cluster = await clusters.update_cluster(
                session,
                actor,
                clusters.UpdateCluster(
                    id=parse_id(input.id, "id"),
                    expected_updated_at=input.expected_updated_at,
                    fields=fields_from(ClusterFields, input),
                    parent_cluster_id=UNSET
                    if input.parent_cluster_id is strawberry.UNSET
                    else parse_optional_id(input.parent_cluster_id, "parentClusterId"),
                ),
            )
            return ClusterPayload(cluster=out(cluster))

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
                clusters.ChangeMembership(
                    cluster_id=parse_id(cluster_id, "clusterId"),
                    add_node_ids=tuple(parse_ids(add_node_ids, "addNodeIds")),
                    remove_node_ids=tuple(parse_ids(remove_node_ids, "removeNodeIds")),
                ),
            )
            return ClusterPayload(cluster=out(cluster))

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
