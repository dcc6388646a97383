"""Conversations and their utterances: create, update, soft delete, restore, purge, append."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CONVERSATION_TYPES, VISIBILITIES, Conversation, Utterance
from graph.services import edits
from graph.services.common import (
    Actor,
    check_json,
    check_text,
    check_unit_interval,
    check_version,
    lock_conversation,
    lock_conversation_of,
    lock_rows,
    refuse_cleared,
    word_count,
)
from graph.services.errors import ErrorCode, InvalidInput, camel
from graph.services.fields import UNSET, Fields, Unset

MAX_BATCH = 5_000
INSERT_ROWS = 1_000


@dataclass(frozen=True)
class ConversationFields(Fields):
    """A conversation's writable columns (see `graph.services.fields`)."""

    conversation_name: str | Unset | None = UNSET
    conversation_type: str | Unset | None = UNSET
    source_type: str | Unset | None = UNSET
    source_metadata: Any | Unset | None = UNSET
    participant_count: int | Unset | None = UNSET
    participants: list[dict[str, Any]] | Unset | None = UNSET
    started_at: datetime | Unset | None = UNSET
    ended_at: datetime | Unset | None = UNSET
    duration_seconds: int | Unset | None = UNSET
    goals: list[dict[str, Any]] | Unset | None = UNSET
    goal_progress: Any | Unset | None = UNSET
    gcs_path: str | Unset | None = UNSET
    visibility: str | Unset | None = UNSET
    shared_with: list[str] | Unset | None = UNSET


@dataclass(frozen=True)
class UpdateConversation:
    id: uuid.UUID
    expected_updated_at: datetime | None
    fields: ConversationFields


def _check_conversation(values: dict[str, Any]) -> None:
    for name in ("conversation_name", "source_type"):
        if name in values:
            check_text(values[name], camel(name), required=True)
    if "gcs_path" in values:
        check_text(values["gcs_path"], "gcsPath")
    kind = values.get("conversation_type")
    if "conversation_type" in values and kind not in CONVERSATION_TYPES:
        raise InvalidInput(
            f"conversationType must be one of {', '.join(CONVERSATION_TYPES)}.",
            field="conversationType",
        )
    if "visibility" in values and values["visibility"] not in VISIBILITIES:
        raise InvalidInput(
            f"visibility must be one of {', '.join(VISIBILITIES)}.", field="visibility"
        )
    if "started_at" in values and values["started_at"] is None:
        raise InvalidInput("startedAt is required.", field="startedAt", code=ErrorCode.REQUIRED)
    for name in ("source_metadata", "participants", "goals", "goal_progress"):
        check_json(values.get(name), camel(name))
    for name in ("participant_count", "duration_seconds"):
        if (values.get(name) or 0) < 0:
            raise InvalidInput(
                f"{camel(name)} must not be negative.",
                field=camel(name),
                code=ErrorCode.OUT_OF_RANGE,
            )


async def create_conversation(
    session: AsyncSession, actor: Actor, fields: ConversationFields
) -> Conversation:
    values = fields.provided()
    refuse_cleared(values, Conversation)
    values = {"started_at": datetime.now(UTC), "visibility": "private", **values}
    _check_conversation(values)
    conversation = Conversation(
        id=uuid.uuid4(),
        owner_id=actor.user_id,
        total_utterances=0,
        total_words=0,
        total_nodes=0,
        **values,
    )
    session.add(conversation)
    await session.flush()
    await session.refresh(conversation)
    return conversation


async def update_conversation(
    session: AsyncSession, actor: Actor, command: UpdateConversation
) -> Conversation:
    values = command.fields.provided()
    refuse_cleared(values, Conversation)
    _check_conversation(values)
    conversation = await lock_conversation(session, command.id, actor.user_id, field="id")
    check_version(conversation, command.expected_updated_at, "conversation")
    for key, value in values.items():
        setattr(conversation, key, value)
    await session.flush()
    await session.refresh(conversation)
    return conversation


