"""Who may see and change a conversation: the one definition, as SQL and as Python.

- The owner reads and writes; nobody else writes.
- Users listed in `shared_with` read a conversation whose visibility is `shared`.
- Anyone, anonymous included, reads a `public` one.
- A soft-deleted conversation is seen by its owner only, and only when asked for explicitly.

Everything else is invisible, and an invisible conversation is reported exactly like one that does
not exist: every query that reads a conversation or a row under it filters with `visible_to`, so
lists, counts and nested traversals never include what the viewer may not see.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    and_,
    any_,
    false,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.util import ClauseAdapter

from db.models import Conversation


# Building the expression was a fifth of a small query's Python time; it depends on these two
# values alone, and SQLAlchemy expressions are immutable, so statements can share one.
@functools.lru_cache(maxsize=1024)
def visible_to(
    viewer_id: str | BindParameter[str] | None, *, include_deleted: bool = False
) -> ColumnElement[bool]:
    """SQL: the conversations `viewer_id` (None: anonymous) may read. The viewer may be a bound
    parameter, for a statement built once and run for every viewer (graph/search_sql.py)."""
    public = Conversation.visibility == "public"
    if viewer_id is None:
        readable: ColumnElement[bool] = public
    else:
        viewer = viewer_id if isinstance(viewer_id, BindParameter) else literal(viewer_id)
        readable = or_(
            Conversation.owner_id == viewer_id,
            public,
            and_(Conversation.visibility == "shared", viewer == any_(Conversation.shared_with)),
        )
    live: ColumnElement[bool] = Conversation.deleted_at.is_(None)
    if include_deleted and viewer_id is not None:
        live = or_(live, Conversation.owner_id == viewer_id)
    return and_(readable, live)


@functools.lru_cache(maxsize=1024)  # as `visible_to`
def visible_conversation_ids(
    viewer_id: str | None, *, include_deleted: bool = False
) -> Select[uuid.UUID]:
    """SQL: the ids of the conversations the viewer may read, for `x.conversation_id IN (...)`."""
    return select(Conversation.id).where(visible_to(viewer_id, include_deleted=include_deleted))


def visible_rows(viewer_id: str | None, table: FromClause) -> ColumnElement[bool]:
    """SQL: the rows of `table` (or of an alias of one) the viewer may read: those of
    conversations visible to them.

    security: the owner's soft-deleted conversations pass here, so that a conversation the
    owner asked for explicitly can be traversed; the root fields leave them out unless asked
    (`ConversationFilter.include_deleted`, `graph.relations.ById`). Nobody else ever sees them.
    """
    if "conversation_id" not in table.c:  # the conversations table, or an alias of it
        return ClauseAdapter(table).traverse(visible_to(viewer_id, include_deleted=True))
    return table.c.conversation_id.in_(visible_conversation_ids(viewer_id, include_deleted=True))


def found_live(row: Any, *, include_deleted: bool = False) -> Any:
    """Python twin of the root fields' rule on soft-deleted conversations (`visible_rows` lets
    them through for their owner): such a row is found only when asked for explicitly.

    security: `include_deleted` is honoured for the owner alone; the loaders never return
    another user's soft-deleted conversation."""
    if row is None or getattr(row, "deleted_at", None) is None or include_deleted:
        return row
    return None


def owned_by(viewer_id: str | None) -> ColumnElement[bool]:
    """SQL: the conversations the viewer may change."""
    return Conversation.owner_id == viewer_id if viewer_id is not None else false()


def writable_by(viewer_id: str | None, *, include_deleted: bool = False) -> ColumnElement[bool]:
    """SQL: the conversations the viewer may change now: owned, and visible to the viewer (so a
    soft-deleted one only when `include_deleted`). A write's locking statement filters on it, so
    that a row the viewer may not change is never locked (graph/services/common.py)."""
    return and_(owned_by(viewer_id), visible_to(viewer_id, include_deleted=include_deleted))


def can_read(conversation: Any, viewer_id: str | None, *, include_deleted: bool = False) -> bool:
    """Python twin of `visible_to` for a loaded row."""
    owner = viewer_id is not None and conversation.owner_id == viewer_id
    if conversation.deleted_at is not None and not (include_deleted and owner):
        return False
    if owner or conversation.visibility == "public":
        return True
    return (
        viewer_id is not None
        and conversation.visibility == "shared"
        and viewer_id in (conversation.shared_with or ())
    )


def can_write(conversation: Any, viewer_id: str | None) -> bool:
    return viewer_id is not None and conversation.owner_id == viewer_id


# -- columns only the owner reads -----------------------------------------------------------------

OWNER_ONLY = "lct_owner_only"


def owner_only(column: str, **field_options: Any) -> Any:
    """A field holding `column` for the conversation's owner and null for anyone else.

    security: who else may read a conversation (`shared_with`) is its owner's business only.
    """
    import strawberry

    # unannotated: the field's type is the one its class declares
    def resolve(root, info: strawberry.Info):
        viewer_id = info.context.viewer_id
        if viewer_id is None or viewer_id != root.owner_id:
            return None
        return root.__dict__.get(column)

    return strawberry.field(resolver=resolve, metadata={OWNER_ONLY: column}, **field_options)


def owner_only_sql(source: Any, column: str, viewer_id: str | None) -> ColumnElement[Any]:
    """SQL: `column` of a conversations row source when the viewer owns it, else null."""
    from sqlalchemy import case, null

    if viewer_id is None:
        return null()
    return case((source.c.owner_id == literal(viewer_id), source.c[column]), else_=null())
