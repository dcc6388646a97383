"""Every use of strawberry's and graphql-core's internals, in one place.

Written against strawberry-graphql 0.341.2 and graphql-core 3.3.2 (pinned in requirements.lock);
when either is upgraded, this module is what to check.

Two kinds of use: small reads of strawberry's and graphql-core's objects (the executable schema,
the raw resolve info, a field's strawberry definition, the executor's value completion), and a
lean runner of the schema extensions' hooks (`run_extensions_lean`, below).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, NamedTuple

import orjson
import strawberry
from graphql import GraphQLArgument, GraphQLField, GraphQLResolveInfo, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext

Rendered = orjson.Fragment

__all__ = [
    "Rendered",
    "RenderingExecutionContext",
    "graphql_schema",
    "raw_info",
    "run_extensions_lean",
    "strawberry_field",
    "validate_document",
]


class RenderingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, passing objects that PostgreSQL rendered through as they are."""

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is Rendered:
            return result
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )


def raw_info(info: Any) -> GraphQLResolveInfo:
    """graphql-core's resolve info behind strawberry's `Info`."""
    return info._raw_info


def graphql_schema(strawberry_schema: Any) -> GraphQLSchema:
    """The executable graphql-core schema behind a strawberry schema."""
    return strawberry_schema._schema


def strawberry_field(graphql_field: GraphQLField | GraphQLArgument) -> Any:
    """The strawberry field or argument a graphql-core one was made from (None for built-ins)."""
    return (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)


# -- the schema extensions' hooks, run lean ----------------------------------------
#
# Runs the schema extensions' hooks of an operation without strawberry's per-operation setup.
#
# For every operation and each of its four stages (operation, parse, validate, execute), strawberry
# asks every extension whether it defines the hook, wraps each one found in a fresh
# `contextlib.contextmanager` (which copies the function's attributes with `functools.wraps`) and
# enters them through an `ExitStack`: on `{ __typename }` that was a fifth of the request's Python
# function calls. Which hooks a class defines does not change, so `LeanExtensionsRunner` looks that
# up once per class and drives the hooks' generators itself, with the same semantics: entered in the
# order of the extensions, left in reverse, an exception thrown into each one still running
# (tests/test_extension_runner.py compares the two runners). A hook that is not a generator
# (strawberry also accepts plain and async functions) sends its stage back to strawberry's own
# context manager.
#
# Written against strawberry-graphql 0.341.2 (`SchemaExtensionsRunner`, `Schema.
# create_extensions_runner`), the version pyproject.toml pins.


class HookPlan(NamedTuple):
    """What one extension class defines for one stage."""

    function: Callable[..., Any] | None  # None: nothing
    is_async: bool = False
    supported: bool = True  # False: not a generator function (strawberry's runner takes it)


_plans: dict[tuple[type, str], HookPlan] = {}


def _plan(kind: type, stage: str) -> HookPlan:
    key = (kind, stage)
    plan = _plans.get(key)
    if plan is None:
        function = getattr(kind, stage)
        if function is getattr(SchemaExtension, stage):
            plan = HookPlan(None)
        elif inspect.isasyncgenfunction(function):
            plan = HookPlan(function, is_async=True)
        elif inspect.isgeneratorfunction(function):
            plan = HookPlan(function)
        else:
            plan = HookPlan(function, supported=False)
        _plans[key] = plan
    return plan


class StageHooks:
    """One stage's hooks of one operation: a context manager, sync or async, like strawberry's."""

    __slots__ = ("hooks", "running")

    def __init__(self, hooks: list[tuple[SchemaExtension, Callable[..., Any], bool]]) -> None:
        self.hooks = hooks
        self.running: list[tuple[Any, bool]] = []

    def __enter__(self) -> None:
        for extension, function, is_async in self.hooks:
            if is_async:
                raise RuntimeError(
                    f"SchemaExtension hook {extension} failed to complete synchronously."
                )
            generator = function(extension)
            next(generator)
            self.running.append((generator, False))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        pending = exc
        while self.running:
            generator, _ = self.running.pop()
            pending = _leave_sync(generator, pending)
        return _outcome(exc, pending)

    async def __aenter__(self) -> None:
        for extension, function, is_async in self.hooks:
            generator = function(extension)
            if is_async:
                await generator.__anext__()
            else:
                next(generator)
            self.running.append((generator, is_async))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        pending = exc
        while self.running:
            generator, is_async = self.running.pop()
            if is_async:
                pending = await _leave_async(generator, pending)
            else:
                pending = _leave_sync(generator, pending)
        return _outcome(exc, pending)


def _leave_sync(generator: Generator[Any, None, None], pending: BaseException | None) -> Any:
    """Resumes a hook after its `yield`; returns the exception still propagating, if any."""
    try:
        if pending is None:
            next(generator)
        else:
            generator.throw(pending)
    except StopIteration:
        return None  # finished; a thrown exception was swallowed
    except BaseException as error:
        return error
    return RuntimeError(f"{generator!r} yielded twice")


async def _leave_async(
    generator: AsyncGenerator[Any, None], pending: BaseException | None
) -> BaseException | None:
    try:
        if pending is None:
            await generator.__anext__()
        else:
            await generator.athrow(pending)
    except StopAsyncIteration:
        return None
    except BaseException as error:
        return error
    return RuntimeError(f"{generator!r} yielded twice")


def _outcome(original: BaseException | None, pending: BaseException | None) -> bool:
    """As strawberry's context managers: an exception a hook raised instead is raised; the
    original one goes on, even when a hook swallowed it (that hides it from the hooks left after
    that one only)."""
    if pending is not None and pending is not original:
        raise pending
    return False


# (the extensions' classes, stage) -> (index of the extension, hook, is async) for each hook;
# None when one of them is not a generator
_stage_plans: dict[tuple[tuple[type, ...], str], list[tuple[int, Any, bool]] | None] = {}


def _stage_plan(kinds: tuple[type, ...], stage: str) -> list[tuple[int, Any, bool]] | None:
    key = (kinds, stage)
    if key not in _stage_plans:
        hooks: list[tuple[int, Any, bool]] | None = []
        for index, kind in enumerate(kinds):
            plan = _plan(kind, stage)
            if not plan.supported:
                hooks = None
                break
            if plan.function is not None and hooks is not None:
                hooks.append((index, plan.function, plan.is_async))
        _stage_plans[key] = hooks
    return _stage_plans[key]


class LeanExtensionsRunner(SchemaExtensionsRunner):
    def _stage(self, stage: str, default: Callable[[], Any]) -> Any:
        extensions = self.extensions
        hooks = _stage_plan(tuple(type(extension) for extension in extensions), stage)
        if hooks is None:
            return default()
        return StageHooks([(extensions[index], hook, is_async) for index, hook, is_async in hooks])

    def operation(self) -> Any:
        return self._stage("on_operation", super().operation)

    def validation(self) -> Any:
        return self._stage("on_validate", super().validation)

    def parsing(self) -> Any:
        return self._stage("on_parse", super().parsing)

    def executing(self) -> Any:
        return self._stage("on_execute", super().executing)


def run_extensions_lean(schema: strawberry.Schema) -> None:
    """Makes `schema` run its extensions' hooks with `LeanExtensionsRunner`."""

    def create_extensions_runner(
        execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return LeanExtensionsRunner(execution_context=execution_context, extensions=extensions)

    schema.create_extensions_runner = create_extensions_runner  # type: ignore[method-assign]
