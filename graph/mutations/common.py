"""The one place a mutation's transaction begins, commits, or rolls back, and errors become data.

GraphQL reports a failing resolver without raising out of `execute`, so a transaction that commits
"unless an exception escaped" would keep half-done work. Each mutation therefore runs its service
call through `run_mutation`: it commits explicitly when the call returns, and rolls back everything
on any exception. Expected failures come back as members of the payload union; anything else is
re-raised for the GraphQL layer to report without its text.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from graph.errors import (
    ErrorCode,
    Forbidden,
    InvalidInput,
    MutationError,
    UserFacingError,
    camel,
    from_database_error,
    to_graphql,
)
from graph.live import note_actor
from graph.services.common import Actor, check_text, check_unit_interval

T = TypeVar("T")


def parse_id(value: Any, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("Not a valid id.", field=field) from None


def parse_optional_id(value: Any, field: str) -> uuid.UUID | None:
    return None if value is None else parse_id(value, field)


def parse_ids(values: list[Any] | None, field: str) -> list[uuid.UUID]:
    return [parse_id(value, f"{field}[{index}]") for index, value in enumerate(values or [])]


def provided(data: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a strawberry input the client actually sent, keyed by column name."""
    return {
        item.name: getattr(data, item.name)
        for item in fields(data)
        if item.name not in exclude and getattr(data, item.name) is not strawberry.UNSET
    }


def aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{camel(field)} needs a UTC offset.", field=camel(field))
    return value


async def run_mutation(
    info: Any,
    action: Callable[[AsyncSession, Actor], Awaitable[T]],
    *,
    comment: str | None = None,
    confidence: float | None = None,
    anonymous: bool = False,
) -> T | MutationError:
    """Runs `action` in its own transaction and turns expected failures into union members.

    Writes need a signed-in user; `anonymous=True` lets a read through without one."""
    viewer_id = info.context.viewer_id
    try:
        if viewer_id is None and not anonymous:
            raise Forbidden("Sign in to make changes.")
        check_text(comment, "comment")
        check_unit_interval(confidence, "confidence")
    except UserFacingError as error:
        return to_graphql(error)
    # An anonymous read (the only way to get here without a viewer) never uses the actor's id.
    actor = Actor(user_id=viewer_id or "", comment=comment, confidence=confidence)
    async with write_session(info) as session:
        try:
            result = await action(session, actor)
            await note_actor(session, actor.user_id, info.field_name)
            await session.commit()
        except UserFacingError as error:
            await session.rollback()
            return to_graphql(error)
        except DBAPIError as error:
            await session.rollback()
            mapped = from_database_error(error)
            if mapped is None:
                raise
            return to_graphql(mapped)
        except BaseException:
            await session.rollback()
            raise
    return result


def write_session(info: Any) -> Any:
    """A session of its own for the mutation, from the request context's factory."""
    return info.context.session_factory()


__all__ = [
    "ErrorCode",
    "aware",
    "parse_id",
    "parse_ids",
    "parse_optional_id",
    "provided",
    "run_mutation",
]
