"""Pieces every write service shares: locking, authorisation, versions, snapshots, edit context."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Conversation
from graph.errors import ErrorCode, Forbidden, InvalidInput, NotFound, StaleVersion
from graph.permissions import can_read, can_write

MAX_TEXT = 100_000


@dataclass(frozen=True)
class Actor:
    """Who is writing, and the optional note the client attaches to the edits it causes."""

    user_id: str
    comment: str | None = None
    confidence: float | None = None


def word_count(text: str | None) -> int:
    """The one definition of a word the `total_words` counter uses."""
    return len(text.split()) if text else 0


def jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    return value


def snapshot(row: Any, exclude: tuple[str, ...] = ("tsv_search",)) -> dict[str, Any]:
    """Every column of an ORM row as JSON-ready values, keyed by camelCase GraphQL names."""
    from graph.errors import camel

    mapper = inspect(row).mapper
    return {
        camel(column.key): jsonable(getattr(row, column.key))
        for column in mapper.column_attrs
        if column.key not in exclude
    }


def as_log_text(value: Any) -> str | None:
    """How a value is kept in `edits_log.old_value/new_value`: text as is, the rest as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), sort_keys=True)


def check_text(value: str | None, field: str, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise InvalidInput(f"{field} is required.", field=field, code=ErrorCode.REQUIRED)
        return
    if required and not value.strip():
        raise InvalidInput(f"{field} must not be empty.", field=field, code=ErrorCode.REQUIRED)
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters.", field=field)
    if len(value) > MAX_TEXT:
        raise InvalidInput(
            f"{field} is longer than {MAX_TEXT} characters.",
            field=field,
            code=ErrorCode.OUT_OF_RANGE,
        )


def check_json(value: Any, field: str) -> None:
    """JSON that PostgreSQL's jsonb can store: it holds no NUL character in a string or key."""
    pending = [value]
    while pending:  # a loop, not recursion: a client decides how deep the value nests
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(f"{field} must not contain NUL characters.", field=field)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def check_unit_interval(value: float | None, field: str) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InvalidInput(
            f"{field} must be between 0 and 1.", field=field, code=ErrorCode.OUT_OF_RANGE
        )


async def readable_by_owner_of(
    session: AsyncSession, other_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    """Whether the (locked, owned) conversation's owner may read `other_id`.

    A reference to a row of a conversation the writer cannot read must look exactly like a
    reference to nothing (security, graph/permissions.py)."""
    owner_id = await session.scalar(
        select(Conversation.owner_id).where(Conversation.id == conversation_id)
    )
    other = await session.get(Conversation, other_id)
    return other is not None and can_read(other, owner_id)


async def lock_conversation(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    viewer_id: str,
    *,
    field: str = "conversationId",
    include_deleted: bool = False,
    missing: str = "No such conversation.",
) -> Conversation:
    """The conversation, locked for this transaction, once the viewer may write to it.

    A conversation the viewer cannot read is reported as not found, so that its existence does not
    leak; one the viewer reads but does not own as forbidden.
    """
    conversation = (
        await session.execute(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    # security (graph/permissions.py): invisible is indistinguishable from missing; only the
    # owner writes; a soft-deleted conversation exists for its owner only, when asked for.
    if conversation is None or not can_read(
        conversation, viewer_id, include_deleted=include_deleted
    ):
        raise NotFound(missing, field=field)
    if not can_write(conversation, viewer_id):
        raise Forbidden("Only the owner may change this conversation.")
    return conversation


def check_version(row: Any, expected: datetime | None, what: str) -> None:
    """Optimistic concurrency: the row (already locked) must still be the version the client saw."""
    if expected is None:
        return
    current = row.updated_at
    if current is None or current != expected:
        raise StaleVersion(
            f"This {what} was changed by someone else since you loaded it.",
            current=snapshot(row),
            current_updated_at=current,
        )