async def delete_conversation(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> Conversation:
    """Soft delete: the conversation disappears from lists and refuses writes until restored."""
    conversation = await lock_conversation(session, conversation_id, actor.user_id, field="id")
    conversation.deleted_at = datetime.now(UTC)
    await session.flush()
    await session.refresh(conversation)
    return conversation


async def restore_conversation(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await lock_conversation(
        session, conversation_id, actor.user_id, field="id", include_deleted=True
    )
    if conversation.deleted_at is not None:
        conversation.deleted_at = None
        await session.flush()
        await session.refresh(conversation)
    return conversation


async def purge_conversation(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> uuid.UUID:
    """Hard delete: the conversation and everything in it (edits log included) are gone for good."""
    conversation = await lock_conversation(
        session, conversation_id, actor.user_id, field="id", include_deleted=True
    )
    await session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    session.expunge(conversation)
    return conversation_id


# Utterances -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UtteranceFields(Fields):
    """An utterance's writable columns (see `graph.services.fields`)."""

    sequence_number: int | Unset | None = UNSET
    text: str | Unset | None = UNSET
    speaker_id: str | Unset | None = UNSET
    speaker_name: str | Unset | None = UNSET
    speaker_role: str | Unset | None = UNSET
    text_cleaned: str | Unset | None = UNSET
    timestamp_start: float | Unset | None = UNSET
    timestamp_end: float | Unset | None = UNSET
    duration_seconds: float | Unset | None = UNSET
    chunk_id: uuid.UUID | Unset | None = UNSET
    thread_id: uuid.UUID | Unset | None = UNSET
    confidence_score: float | Unset | None = UNSET
    language: str | Unset | None = UNSET
    emotion: str | Unset | None = UNSET
    energy_level: float | Unset | None = UNSET
    platform_metadata: Any | Unset | None = UNSET


# What a correction of a stored utterance may change: the transcript line and who said it.
CORRECTABLE = ("text", "text_cleaned", "speaker_id", "speaker_name", "speaker_role")
APPEND_REQUIRED = ("sequence_number", "text", "speaker_id")


@dataclass(frozen=True)
class AppendUtterances:
    conversation_id: uuid.UUID
    utterances: tuple[UtteranceFields, ...]


@dataclass(frozen=True)
class UpdateUtterance:
    """Corrects the `CORRECTABLE` fields of an utterance."""

    id: uuid.UUID
    expected_updated_at: datetime | None
    fields: UtteranceFields


def _check_utterance(values: dict[str, Any], prefix: str) -> None:
    for name in ("text", "speaker_id"):
        if name in values:
            check_text(values[name], prefix + camel(name), required=True)
    for name in ("text_cleaned", "speaker_name", "speaker_role", "language", "emotion"):
        if name in values:
            check_text(values[name], prefix + camel(name))
    if (values.get("sequence_number") or 0) < 0:
        raise InvalidInput(
            "sequenceNumber must not be negative.",
            field=prefix + "sequenceNumber",
            code=ErrorCode.OUT_OF_RANGE,
        )
    start, end = values.get("timestamp_start"), values.get("timestamp_end")
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            "timestampEnd must not be before timestampStart.", field=prefix + "timestampEnd"
        )
    check_unit_interval(values.get("confidence_score"), prefix + "confidenceScore")
    check_json(values.get("platform_metadata"), prefix + "platformMetadata")


async def append_utterances(
    session: AsyncSession, actor: Actor, command: AppendUtterances
) -> tuple[list[Utterance], list[int]]:
    """Inserts the batch, skipping sequence numbers already stored: a retry adds nothing twice.

    Returns the utterances inserted and the sequence numbers skipped.
    """
    conversation_id = command.conversation_id
    items = [utterance.provided() for utterance in command.utterances]
    if not items:
        raise InvalidInput("Send at least one utterance.", field="utterances")
    if len(items) > MAX_BATCH:
        raise InvalidInput(
            f"Send at most {MAX_BATCH} utterances per call.",
            field="utterances",
            code=ErrorCode.OUT_OF_RANGE,
        )
    seen: set[int] = set()
    for index, item in enumerate(items):
        prefix = f"utterances[{index}]."
        for name in APPEND_REQUIRED:
            if item.get(name) is None:
                raise InvalidInput(
                    f"{camel(name)} is required.",
                    field=prefix + camel(name),
                    code=ErrorCode.REQUIRED,
                )
        refuse_cleared(item, Utterance, prefix)
        _check_utterance(item, prefix)
        if item["sequence_number"] in seen:
            raise InvalidInput(
                "This batch has two utterances with the same sequence number.",
                field=prefix + "sequenceNumber",
                code=ErrorCode.DUPLICATE,
            )
        seen.add(item["sequence_number"])
    conversation = await lock_conversation(session, conversation_id, actor.user_id)
    rows = [{"id": uuid.uuid4(), "conversation_id": conversation.id, **item} for item in items]
    inserted: list[Utterance] = []
    # A statement per slice: one multi-row INSERT of 5,000 full rows would need more bind
    # parameters than PostgreSQL's protocol carries (32,767).
    for start in range(0, len(rows), INSERT_ROWS):
        statement = (
            insert(Utterance)
            .values(rows[start : start + INSERT_ROWS])
            .on_conflict_do_nothing(index_elements=["conversation_id", "sequence_number"])
            .returning(Utterance)
        )
        result = await session.execute(statement, execution_options={"populate_existing": True})
        inserted.extend(result.scalars())
    inserted.sort(key=lambda utterance: utterance.sequence_number)
    added = {utterance.sequence_number for utterance in inserted}
    conversation.total_utterances = (conversation.total_utterances or 0) + len(inserted)
    conversation.total_words = (conversation.total_words or 0) + sum(
        word_count(utterance.text) for utterance in inserted
    )
    await session.flush()
    return inserted, sorted(seen - added)


SPEAKER_FIELDS = ("speaker_id", "speaker_name", "speaker_role")


async def update_utterance(
    session: AsyncSession, actor: Actor, command: UpdateUtterance
) -> Utterance:
    """Corrects a transcript line; text edits log as `utterance`, speaker fixes as
    `speaker_attribution`."""
    utterance_id, expected_updated_at = command.id, command.expected_updated_at
    values = command.fields.provided()
    for name in values.keys() - set(CORRECTABLE):
        raise InvalidInput(f"{camel(name)} cannot be corrected.", field=camel(name))
    refuse_cleared(values, Utterance)
    _check_utterance(values, "")
    conversation = await lock_conversation_of(
        session, Utterance, utterance_id, actor.user_id, field="id", missing="No such utterance."
    )
    locked = await lock_rows(session, Utterance, conversation, [utterance_id], "id", "utterance")
    utterance: Utterance = locked[utterance_id]
    check_version(utterance, expected_updated_at, "utterance")
    for key, value in values.items():
        old = getattr(utterance, key)
        if old == value:
            continue
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="speaker_attribution" if key in SPEAKER_FIELDS else "utterance",
            target_id=utterance.id,
            field_name=key,
            old=old,
            new=value,
        )
        if key == "text":
            conversation.total_words = (
                (conversation.total_words or 0) - word_count(old) + word_count(value)
            )
        setattr(utterance, key, value)
    await session.flush()
    await session.refresh(utterance)
    return utterance


async def count_words(session: AsyncSession, conversation_id: uuid.UUID) -> tuple[int, int]:
    texts = (
        await session.execute(
            select(Utterance.text).where(Utterance.conversation_id == conversation_id)
        )
    ).scalars()
    materialised = list(texts)
    return len(materialised), sum(word_count(text) for text in materialised)
