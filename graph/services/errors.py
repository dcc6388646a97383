"""The domain's failures: what a write can refuse, with no knowledge of any API.

Services raise these; the GraphQL layer turns each into a member of a mutation's payload union in
one place (`graph.errors.to_graphql`). `field` is the path of the offending input, in the names the
client sent (`moves[2].canvasWidth`), so that a caller can point at it.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any


class ErrorCode(Enum):
    INVALID = "invalid"
    REQUIRED = "required"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    CYCLE = "cycle"
    WRONG_CONVERSATION = "wrong_conversation"
    NOT_FOUND = "not_found"
    STALE = "stale"
    FORBIDDEN = "forbidden"


class DomainError(Exception):
    """A failure the caller caused and can fix; its message is shown to people as is."""

    code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, *, field: str | None = None, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    code = ErrorCode.INVALID


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class StaleVersion(DomainError):
    """The caller's expected version is not the row's; carries what the row holds now."""

    code = ErrorCode.STALE

    def __init__(
        self, message: str, *, current: dict[str, Any], current_updated_at: datetime | None
    ):
        super().__init__(message, field="expectedUpdatedAt")
        self.current = current
        self.current_updated_at = current_updated_at


def camel(name: str) -> str:
    """A column's name as clients spell it (`node_name` -> `nodeName`), for error paths."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
