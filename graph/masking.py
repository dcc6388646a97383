"""Errors a client may see, and the rest masked.

A resolver that raises a `GraphQLError` meant it for the client. Anything else is a bug or an
outage: the client gets a generic message with an error id, and the log gets the same id with the
exception and its traceback, so a report that quotes the id leads straight to the details. A
statement cancelled by `statement_timeout` is not a bug but a query that asked for too much; it
gets its own clear message and code. Neither is a lost connection or a database that is restarting
or full: that is an outage the client can wait out, answered as `SERVICE_UNAVAILABLE` (and HTTP
503 with `Retry-After`, see `graph.app`) with a message that says whether a write may have been
saved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from asyncpg.exceptions import ConnectionDoesNotExistError, InterfaceError
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graph.observability import count_masked_error

logger = logging.getLogger("lct.errors")

QUERY_CANCELED = "57014"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
# What the client should wait before retrying, in seconds (the `Retry-After` header).
RETRY_AFTER_SECONDS = 1
# Connection exceptions (08), a server shutting down or starting (57P01-57P03), too many
# connections (53300): none says anything about the statement, all pass.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


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


class CommitInDoubt(Exception):
    """The connection was lost during COMMIT: the write may or may not have been saved."""


def is_unavailable(error: BaseException) -> bool:
    """Whether the error is the database's connection or availability, not the statement."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    for link in _chain(error):
        if getattr(link, "connection_invalidated", False):  # SQLAlchemy saw a disconnect
            return True
        sqlstate = getattr(link, "sqlstate", None) or ""
        if sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(link, ConnectionDoesNotExistError | ConnectionError | PoolTimeout):
            return True
        # asyncpg on a connection that died under it (while being set up, say)
        if isinstance(link, InterfaceError) and "connection is closed" in str(link):
            return True
        # connecting failed: refused, unreachable, no socket file (a restart), timed out
        if isinstance(link, OSError | TimeoutError):
            return True
    return False


def new_error_id() -> str:
    return uuid.uuid4().hex[:16]


def statement_timeout_error(nodes: Any, path: Any, statement_timeout_ms: int) -> GraphQLError:
    """What a client is told of a statement `statement_timeout` cancelled, at `path`."""
    logger.warning("statement timeout at %s", ".".join(map(str, path or ())))
    return GraphQLError(
        f"The query ran longer than the statement timeout ({statement_timeout_ms} ms) and"
        " was cancelled. Ask for less: smaller pages, fewer nested lists, narrower filters.",
        nodes=nodes,
        path=path,
        extensions={"code": "STATEMENT_TIMEOUT"},
    )


def mask(error: GraphQLError, statement_timeout_ms: int) -> GraphQLError:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return error
    if is_statement_timeout(original):
        return statement_timeout_error(error.nodes, error.path, statement_timeout_ms)
    if is_unavailable(original):
        in_doubt = any(isinstance(link, CommitInDoubt) for link in _chain(original))
        logger.warning(
            "database unavailable at %s: %r", ".".join(map(str, error.path or ())), original
        )
        return GraphQLError(
            "The connection to the database was lost while this change was being committed: it"
            " may or may not have been saved. Read it back before sending it again."
            if in_doubt
            else "The database is unavailable for a moment; nothing was changed. Retry in"
            f" {RETRY_AFTER_SECONDS} s.",
            nodes=error.nodes,
            path=error.path,
            extensions={
                "code": SERVICE_UNAVAILABLE,
                "retryAfterSeconds": RETRY_AFTER_SECONDS,
                "writeOutcome": "unknown" if in_doubt else "notApplied",
            },
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


async def commit(session: Any) -> None:
    """Commits; a connection lost on the way leaves the outcome unknown (`CommitInDoubt`)."""
    try:
        await session.commit()
    except Exception as error:
        if is_unavailable(error):
            raise CommitInDoubt from error
        raise


def unavailable_for_retry(response_data: Any, response: Any) -> None:
    """GraphQL over HTTP (`application/graphql-response+json`): an operation that met an outage
    is answered 503 with `Retry-After`, so that clients and proxies retry it."""
    items = response_data if isinstance(response_data, list) else [response_data]
    for item in items:
        errors = item.get("errors") if isinstance(item, dict) else None
        if any(
            (error.get("extensions") or {}).get("code") == SERVICE_UNAVAILABLE
            for error in errors or ()
        ):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return
