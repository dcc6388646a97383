"""Pieces every write service shares: locking, authorisation, versions, snapshots, edit context."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Conversation
from graph.permissions import visible_conversation_ids, visible_to, writable_by
from graph.services.errors import (
    ErrorCode,
    Forbidden,
    InvalidInput,
    NotFound,
    StaleVersion,
    camel,
)
from graph.services.hierarchy import among

MAX_TEXT = 100_000


@dataclass(frozen=True)
class Actor:
    """Who is writing, and the optional note the client attaches to the edits it causes."""

    user_id: str
    comment: str | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        check_text(self.comment, "comment")
        check_unit_interval(self.confidence, "confidence")


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


def refuse_cleared(values: dict[str, Any], model: Any, prefix: str = "") -> None:
    """A null sent for a column the database never leaves empty (NOT NULL in `model`) is refused
    with REQUIRED, naming the field; omit a field to leave it as it is."""
    columns = model.__table__.columns
    for key, value in values.items():
        if value is None and key in columns and not columns[key].nullable:
            raise InvalidInput(
                f"{camel(key)} cannot be cleared.",
                field=prefix + camel(key),
                code=ErrorCode.REQUIRED,
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


async def lock_conversation(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    viewer_id: str,
    *,
    field: str = "conversationId",
    include_deleted: bool = False,
    missing: str = "No such conversation.",
) -> Conversation:
    """The conversation, locked for this transaction (`FOR NO KEY UPDATE`), once the viewer may
    write to it.

    A conversation the viewer cannot read is reported as not found, so that its existence does not
    leak; one the viewer reads but does not own as forbidden.
    """
    return await _lock_writable(
        session,
        conversation_id,
        viewer_id,
        field=field,
        include_deleted=include_deleted,
        missing=missing,
    )


async def lock_conversation_of(
    session: AsyncSession,
    model: Any,
    row_id: uuid.UUID,
    viewer_id: str,
    *,
    field: str = "id",
    missing: str,
) -> Conversation:
    """The conversation holding row `row_id` of `model` (a node, utterance, relationship or
    cluster), found and locked in one statement as by `lock_conversation`. The row itself is
    not locked: lock it next (`lock_rows`), conversation first."""
    holder = select(model.conversation_id).where(model.id == row_id).scalar_subquery()
    return await _lock_writable(
        session, holder, viewer_id, field=field, include_deleted=False, missing=missing
    )


async def _lock_writable(
    session: AsyncSession,
    conversation_id: uuid.UUID | ColumnElement[uuid.UUID],
    viewer_id: str,
    *,
    field: str,
    include_deleted: bool,
    missing: str,
) -> Conversation:
    """Locks the conversation only if the viewer may change it: the permission is part of the
    locking statement (security, graph/permissions.py). Naming a conversation of someone else's,
    or a row in one, therefore never makes its owner's writes wait, and costs the same statements
    whether it is invisible or missing."""
    conversation = (
        await session.execute(
            select(Conversation)
            .where(
                Conversation.id == conversation_id,
                writable_by(viewer_id, include_deleted=include_deleted),
            )
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if conversation is not None:
        return conversation
    # Not the viewer's to change: forbidden if they can read it, otherwise the not-found a missing
    # id gets, after the same (unlocking) statement. A soft-deleted conversation exists for its
    # owner only, when asked for.
    readable = await session.scalar(
        select(Conversation.id).where(
            Conversation.id == conversation_id,
            visible_to(viewer_id, include_deleted=include_deleted),
        )
    )
    if readable is None:
        raise NotFound(missing, field=field)
    raise Forbidden("Only the owner may change this conversation.")


async def lock_rows(
    session: AsyncSession,
    model: Any,
    conversation: Conversation,
    ids: list[uuid.UUID],
    field: str,
    what: str,
) -> dict[uuid.UUID, Any]:
    """The rows of `model` with these ids, locked `FOR UPDATE` in id order (so two writers never
    wait for each other in a circle), once each is a row of `conversation`, which the caller has
    locked as its owner. For a list input, `field` holds `{index}` (`nodeIds[{index}]`) and errors
    name the offending element.

    Only the conversation's own rows are ever locked. An id that is not one of them is refused as
    belonging to another conversation when the writer may read that one, and otherwise exactly
    as an id that exists nowhere, after the same statements (security, graph/permissions.py)."""
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(model)
            .where(among(model.id, ids), model.conversation_id == conversation.id)
            .order_by(model.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalars()
    found = {row.id: row for row in rows}
    absent = [(index, row_id) for index, row_id in enumerate(ids) if row_id not in found]
    if not absent:
        return found
    readable_elsewhere = set(
        (
            await session.execute(
                select(model.id).where(
                    among(model.id, [row_id for _, row_id in absent]),
                    model.conversation_id.in_(visible_conversation_ids(conversation.owner_id)),
                )
            )
        ).scalars()
    )
    index, row_id = absent[0]
    path = field.format(index=index) if "{index}" in field else field
    if row_id in readable_elsewhere:
        raise InvalidInput(
            f"That {what} belongs to another conversation.",
            field=path,
            code=ErrorCode.WRONG_CONVERSATION,
        )
    raise NotFound(f"No such {what}.", field=path)


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
