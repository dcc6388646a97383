"""The lean runner of graph/strawberry_adapter.py runs the schema extensions' hooks as
strawberry's own runner does:
the same order, the same exceptions thrown into the hooks still running, the same outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from graph.strawberry_adapter import run_extensions_lean


@strawberry.type
class Query:
    @strawberry.field
    def greeting(self) -> str:
        return "hello"

    @strawberry.field
    def broken(self) -> str:
        raise ValueError("resolver failed")


def recording_schema(events: list[str], *, fail_in: str | None, swallow: bool) -> Any:
    class Outer(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            events.append("outer operation in")
            try:
                yield
            except Exception as error:
                events.append(f"outer operation saw {error}")
                if not swallow:
                    raise
            else:
                events.append("outer operation out")

        def on_parse(self) -> Iterator[None]:
            events.append("outer parse in")
            yield
            events.append("outer parse out")

    class Inner(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            events.append("inner operation in")
            try:
                yield
            finally:
                events.append("inner operation out")

        def on_validate(self) -> Iterator[None]:
            events.append("inner validate in")
            yield
            if fail_in == "validate":
                raise RuntimeError("validate hook failed")
            events.append("inner validate out")

        async def on_execute(self) -> AsyncIterator[None]:
            events.append("inner execute in")
            yield
            if fail_in == "execute":
                raise RuntimeError("execute hook failed")
            events.append("inner execute out")

    return strawberry.Schema(query=Query, extensions=[Outer, Inner])


async def run(lean: bool, query: str, fail_in: str | None, swallow: bool) -> tuple[Any, ...]:
    events: list[str] = []
    schema = recording_schema(events, fail_in=fail_in, swallow=swallow)
    if lean:
        run_extensions_lean(schema)
    try:
        result = await schema.execute(query)
        outcome: Any = (result.data, [error.message for error in result.errors or ()])
    except Exception as error:
        outcome = f"raised {type(error).__name__}: {error}"
    return tuple(events), outcome


@pytest.mark.parametrize(
    ("query", "fail_in", "swallow"),
    [
        ("{ greeting }", None, False),
        ("{ broken }", None, False),
        ("{ greeting", None, False),
        ("{ nosuchfield }", None, False),
        ("{ greeting }", "validate", False),
        ("{ greeting }", "execute", False),
        ("{ greeting }", "execute", True),
    ],
)
async def test_lean_runner_behaves_as_strawberrys(
    query: str, fail_in: str | None, swallow: bool
) -> None:
    expected = await run(False, query, fail_in, swallow)
    assert await run(True, query, fail_in, swallow) == expected
    assert expected[0], "the extensions ran no hook: the comparison proved nothing"
