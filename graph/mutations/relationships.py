"""Relationship mutations: create, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from db.models import Relationship
from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import RelationshipType, relationship_out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    parse_ids,
    provided,
    refuse_cleared,
    result_union,
    run_mutation,
)
from graph.services import relationships


@strawberry.input
class RelationshipFieldsInput:
    relationship_type: str | None = strawberry.UNSET
    relationship_subtype: str | None = strawberry.UNSET
    explanation: str | None = strawberry.UNSET
    strength: float | None = strawberry.UNSET
    confidence: float | None = strawberry.UNSET
    supporting_utterance_ids: list[strawberry.ID] | None = strawberry.UNSET
    is_bidirectional: bool | None = strawberry.UNSET


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


def _values(data: RelationshipFieldsInput) -> dict[str, Any]:
    values = provided(data, exclude=("id", "expected_updated_at", "from_node_id", "to_node_id"))
    if values.get("supporting_utterance_ids") is not None:
        values["supporting_utterance_ids"] = parse_ids(
            values["supporting_utterance_ids"], "supportingUtteranceIds"
        )
    refuse_cleared(values, Relationship)
    return values


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
                parse_id(input.from_node_id, "fromNodeId"),
                parse_id(input.to_node_id, "toNodeId"),
                _values(input),
            )
            return RelationshipPayload(relationship=relationship_out(relationship))

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
                parse_id(input.id, "id"),
                input.expected_updated_at,
                _values(input),
            )
            return RelationshipPayload(relationship=relationship_out(relationship))

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
