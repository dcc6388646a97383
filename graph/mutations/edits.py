"""Training-data export of the edits log, and the LLM API call log."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from graph.enums import TargetType
from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import ApiCallType, EditType, out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    parse_optional_id,
    result_union,
    run_mutation,
)
from graph.mutations.inputs import fields_from, input_type
from graph.services import api_calls, edits


@strawberry.type
class TrainingExportPayload:
    dataset_id: str
    edits: list[EditType] = strawberry.field(
        description="The edits marked as exported to the dataset by this call, oldest first."
    )


@strawberry.type
class EditsPage:
    edits: list[EditType]


RecordApiCallInput: Any = input_type(
    "RecordApiCallInput",
    api_calls.ApiCallFields,
    leading={"conversation_id": (strawberry.ID | None, None)},
    required=api_calls.REQUIRED,
    default=None,
)
inherit_descriptions(RecordApiCallInput, ApiCallType)


@strawberry.type
class ApiCallPayload:
    api_call: ApiCallType


Errors = ValidationError | NotFoundError | ConflictError | ForbiddenError
TrainingExportResult = Annotated[
    TrainingExportPayload | Errors, result_union("TrainingExportResult", "TrainingExportPayload")
]
ApiCallResult = Annotated[ApiCallPayload | Errors, result_union("ApiCallResult", "ApiCallPayload")]


EditsResult = Annotated[EditsPage | Errors, result_union("EditsResult", "EditsPage")]


@strawberry.type
class EditsQuery:
    @strawberry.field(
        description="A conversation's edits log, newest first; narrowed to one target when "
        "`targetId` (and optionally `targetType`) is given."
    )
    async def edits_log(
        self,
        info: strawberry.Info,
        conversation_id: strawberry.ID,
        target_id: strawberry.ID | None = None,
        target_type: Annotated[
            TargetType | None,
            strawberry.argument(description="Only edits of this kind of object."),
        ] = None,
        first: int = 100,
    ) -> EditsResult:
        async def action(session, actor):
            rows = await edits.list_edits(
                session,
                info.context.viewer_id,
                parse_id(conversation_id, "conversationId"),
                target_id=parse_optional_id(target_id, "targetId"),
                target_type=None if target_type is None else target_type.value,
                first=first,
            )
            return EditsPage(edits=[out(row) for row in rows])

        return await run_mutation(info, action, anonymous=True)


@strawberry.type
class EditMutations:
    @strawberry.mutation(
        description="Marks up to `limit` edits not yet exported as exported to `datasetId` and "
        "returns them; only edits of conversations the caller owns. Concurrent exports never "
        "return the same edit. Canvas moves are not "
        "training data and are never exported."
    )
    async def export_training_edits(
        self, info: strawberry.Info, dataset_id: str, limit: int = 1000
    ) -> TrainingExportResult:
        async def action(session, actor):
            rows = await edits.export_for_training(session, actor, dataset_id, limit)
            return TrainingExportPayload(dataset_id=dataset_id, edits=[out(row) for row in rows])

        return await run_mutation(info, action)

    @strawberry.mutation(description="Logs one LLM API call with its tokens, cost and outcome.")
    async def record_api_call(
        self, info: strawberry.Info, input: RecordApiCallInput
    ) -> ApiCallResult:
        async def action(session, actor):
            command = api_calls.RecordApiCall(
                fields=fields_from(api_calls.ApiCallFields, input),
                conversation_id=parse_optional_id(input.conversation_id, "conversationId"),
            )
            call = await api_calls.record_api_call(session, actor, command)
            return ApiCallPayload(api_call=out(call))

        return await run_mutation(info, action)
