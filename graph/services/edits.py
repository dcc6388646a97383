"""The edits log: every human correction, kept as training data, and its export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Conversation, Edit
from graph.permissions import owned_by, visible_to
from graph.services.common import Actor, as_log_text, check_text
from graph.services.errors import ErrorCode, InvalidInput, NotFound

# Canvas layout is logged (field `canvas`, one row per node per call) but is not a correction of
# the analysis, so the training export leaves it out.
CANVAS_FIELD = "canvas"
MAX_EXPORT = 10_000


def record(
    session: AsyncSession,
    actor: Actor,
    *,
    conversation_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    field_name: str,
    old: Any,
    new: Any,
    edit_type: str = "correction",
) -> Edit:
    edit = Edit(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        target_type=target_type,
        target_id=target_id,
        field_name=field_name,
        old_value=as_log_text(old),
        new_value=as_log_text(new),
        edit_type=edit_type,
        user_id=actor.user_id,
        user_comment=actor.comment,
        user_confidence=1.0 if actor.confidence is None else actor.confidence,
    )
    session.add(edit)
    return edit


def record_changes(
    session: AsyncSession,
    actor: Actor,
    *,
    conversation_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    changes: dict[str, tuple[Any, Any]],
) -> None:
    """One `correction` row per field whose value really changed."""
    for field_name, (old, new) in changes.items():
        if old != new:
            record(
                session,
                actor,
                conversation_id=conversation_id,
                target_type=target_type,
                target_id=target_id,
                field_name=field_name,
                old=old,
                new=new,
            )


MAX_PAGE = 1_000


async def list_edits(
    session: AsyncSession,
    viewer_id: str | None,
    conversation_id: uuid.UUID,
    *,
    target_id: uuid.UUID | None = None,
    target_type: str | None = None,
    first: int = 100,
) -> list[Edit]:
    """A conversation's edits (or one target's), newest first."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(
            f"first must be between 1 and {MAX_PAGE}.", field="first", code=ErrorCode.OUT_OF_RANGE
        )
    readable = await session.scalar(
        select(Conversation.id).where(Conversation.id == conversation_id, visible_to(viewer_id))
    )
    if readable is None:
        raise NotFound("No such conversation.", field="conversationId")
    statement = select(Edit).where(Edit.conversation_id == conversation_id)
    if target_id is not None:
        statement = statement.where(Edit.target_id == target_id)
    if target_type is not None:
        statement = statement.where(Edit.target_type == target_type)
    statement = statement.order_by(Edit.created_at.desc(), Edit.id.desc()).limit(first)
    return list((await session.execute(statement)).scalars())


async def export_for_training(
    session: AsyncSession, actor: Actor, dataset_id: str, limit: int
) -> list[Edit]:
    """Marks up to `limit` unexported edits as exported to `dataset_id`; returns them, oldest first.

    Only edits of conversations the acting user owns: the log holds the text of private
    conversations, and exporting is a write (security, graph/permissions.py).

    `FOR UPDATE SKIP LOCKED` lets concurrent exports each take different rows instead of waiting for
    or duplicating each other's.
    """
    check_text(dataset_id, "datasetId", required=True)
    if not 1 <= limit <= MAX_EXPORT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_EXPORT}.", field="limit", code=ErrorCode.OUT_OF_RANGE
        )
    picked = (
        select(Edit.id)
        .where(Edit.exported_for_training == false(), Edit.field_name != CANVAS_FIELD)
        .where(Edit.conversation_id.in_(select(Conversation.id).where(owned_by(actor.user_id))))
        .order_by(Edit.created_at, Edit.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    rows = (
        await session.execute(
            update(Edit)
            .where(Edit.id.in_(select(picked.c.id)))
            .values(exported_for_training=True, training_dataset_id=dataset_id)
            .returning(Edit)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalars()
    return sorted(rows, key=lambda edit: (edit.created_at, str(edit.id)))
