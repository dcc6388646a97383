"""Conversations and their utterances: create, update, soft delete, restore, purge, append."""

from __future__ import annotations

import functools
import uuid
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
    word_count,
)
from graph.services.errors import ErrorCode, InvalidInput

MAX_BATCH = 5_000
INSERT_ROWS = 1_000
CONVERSATION_FIELDS = (
    "conversation_name",
    "conversation_type",
    "source_type",
    "source_metadata",
    "participant_count",
    "participants",
    "started_at",
    "ended_at",
    "duration_seconds",
    "goals",
    "goal_progress",
    "gcs_path",
    "visibility",
    "shared_with",
)


def _check_conversation(values: dict[str, Any]) -> None:
    for name in ("conversation_name", "source_type"):
        if name in values:
            check_text(values[name], _field(name), required=True)
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
        check_json(values.get(name), _field(name))
    for name in ("participant_count", "duration_seconds"):
        if (values.get(name) or 0) < 0:
            raise InvalidInput(
                f"{_field(name)} must not be negative.",
                field=_field(name),
                code=ErrorCode.OUT_OF_RANGE,
            )


@functools.cache  # column names only: a bounded set
def _field(name: str) -> str:
    from graph.services.errors import camel

    return camel(name)


async def create_conversation(
    session: AsyncSession, actor: Actor, values: dict[str, Any]
) -> Conversation:
    values = {"started_at": datetime.now(UTC), "visibility": "private", **values}
    _check_conversation(values)
    conversation = Conversation(
        id=uuid.uuid4(),
        owner_id=actor.user_id,
        total_utterances=0,
        total_words=0,
        total_nodes=0,
        **{key: values[key] for key in CONVERSATION_FIELDS if key in values},
    )
    session.add(conversation)
    await session.flush()
    await session.refresh(conversation)
    return conversation


async def update_conversation(
    session: AsyncSession,
    actor: Actor,
    conversation_id: uuid.UUID,
    expected_updated_at: datetime | None,
    values: dict[str, Any],
) -> Conversation:
    _check_conversation(values)
    conversation = await lock_conversation(session, conversation_id, actor.user_id, field="id")
    check_version(conversation, expected_updated_at, "conversation")
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

UTTERANCE_FIELDS = (
    "text",
    "text_cleaned",
    "speaker_id",
    "speaker_name",
    "speaker_role",
    "sequence_number",
    "timestamp_start",
    "timestamp_end",
    "duration_seconds",
    "chunk_id",
    "thread_id",
    "confidence_score",
    "language",
    "emotion",
    "energy_level",
    "platform_metadata",
)


def _check_utterance(values: dict[str, Any], prefix: str) -> None:
    for name in ("text", "speaker_id"):
        if name in values:
            check_text(values[name], prefix + _field(name), required=True)
    for name in ("text_cleaned", "speaker_name", "speaker_role", "language", "emotion"):
        if name in values:
            check_text(values[name], prefix + _field(name))
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
    session: AsyncSession,
    actor: Actor,
    conversation_id: uuid.UUID,
    items: list[dict[str, Any]],
) -> tuple[list[Utterance], list[int]]:
    """Inserts the batch, skipping sequence numbers already stored: a retry adds nothing twice.

    Returns the utterances inserted and the sequence numbers skipped.
    """
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
        _check_utterance(item, prefix)
        if item["sequence_number"] in seen:
            raise InvalidInput(
                "This batch has two utterances with the same sequence number.",
                field=prefix + "sequenceNumber",
                code=ErrorCode.DUPLICATE,
            )
        seen.add(item["sequence_number"])
    conversation = await lock_conversation(session, conversation_id, actor.user_id)
    rows = [
        {"id": uuid.uuid4(), "conversation_id": conversation.id, **_pick(item)} for item in items
    ]
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


def _pick(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in UTTERANCE_FIELDS if key in item}


SPEAKER_FIELDS = ("speaker_id", "speaker_name", "speaker_role")


async def update_utterance(
    session: AsyncSession,
    actor: Actor,
    utterance_id: uuid.UUID,
    expected_updated_at: datetime | None,
    values: dict[str, Any],
) -> Utterance:
    """Corrects a transcript line; text edits log as `utterance`, speaker fixes as
    `speaker_attribution`."""
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
