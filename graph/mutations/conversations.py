"""Conversation mutations: create, update, soft delete, restore, purge; utterances; whole-graph
import and export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph.conversations import Goal, Participant
from graph.enums import ConversationType as ConversationTypeEnum
from graph.enums import Visibility
from graph.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from graph.mutations.bridge import ConversationType, UtteranceType, out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    result_union,
    run_mutation,
)
from graph.mutations.inputs import fields_from, input_type
from graph.services import conversations, transfer
from graph.services.conversations import ConversationFields, UtteranceFields


@strawberry.input(description="A person taking part in a conversation.")
class ParticipantInput:
    id: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    role: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    platform_id: str | None = strawberry.UNSET
    metadata: JSON | None = strawberry.UNSET


@strawberry.input(description="What a conversation is meant to achieve.")
class GoalInput:
    goal_type: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    target_metric: str | None = strawberry.UNSET
    target_value: JSON | None = strawberry.UNSET
    weight: float | None = strawberry.UNSET


ConversationFieldsInput: Any = input_type(
    "ConversationFieldsInput",
    ConversationFields,
    graphql={
        "conversation_type": ConversationTypeEnum | None,
        "participants": list[ParticipantInput] | None,
        "goals": list[GoalInput] | None,
        "visibility": Visibility | None,
    },
)


@strawberry.input(description="A new conversation, owned by the acting user.")
class CreateConversationInput(ConversationFieldsInput):
    conversation_name: str
    conversation_type: ConversationTypeEnum
    source_type: str
    started_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it started; now when omitted."
    )
    visibility: Visibility | None = strawberry.field(
        default=strawberry.UNSET, description="Who may read it; PRIVATE when omitted."
    )


@strawberry.input
class UpdateConversationInput(ConversationFieldsInput):
    id: strawberry.ID
    expected_updated_at: datetime = strawberry.field(
        description="The `updatedAt` the client last saw; a different one is a ConflictError."
    )


UtteranceInput: Any = input_type(
    "UtteranceInput", UtteranceFields, required=conversations.APPEND_REQUIRED
)
UpdateUtteranceInput: Any = input_type(
    "UpdateUtteranceInput",
    UtteranceFields,
    only=conversations.CORRECTABLE,
    leading={
        "id": strawberry.ID,
        "expected_updated_at": (
            datetime,
            strawberry.field(
                description="The `updatedAt` the client last saw; a different one is a"
                " ConflictError."
            ),
        ),
    },
    description="Corrects a transcript line or who said it.",
)


for _input, _output in (
    (ParticipantInput, Participant),
    (GoalInput, Goal),
    (CreateConversationInput, ConversationType),
    (UpdateConversationInput, ConversationType),
    (UtteranceInput, UtteranceType),
    (UpdateUtteranceInput, UtteranceType),
):
    inherit_descriptions(_input, _output)


@strawberry.type
class ConversationPayload:
    conversation: ConversationType


@strawberry.type
class PurgeConversationPayload:
    purged_id: strawberry.ID


@strawberry.type
class AppendUtterancesPayload:
    conversation: ConversationType
    utterances: list[UtteranceType] = strawberry.field(description="The utterances added now.")
    skipped_sequence_numbers: list[int] = strawberry.field(
        description="Sequence numbers already stored (a retried batch): left as they were."
    )


@strawberry.type
class UtterancePayload:
    utterance: UtteranceType


@strawberry.type
class ImportConversationPayload:
    conversation: ConversationType
    id_map: JSON = strawberry.field(
        description="Each `id` of the document mapped to the id it was stored under."
    )


@strawberry.type
class ConversationExport:
    document: JSON = strawberry.field(
        description="The whole conversation, in the format `importConversation` takes."
    )


Errors = ValidationError | NotFoundError | ConflictError | ForbiddenError
ConversationResult = Annotated[
    ConversationPayload | Errors, result_union("ConversationResult", "ConversationPayload")
]
PurgeConversationResult = Annotated[
    PurgeConversationPayload | Errors,
    result_union("PurgeConversationResult", "PurgeConversationPayload"),
]
AppendUtterancesResult = Annotated[
    AppendUtterancesPayload | Errors,
    result_union("AppendUtterancesResult", "AppendUtterancesPayload"),
]
UtteranceResult = Annotated[
    UtterancePayload | Errors, result_union("UtteranceResult", "UtterancePayload")
]
ImportConversationResult = Annotated[
    ImportConversationPayload | Errors,
    result_union("ImportConversationResult", "ImportConversationPayload"),
]
ConversationExportResult = Annotated[
    ConversationExport | Errors, result_union("ConversationExportResult", "ConversationExport")
]


@strawberry.type
class ConversationMutations:
    @strawberry.mutation(description="A new conversation owned by the acting user.")
    async def create_conversation(
        self, info: strawberry.Info, input: CreateConversationInput
    ) -> ConversationResult:
        async def action(session, actor):
            conversation = await conversations.create_conversation(
                session, actor, fields_from(ConversationFields, input)
            )
            return ConversationPayload(conversation=out(conversation))

        return await run_mutation(info, action)

    @strawberry.mutation(description="Changes the fields sent.")
    async def update_conversation(
        self, info: strawberry.Info, input: UpdateConversationInput
    ) -> ConversationResult:
        async def action(session, actor):
            conversation = await conversations.update_conversation(
                session,
                actor,
                conversations.UpdateConversation(
                    id=parse_id(input.id, "id"),
                    expected_updated_at=input.expected_updated_at,
                    fields=fields_from(ConversationFields, input),
                ),
            )
            return ConversationPayload(conversation=out(conversation))

        return await run_mutation(info, action)

    @strawberry.mutation(
        description="Soft delete: sets `deletedAt`; the conversation refuses edits until restored."
    )
    async def delete_conversation(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> ConversationResult:
        async def action(session, actor):
            conversation = await conversations.delete_conversation(
                session, actor, parse_id(id, "id")
            )
            return ConversationPayload(conversation=out(conversation))

        return await run_mutation(info, action)

    @strawberry.mutation(description="Undoes a soft delete.")
    async def restore_conversation(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> ConversationResult:
        async def action(session, actor):
            conversation = await conversations.restore_conversation(
                session, actor, parse_id(id, "id")
            )
            return ConversationPayload(conversation=out(conversation))

        return await run_mutation(info, action)

    @strawberry.mutation(
        description="Hard delete for good: the conversation, its utterances, graph and edits log. "
        "Export it first (`conversationExport`) to keep a copy."
    )
    async def purge_conversation(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> PurgeConversationResult:
        async def action(session, actor):
            purged = await conversations.purge_conversation(session, actor, parse_id(id, "id"))
            return PurgeConversationPayload(purged_id=strawberry.ID(str(purged)))

        return await run_mutation(info, action)

    @strawberry.mutation(
        description="Appends a batch of utterances. Idempotent on (conversation, sequenceNumber): "
        "a retried batch adds nothing twice."
    )
    async def append_utterances(
        self,
        info: strawberry.Info,
        conversation_id: strawberry.ID,
        utterances: list[UtteranceInput],
    ) -> AppendUtterancesResult:
        async def action(session, actor):
            command = conversations.AppendUtterances(
                conversation_id=parse_id(conversation_id, "conversationId"),
                utterances=tuple(
                    fields_from(UtteranceFields, item, f"utterances[{index}].")
                    for index, item in enumerate(utterances)
                ),
            )
            inserted, skipped = await conversations.append_utterances(session, actor, command)
            conversation = await session.get(
                conversations.Conversation, parse_id(conversation_id, "conversationId")
            )
            return AppendUtterancesPayload(
                conversation=out(conversation),
                utterances=[out(row) for row in inserted],
                skipped_sequence_numbers=skipped,
            )

        return await run_mutation(info, action)

    @strawberry.mutation(
        description="Corrects an utterance: text changes are logged as `utterance` edits, speaker "
        "changes as `speaker_attribution` edits."
    )
    async def update_utterance(
        self,
        info: strawberry.Info,
        input: UpdateUtteranceInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> UtteranceResult:
        async def action(session, actor):
            utterance = await conversations.update_utterance(
                session,
                actor,
                conversations.UpdateUtterance(
                    id=parse_id(input.id, "id"),
                    expected_updated_at=input.expected_updated_at,
                    fields=fields_from(UtteranceFields, input),
                ),
            )
            return UtterancePayload(utterance=out(utterance))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(
        description="Creates a whole conversation (utterances, nodes with their hierarchy and "
        "timeline, relationships, clusters, edits) from one document, in one transaction: the "
        "analysis pipeline's import, and the way back for `conversationExport`. Document ids are "
        "references, stored under fresh ids (see `idMap`) unless `preserveIds`."
    )
    async def import_conversation(
        self, info: strawberry.Info, document: JSON, preserve_ids: bool = False
    ) -> ImportConversationResult:
        async def action(session, actor):
            conversation, mapping = await transfer.import_conversation(
                session, actor, document, preserve_ids=preserve_ids
            )
            return ImportConversationPayload(
                conversation=out(conversation),
                id_map=mapping,  # type: ignore[arg-type]
            )

        return await run_mutation(info, action)


@strawberry.type
class ConversationExportQuery:
    @strawberry.field(
        description="The whole conversation as one JSON document (`importConversation` reads it "
        "back): export before a purge."
    )
    async def conversation_export(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> ConversationExportResult:
        async def action(session, actor):
            return ConversationExport(
                document=await transfer.export_conversation(  # type: ignore[arg-type]
                    session, actor, parse_id(id, "id")
                )
            )

        return await run_mutation(info, action)
