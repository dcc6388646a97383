"""Expected mutation failures: domain exceptions, their GraphQL types, and the PostgreSQL mapping.

Services raise `UserFacingError` subclasses; every mutation resolver catches them in one place
(`graph.mutations.common.run_mutation`) and returns the matching GraphQL type as a member of its
payload union. Violations that PostgreSQL catches reach the same place as SQLAlchemy exceptions and
are translated by `from_database_error`, which never lets driver or SQL text through.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any

import asyncpg
import strawberry
from sqlalchemy.exc import DBAPIError
from strawberry.scalars import JSON


@strawberry.enum(description="Why a mutation was refused; stable for clients to branch on.")
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


# Domain exceptions ------------------------------------------------------------------------------


class UserFacingError(Exception):
    """A failure the client caused and can fix; its message is shown to people as is."""

    code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, *, field: str | None = None, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(UserFacingError):
    code = ErrorCode.INVALID


class NotFound(UserFacingError):
    code = ErrorCode.NOT_FOUND


class Forbidden(UserFacingError):
    code = ErrorCode.FORBIDDEN


class StaleVersion(UserFacingError):
    """The client's `expectedUpdatedAt` is not the row's; carries what the row holds now."""

    code = ErrorCode.STALE

    def __init__(
        self, message: str, *, current: dict[str, Any], current_updated_at: datetime | None
    ):
        super().__init__(message, field="expectedUpdatedAt")
        self.current = current
        self.current_updated_at = current_updated_at


# GraphQL types ----------------------------------------------------------------------------------


@strawberry.interface(
    description="A mutation refused for a reason the client can act on. Every error type of"
    " every result union implements it, those added later included: select"
    " `... on UserError { message code }` in each result to handle any of them."
)
class UserError:
    message: str = strawberry.field(description="A plain sentence meant for a person.")
    code: ErrorCode = strawberry.field(description="What kind of refusal, stable to branch on.")


@strawberry.type(description="An input value is invalid; `field` names it (camelCase path).")
class ValidationError(UserError):
    field: str | None = strawberry.field(
        description="The offending input field, e.g. `parentId` or `moves[2].width`."
    )


@strawberry.type(description="A referenced object does not exist (or is not visible).")
class NotFoundError(UserError):
    field: str | None


@strawberry.type(
    description="The object changed since the client read it: nothing was written. "
    "`current` holds the values now stored; re-apply the edit on top of them."
)
class ConflictError(UserError):
    field: str | None
    current: JSON = strawberry.field(
        description="The object's stored columns, as JSON keyed by camelCase field name"
        " (values as the database holds them, e.g. enum values in lower case)."
    )
    current_updated_at: datetime | None = strawberry.field(
        description="The stored `updatedAt`: send it as `expectedUpdatedAt` with the edit redone."
    )


@strawberry.type(description="The acting user may not make this change.")
class ForbiddenError(UserError):
    pass


MutationError = ValidationError | NotFoundError | ConflictError | ForbiddenError


def to_graphql(error: UserFacingError) -> MutationError:
    if isinstance(error, StaleVersion):
        return ConflictError(
            message=error.message,
            code=error.code,
            field=error.field,
            current=error.current,  # type: ignore[arg-type]
            current_updated_at=error.current_updated_at,
        )
    if isinstance(error, NotFound):
        return NotFoundError(message=error.message, code=error.code, field=error.field)
    if isinstance(error, Forbidden):
        return ForbiddenError(message=error.message, code=error.code)
    return ValidationError(message=error.message, code=error.code, field=error.field)


# PostgreSQL violations --------------------------------------------------------------------------

# Named constraints: the input field they guard and what to tell a person.
CONSTRAINTS: dict[str, tuple[str | None, str, ErrorCode]] = {
    "valid_conversation_type": (
        "conversationType",
        "conversationType must be one of live_audio, transcript, chat, hybrid.",
        ErrorCode.INVALID,
    ),
    "valid_visibility": (
        "visibility",
        "visibility must be one of private, shared, public.",
        ErrorCode.INVALID,
    ),
    "valid_timestamps": (
        "timestampEnd",
        "timestampEnd must not be before timestampStart.",
        ErrorCode.INVALID,
    ),
    "valid_dialogue_type": (
        "dialogueType",
        "dialogueType must be one of monologue, dialogue, multi-party, consensus.",
        ErrorCode.INVALID,
    ),
    "no_self_reference": (
        "toNodeId",
        "A relationship must connect two different nodes.",
        ErrorCode.INVALID,
    ),
    "valid_confidence": (
        "confidence",
        "confidence must be between 0 and 1.",
        ErrorCode.OUT_OF_RANGE,
    ),
    "valid_strength": ("strength", "strength must be between 0 and 1.", ErrorCode.OUT_OF_RANGE),
    "valid_edit_type": (
        "editType",
        "editType must be one of correction, addition, deletion, merge, split.",
        ErrorCode.INVALID,
    ),
    "valid_target_type": ("targetType", "targetType is not a known kind.", ErrorCode.INVALID),
    "utterances_conversation_id_sequence_number_key": (
        "sequenceNumber",
        "This conversation already has an utterance with that sequence number.",
        ErrorCode.DUPLICATE,
    ),
    "relationships_from_node_id_to_node_id_relationship_type_key": (
        "relationshipType",
        "These two nodes already have a relationship of this type.",
        ErrorCode.DUPLICATE,
    ),
}

_FOREIGN_KEY = re.compile(r"^(?P<table>[a-z_]+?)_(?P<column>[a-z_]+)_fkey$")
_PRIMARY_KEY = re.compile(r"^(?P<table>[a-z_]+)_pkey$")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _postgres_error(error: BaseException) -> asyncpg.PostgresError | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, asyncpg.PostgresError):
            return current
        seen.add(id(current))
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


# Every statement the services run is generated by SQLAlchemy, with one `$n` placeholder per bound
# value: `INSERT INTO t (a, b) VALUES ($1::T, $2::T), ($3::T, $4::T)` or `UPDATE t SET a=$1::T ...`.
_INSERT_COLUMNS = re.compile(r"^\s*INSERT INTO \S+ \((?P<columns>[^)]*)\)\s*VALUES", re.IGNORECASE)
_SET_PLACEHOLDER = re.compile(r"(?P<column>\w+)=\$(?P<number>\d+)")
_PLACEHOLDER = re.compile(r"\$(\d+)")
_INT4 = range(-(2**31), 2**31)


def _placeholder_columns(statement: str) -> dict[int, str]:
    """The column each `$n` of a generated INSERT or UPDATE binds; empty when that is unclear."""
    insert = _INSERT_COLUMNS.match(statement)
    if insert:
        columns = [column.strip().strip('"') for column in insert["columns"].split(",")]
        numbers = [int(number) for number in _PLACEHOLDER.findall(statement[insert.end() :])]
        if not numbers or len(numbers) % len(columns):
            return {}
        return {number: columns[index % len(columns)] for index, number in enumerate(numbers)}
    if statement.lstrip().upper().startswith("UPDATE "):
        assignments = re.split(r"\sWHERE\s", statement, maxsplit=1, flags=re.IGNORECASE)[0]
        return {
            int(match["number"]): match["column"]
            for match in _SET_PLACEHOLDER.finditer(assignments)
        }
    return {}


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or "\\u0000" in value  # jsonb arrives as JSON text
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def _beyond_int4(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value not in _INT4


def _input_field(error: DBAPIError, sqlstate: str) -> str | None:
    """The input field behind a data exception PostgreSQL does not attribute to a column: the one
    column whose bound value is the culprit (a NUL, an integer too large), if exactly one is."""
    if sqlstate in ("22021", "22P05"):
        culprit = _holds_nul
    elif sqlstate in ("22003", "22000"):  # 22000: asyncpg refused an int4 argument itself
        culprit = _beyond_int4
    else:
        return None
    columns = _placeholder_columns(str(error.statement or ""))
    params = error.params
    rows = params if isinstance(params, list) else [params]  # a list: executemany
    found: set[str] = set()
    for row in rows:
        if not isinstance(row, tuple | list):
            return None
        for number, column in columns.items():
            if number <= len(row) and culprit(row[number - 1]):
                found.add(column)
    return camel(found.pop()) if len(found) == 1 else None


def from_database_error(error: DBAPIError) -> UserFacingError | None:
    """The typed error for a violation PostgreSQL caught, or None when it is not the client's.

    None means a genuine fault (lost connection, timeout, a bug): the caller re-raises it and the
    GraphQL layer reports it without its text.
    """
    cause = _postgres_error(error)
    if cause is None:
        return None
    sqlstate = getattr(cause, "sqlstate", None) or ""
    constraint = getattr(cause, "constraint_name", None) or ""
    column = getattr(cause, "column_name", None) or ""
    if constraint in CONSTRAINTS:
        field, message, code = CONSTRAINTS[constraint]
        return InvalidInput(message, field=field, code=code)
    if sqlstate == "23503":  # foreign_key_violation
        match = _FOREIGN_KEY.match(constraint)
        field = camel(match["column"]) if match else None
        return NotFound(
            f"{field or 'A referenced object'} does not exist.",
            field=field,
            code=ErrorCode.NOT_FOUND,
        )
    if sqlstate == "23505":  # unique_violation
        if _PRIMARY_KEY.match(constraint):
            return InvalidInput(
                "An object with this id already exists.", field="id", code=ErrorCode.DUPLICATE
            )
        return InvalidInput("This value is already taken.", code=ErrorCode.DUPLICATE)
    if sqlstate == "23502":  # not_null_violation
        field = camel(column) if column else None
        return InvalidInput(
            f"{field or 'A value'} is required.", field=field, code=ErrorCode.REQUIRED
        )
    if sqlstate == "23514":  # check_violation on a constraint not listed above
        return InvalidInput("A value is outside what is allowed.")
    if sqlstate in ("22003", "22008", "22015"):  # numeric / datetime / interval out of range
        field = camel(column) if column else _input_field(error, sqlstate)
        return InvalidInput(
            f"{field or 'A number or date'} is out of range.",
            field=field,
            code=ErrorCode.OUT_OF_RANGE,
        )
    if sqlstate == "22000" and (field := _input_field(error, sqlstate)):
        return InvalidInput(f"{field} is out of range.", field=field, code=ErrorCode.OUT_OF_RANGE)
    if sqlstate in ("22021", "22P05"):  # bytes the database encoding cannot hold, e.g. NUL
        field = camel(column) if column else _input_field(error, sqlstate)
        return InvalidInput(
            f"{field or 'Text'} contains characters that cannot be stored (such as NUL).",
            field=field,
        )
    if sqlstate.startswith("22"):  # any other data exception
        return InvalidInput("A value has the wrong form.")
    return None
