"""The Relay `Node` interface: every object has an `id` that `node(id:)` refetches.

Ids are the rows' UUIDs as text, so the ids in reference fields (`parentId`, `toNodeId`,
`nodeIds`, ...) are the ids of the objects they point to.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import strawberry

from graph.pagination import user_error

T = TypeVar("T")

CREATED_AT = "When the row was created."
UPDATED_AT = (
    "When the row last changed (any change, a canvas move included): its version. Send it back"
    " as `expectedUpdatedAt` to update the object."
)


@strawberry.interface(
    name="Node", description="An object with an id; refetch any object with `node(id:)`."
)
class Node:
    id: strawberry.ID = strawberry.field(description="The row's UUID as text.")


def from_row(kind: type[T], row: Any) -> T:
    """A type's object straight from a result row; the types' fields are the tables' columns."""
    item = kind.__new__(kind)
    item.__dict__.update(row._mapping if hasattr(row, "_mapping") else row)
    return item


def parse_uuid(value: Any, argument: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise user_error(
            f"`{argument}` is not a valid id: {str(value)[:60]!r} is not a UUID."
        ) from None
