"""Relationship mutations: create, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import RelationshipType, out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    result_union,
    run_mutation,
)
from graph.mutations.inputs import fields_from, input_type
from graph.services import relationships
from graph.services.relationships import RelationshipFields

RelationshipFieldsInput: Any = input_type(
    "RelationshipFieldsInput",
    RelationshipFields,
    graphql={"supporting_utterance_ids": list[strawberry.ID] | None},
)


@strawberry.input(description="A relationship between two nodes of the same conversation.")
class CreateRelationshipInput(RelationshipFieldsInput):
    from_node_id: strawberry.ID
    to_node_id: strawberry.ID
    relationship_type: str


@strawberry.input
class UpdateRelationshipInput(RelationshipFieldsInput):
    id: strawberry.ID
    expected_updated_at: datetime = strawberry.field(
        description="The `updatedAt` the client last saw; a different one is a ConflictError."
    )


for _input in (CreateRelationshipInput, UpdateRelationshipInput):
    inherit_descriptions(_input, RelationshipType)


@strawberry.type
class RelationshipPayload:
    relationship: RelationshipType


@strawberry.type
class DeleteRelationshipPayload:
    deleted_id: strawberry.ID


Errors = ValidationError | NotFoundError | ConflictError | ForbiddenError
RelationshipResult = Annotated[
    RelationshipPayload | Errors, result_union("RelationshipResult", "RelationshipPayload")
]
DeleteRelationshipResult = Annotated[
    DeleteRelationshipPayload | Errors,
    result_union("DeleteRelationshipResult", "DeleteRelationshipPayload"),
]


@strawberry.type
class RelationshipMutations:
    @strawberry.mutation(description="A new relationship, logged as an `addition` edit.")
    async def create_relationship(
        self,
        info: strawberry.Info,
        input: CreateRelationshipInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> RelationshipResult:
        async def action(session, actor):
            relationship = await relationships.create_relationship(
                session,
                actor,
                relationships.CreateRelationship(
                    from_node_id=parse_id(input.from_node_id, "fromNodeId"),
                    to_node_id=parse_id(input.to_node_id, "toNodeId"),
                    fields=fields_from(RelationshipFields, input),
                ),
            )
            return RelationshipPayload(relationship=out(relationship))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(description="Changes the fields sent; each changed field is logged.")
    async def update_relationship(
        self,
        info: strawberry.Info,
        input: UpdateRelationshipInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> RelationshipResult:
        async def action(session, actor):
            relationship = await relationships.update_relationship(
                session,
                actor,
                relationships.UpdateRelationship(
                    id=parse_id(input.id, "id"),
                    expected_updated_at=input.expected_updated_at,
                    fields=fields_from(RelationshipFields, input),
                ),
            )
            return RelationshipPayload(relationship=out(relationship))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(description="Deletes a relationship, logged as a `deletion` edit.")
    async def delete_relationship(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> DeleteRelationshipResult:
        async def action(session, actor):
            deleted = await relationships.delete_relationship(session, actor, parse_id(id, "id"))
            return DeleteRelationshipPayload(deleted_id=strawberry.ID(str(deleted)))

        return await run_mutation(info, action, comment=comment, confidence=confidence)
