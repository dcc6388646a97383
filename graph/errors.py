"""Expected mutation failures as GraphQL sees them: the error types and the one mapping to them.

Services raise domain errors (`graph.services.errors`); every mutation resolver catches them in one
place (`graph.mutations.common.run_mutation`) and returns `to_graphql(error)`, a member of its
payload union. Violations that PostgreSQL catches reach the same place as SQLAlchemy exceptions and
are first translated into domain errors by `graph.services.database_errors.from_database_error`,
which never lets driver or SQL text through. The domain names stay importable from here.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graph.services.database_errors import CONSTRAINTS, from_database_error
from graph.services.errors import (
    DomainError,
    ErrorCode,
    Forbidden,
    InvalidInput,
    NotFound,
    StaleVersion,
    camel,
)

# The domain's enum is the GraphQL enum: registering it adds the schema's description to it.
strawberry.enum(
    ErrorCode, description="Why a mutation was refused; stable for clients to branch on."
)


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


def to_graphql(error: DomainError) -> MutationError:
    """The one place a domain error becomes a GraphQL error type."""
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


__all__ = [
    "CONSTRAINTS",
    "ConflictError",
    "DomainError",
    "ErrorCode",
    "Forbidden",
    "ForbiddenError",
    "InvalidInput",
    "MutationError",
    "NotFound",
    "NotFoundError",
    "StaleVersion",
    "UserError",
    "ValidationError",
    "camel",
    "from_database_error",
    "to_graphql",
]
