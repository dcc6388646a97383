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
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any, TypeVar

import strawberry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from graph.errors import MutationError, to_graphql
from graph.live import note_actor
from graph.masking import commit
from graph.services.common import Actor
from graph.services.database_errors import from_database_error
from graph.services.errors import DomainError, ErrorCode, Forbidden, InvalidInput

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
    """The fields of a strawberry input the client actually sent, keyed by column name, as the
    database stores them (see `stored`)."""
    return {
        item.name: stored(getattr(data, item.name))
        for item in fields(data)
        if item.name not in exclude and getattr(data, item.name) is not strawberry.UNSET
    }


def stored(value: Any) -> Any:
    """An input value as a column holds it: the one place enum members become the database's
    lower-case text and typed input objects (`SpeakerInfoInput`, ...) become the JSONB objects
    their output types are read from, keyed by snake_case name with unsent fields left out."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [stored(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return provided(value)
    return value


def inherit_descriptions(input_type: type, output_type: type) -> None:
    """Gives an input type's fields that have no description of their own the description of the
    output type's field of the same name, so that each field's meaning is written once."""
    described = {
        field.python_name: field.description
        for field in output_type.__strawberry_definition__.fields  # type: ignore[attr-defined]
    }
    for field in input_type.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if field.description is None and described.get(field.python_name):
            field.description = described[field.python_name]


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
        # An anonymous read (the only way to get here without a viewer) never uses the actor's id.
        actor = Actor(user_id=viewer_id or "", comment=comment, confidence=confidence)
    except DomainError as error:
        return to_graphql(error)
    async with write_session(info) as session:
        try:
            result = await action(session, actor)
            await note_actor(session, actor.user_id, info.field_name)
            await commit(session)
        except DomainError as error:
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


def result_union(name: str, payload: str) -> Any:
    """A mutation's result union: its payload type and the error types, documented once."""
    return strawberry.union(
        name,
        description=f"`{payload}` when it worked; otherwise an error type, every one of which"
        " implements `UserError`. Select `... on UserError { message code }` next to the types"
        " you handle: an error type added to this union later implements it too, so a client"
        " built today still reads its message.",
    )


def write_session(info: Any) -> Any:
    """A session of its own for the mutation, from the request context's factory."""
    return info.context.session_factory()


__all__ = [
    "ErrorCode",
    "inherit_descriptions",
    "parse_id",
    "parse_ids",
    "parse_optional_id",
    "provided",
    "result_union",
    "run_mutation",
    "stored",
]
