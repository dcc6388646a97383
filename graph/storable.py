"""Refuses, before execution, every input value PostgreSQL cannot store.

PostgreSQL text cannot hold a NUL byte, UTF-8 cannot encode an unpaired surrogate (JSON's
`"\\ud800"` decodes to one), and `jsonb` has no NaN or Infinity. Any of these in an argument, a
filter, a variable, an input field or a JSON value would fail inside the driver or the server and
come back as a masked internal error, or reach a read's `WHERE`. `RefuseUnstorableInput` checks the
whole operation in one place instead: the string literals of the document and the variables' values
(keys of JSON objects included), and answers a `BAD_USER_INPUT` request error that names where each
offending value was (`$input.text`, `createNode(input.text)`). Mutations are no exception: a
value no column can hold is a malformed request, not a refusal the client could have foreseen from
the data, so it is answered before any resolver runs and the mutation's transaction never begins.

Variables can be large (an import document): they are encoded by orjson first, in C, which raises on
a surrogate and writes NUL as `\\u0000`; only a small payload, or one that showed a bad character,
is walked value by value, and a large walk runs off the event loop.
"""

from __future__ import annotations

import asyncio
import math
import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FloatValueNode,
    GraphQLError,
    ListValueNode,
    Node,
    ObjectFieldNode,
    StringValueNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

BAD_USER_INPUT = "BAD_USER_INPUT"
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Variables whose JSON is smaller than this are walked on the event loop (microseconds).
WALK_ON_LOOP_BYTES = 64 * 1024
MAX_REPORTED = 10
NUL = "a NUL character (U+0000)"


def problem(value: Any) -> str | None:
    """What makes a scalar value unstorable, or None."""
    if isinstance(value, str):
        found = UNSTORABLE.search(value)
        if found is None:
            return None
        if found.group() == "\x00":
            return NUL
        return f"an unpaired surrogate (U+{ord(found.group()):04X})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a number JSON cannot hold ({value})"
    return None


def unstorable_values(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, problem) for every unstorable value under `value`, keys included, in order."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        current, where = pending.pop()
        if isinstance(current, dict):
            items = list(current.items())
            for key, item in reversed(items):
                key_problem = problem(key)
                if key_problem:
                    yield f"{where} (a key)", key_problem
                pending.append((item, f"{where}.{_printable(key)}"))
        elif isinstance(current, list | tuple):
            pending.extend(
                (item, f"{where}[{index}]") for index, item in reversed(list(enumerate(current)))
            )
        else:
            found = problem(current)
            if found:
                yield where, found


def _printable(key: Any) -> str:
    return UNSTORABLE.sub("\ufffd", str(key))


def unstorable_literals(document: DocumentNode) -> Iterator[tuple[str, str]]:
    """(where, problem) for every string literal of the document PostgreSQL cannot store."""

    def walk(node: Node, field: str, argument: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, FieldNode):
            field = node.name.value
        elif isinstance(node, DirectiveNode):
            field = f"@{node.name.value}"
        elif isinstance(node, ArgumentNode):
            argument = node.name.value
        elif isinstance(node, ObjectFieldNode):
            argument = f"{argument}.{node.name.value}"
        elif isinstance(node, StringValueNode | FloatValueNode):
            found = problem(node.value if isinstance(node, StringValueNode) else float(node.value))
            if found:
                yield f"{field}({argument})", found
            return
        if isinstance(node, ListValueNode):
            for index, item in enumerate(node.values):
                yield from walk(item, field, f"{argument}[{index}]")
            return
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                yield from walk(child, field, argument)
            elif isinstance(child, tuple | list):
                for item in child:
                    if isinstance(item, Node):
                        yield from walk(item, field, argument)

    for definition in document.definitions:
        yield from walk(definition, "", "")


class LiteralProblems:
    """`unstorable_literals` remembered per document object: the parse of a repeated document is
    reused (graph/persisted.py), and walking it costs more than a small query's execution. Keyed
    by identity through a weak reference, so that it keeps no document alive; bounded."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._found: OrderedDict[int, tuple[weakref.ref[DocumentNode], list[tuple[str, str]]]] = (
            OrderedDict()
        )

    def of(self, document: DocumentNode) -> list[tuple[str, str]]:
        known = self._found.get(id(document))
        if known is not None and known[0]() is document:
            self._found.move_to_end(id(document))
            return known[1]
        found = list(unstorable_literals(document))
        self._found[id(document)] = (weakref.ref(document), found)
        if len(self._found) > self.size:
            self._found.popitem(last=False)
        return found


LITERAL_PROBLEMS = LiteralProblems()


def _needs_walk(variables: dict[str, Any]) -> tuple[bool, bool]:
    """(walk, off the loop): orjson's C encoder tells a clean large payload apart quickly."""
    try:
        encoded = orjson.dumps(variables)
    except (TypeError, orjson.JSONEncodeError):  # a surrogate, or a value JSON does not hold
        return True, True
    if len(encoded) < WALK_ON_LOOP_BYTES:
        return True, False
    # NaN is encoded as null here: jsonb refuses it, and the mutations map that refusal.
    return b"\\u0000" in encoded, True


def unstorable_variables(variables: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, value in variables.items():
        for item in unstorable_values(value, f"${name}"):
            found.append(item)
            if len(found) >= MAX_REPORTED:
                return found
    return found


def refusal(found: list[tuple[str, str]]) -> ExecutionResult:
    errors = [
        GraphQLError(
            f"{where} holds {what}, which cannot be stored; remove it or send other text.",
            extensions={"code": BAD_USER_INPUT, "argument": where},
        )
        for where, what in found[:MAX_REPORTED]
    ]
    return ExecutionResult(data=None, errors=errors)


class RefuseUnstorableInput(SchemaExtension):
    """See the module docstring: one check per operation, before any resolver runs."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        viewer_problem = problem(getattr(context.context, "viewer_id", None))
        if viewer_problem:  # a signed token whose `sub` no user id can be
            context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        f"The token's subject (`sub`) holds {viewer_problem}: not a user id.",
                        extensions={"code": "UNAUTHENTICATED"},
                    )
                ],
            )
            yield
            return
        found: list[tuple[str, str]] = []
        if context.graphql_document is not None:
            found.extend(LITERAL_PROBLEMS.of(context.graphql_document))
        variables = context.variables or {}
        if variables and len(found) < MAX_REPORTED:
            walk, off_loop = _needs_walk(variables)
            if walk and off_loop:
                found.extend(await asyncio.to_thread(unstorable_variables, variables))
            elif walk:
                found.extend(unstorable_variables(variables))
        if found:
            context.result = refusal(found)
        yield
