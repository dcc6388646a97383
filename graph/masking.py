"""Errors a client may see, and the rest masked.

A resolver that raises a `GraphQLError` meant it for the client. Anything else is a bug or an
outage: the client gets a generic message with an error id, and the log gets the same id with the
exception and its traceback, so a report that quotes the id leads straight to the details. A
statement cancelled by `statement_timeout` is not a bug but a query that asked for too much; it
gets its own clear message and code.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graph.observability import count_masked_error

logger = logging.getLogger("lct.errors")

QUERY_CANCELED = "57014"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `.orig`) and what caused it, without loops."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


def is_statement_timeout(error: BaseException) -> bool:
    return any(
        getattr(link, "sqlstate", None) == QUERY_CANCELED
        or getattr(link, "pgcode", None) == QUERY_CANCELED
        for link in _chain(error)
    )


def new_error_id() -> str:
    return uuid.uuid4().hex[:16]


def mask(error: GraphQLError, statement_timeout_ms: int) -> GraphQLError:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return error
    if is_statement_timeout(original):
        logger.warning("statement timeout at %s", ".".join(map(str, error.path or ())))
        return GraphQLError(
            f"The query ran longer than the statement timeout ({statement_timeout_ms} ms) and"
            " was cancelled. Ask for less: smaller pages, fewer nested lists, narrower filters.",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "STATEMENT_TIMEOUT"},
        )
    error_id = new_error_id()
    count_masked_error()
    logger.error(
        "unexpected error %s at %s: %r",
        error_id,
        ".".join(map(str, error.path or ())) or "-",
        original,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        f"Unexpected error; it was logged with id {error_id}.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": error_id},
    )


class MaskUnexpectedErrors(SchemaExtension):
    """Masks every error a resolver did not mean for the client (see the module docstring)."""

    def __init__(self, statement_timeout_ms: int) -> None:
        self.statement_timeout_ms = statement_timeout_ms

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [mask(error, self.statement_timeout_ms) for error in errors]
