"""Operations answered whole by one statement, without the executor.

Most traffic repeats a handful of documents: a canvas refetching its conversation, a header asking
for a few fields. Once such a document has been served by the executor without an error, and
everything it selects renders in SQL (every root field a relation declaration, graph/relations.py,
with everything under it rendering: graph/rendering), its whole `data` is compiled into one
statement, and the next request like it is answered by that statement alone: no parse, no
validation, no executor, one round trip to PostgreSQL, and the JSON PostgreSQL writes is the body.

What makes two requests alike is the key: the document's text, the operation name, the viewer,
and the values of the variables, except those that only name the object a root field is asked
for (`conversation(id: $id)`): those are the statement's parameters (`ById`), so every
conversation shares one statement. Everything the executor checked depends on the key alone:
validation on the text, the limits on the variables (an id never changes a cost), visibility is
part of the statement (the viewer's). An id that is not a UUID, a body that is not a plain JSON
request, any error while the statement runs: the request goes to the executor as usual, which
answers it as it always does (and reports what is wrong). The exception is a statement cancelled
by `statement_timeout`, which the executor would run again only to see it cancelled again: it is
answered here, with the executor's STATEMENT_TIMEOUT error at the root field that reads the
database (when there are several, the executor answers).

Learning happens on the executor's path (`Learning`, a schema extension): the view marks a
request it could not answer (`Operations.miss`), and the extension compiles it when the
operation succeeded. Nothing is compiled for an operation that failed, a mutation, or a
selection the renderer does not take (such a document is remembered as one to leave alone).

Off with `LCT_COMPILE_OPERATIONS=false` or `LCT_RENDER_IN_DATABASE=false`, with transaction
pooling (whose `SET LOCAL`s need the executor's transaction) and while tracing is on (spans are
the executor's).
tests/read/test_rendering.py asks every document twice and compares both answers with the
resolvers' (every field of every type); tests/read/test_operations.py holds the keys and the ways
back to the executor.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    get_operation_ast,
    visit,
)
from graphql.execution.values import get_variable_values
from sqlalchemy import Text, cast, func, literal_column, select, true
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as ASGIScope
from strawberry.extensions import SchemaExtension

from db import session
from graph.http import GRAPHQL_RESPONSE, prefers_graphql_response, send_response
from graph.masking import is_statement_timeout, is_unavailable, statement_timeout_error
from graph.observability import OPERATION_NAMES, Observability, park
from graph.permissions import visible_rows
from graph.persisted import PersistedDocuments
from graph.relations import ById, Relation
from graph.relay import parse_uuid
from graph.rendering import RenderBudget, Unsupported
from graph.rendering.compiler import object_pairs
from graph.rendering.planner import RENDERERS, Planner, Selected, relation_of
from graph.strawberry_adapter import graphql_schema

# The body of a request the fast path reads: a small query's is some hundred bytes.
MAX_BODY_BYTES = 64 * 1024
REQUEST_MEMBERS = frozenset(("query", "documentId", "variables", "operationName"))
NEVER: Any = object()  # remembered: leave it to the executor
DIALECT = asyncpg_dialect()

logger = logging.getLogger("lct.operations")


class Scope:
    """What a compiled statement knows of the request: the viewer (graph.relations.Scope)."""

    def __init__(self, viewer_id: str | None, settings: Any) -> None:
        self.viewer_id = viewer_id
        self.settings = settings

    def visible(self, table: Any) -> Any:
        return visible_rows(self.viewer_id, table)


@dataclass(frozen=True)
class Shape:
    """What a document's text decides: the variables bound per request (ids of `ById` roots)."""

    bound: frozenset[str]


@dataclass(frozen=True)
class Compiled:
    """One key's answer: the statement (None: the answer is `constant`), where each of its
    parameters comes from, and what the executor would have reported about it."""

    sql: str | None
    constant: bytes
    # per positional parameter: (the variable whose id it is, None) or (None, its value)
    parameters: tuple[tuple[str | None, Any], ...]
    layout: tuple[Layout, ...]  # how the row's columns make the data (`assemble`)
    rendered_lists: int
    rows: int  # reserved in the render budget while the answer is made
    name: str = ""
    label: str = ""
    # the root field a statement cancelled by `statement_timeout` is reported at, when only one
    # reads the database: its response key, its nodes, and whether it may be null
    reader: tuple[str, tuple[FieldNode, ...], bool] | None = None


def typed(value: Any) -> Hashable:
    """A JSON value as a key: `1`, `1.0` and `true` are equal in Python, not in GraphQL."""
    if isinstance(value, dict):
        return ("{", tuple(sorted((name, typed(item)) for name, item in value.items())))
    if isinstance(value, list):
        return ("[", tuple(typed(item) for item in value))
    return (type(value).__name__, value)


class Bounded(OrderedDict[Hashable, Any]):
    """A dictionary that drops its least recently used entry past `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def find(self, key: Hashable) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def keep(self, key: Hashable, value: Any) -> None:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


@dataclass(frozen=True)
class Request:
    """A POST body the fast path can read: a query, its variables and operation name."""

    query: str
    operation_name: str | None
    variables: dict[str, Any]
    viewer_id: str | None

    @classmethod
    def of(
        cls, body: bytes, viewer_id: str | None, persisted: PersistedDocuments
    ) -> Request | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not REQUEST_MEMBERS.issuperset(data):
            return None
        query = persisted.text_to_run(data.get("query"), data.get("documentId"))
        name = data.get("operationName")
        variables = data.get("variables") or {}
        if query is None or not isinstance(variables, dict):
            return None
        if name is not None and not isinstance(name, str):
            return None
        return cls(query, name, variables, viewer_id)


class Operations:
    """The compiled operations of one app, and the documents left to the executor."""

    def __init__(self, size: int = 512) -> None:
        self.shapes = Bounded(size)
        self.compiled = Bounded(size)

    def key(self, request: Request, shape: Shape) -> Hashable:
        variables = tuple(
            sorted(
                (name, typed(value))
                for name, value in request.variables.items()
                if name not in shape.bound
            )
        )
        return (request.query, request.operation_name, variables, request.viewer_id)

    def find(self, request: Request) -> Compiled | None:
        """The compiled answer of `request`; None when there is none (yet, or ever)."""
        shape = self.shapes.find((request.query, request.operation_name))
        if shape is None or shape is NEVER:
            return None
        compiled = self.compiled.find(self.key(request, shape))
        return None if compiled is NEVER else compiled

    def learn(
        self,
        request: Request,
        schema: Any,
        document: DocumentNode,
        label: str,
        name: str,
        settings: Any,
    ) -> None:
        """Compiles `request`, which the executor just answered without an error."""
        shape_key = (request.query, request.operation_name)
        shape = self.shapes.find(shape_key)
        if shape is NEVER:
            return
        graphql = graphql_schema(schema)
        operation = get_operation_ast(document, request.operation_name)
        if shape is None:
            shape = shape_of(graphql, document, operation) if operation else NEVER
            self.shapes.keep(shape_key, shape)
            if shape is NEVER:
                logger.debug("left to the executor: %s", request.operation_name)
                return
        key = self.key(request, shape)
        if key in self.compiled:
            return
        assert operation is not None
        try:
            compiled = compile_operation(graphql, document, operation, request, shape, settings)
        except Unsupported as reason:
            logger.debug("left to the executor: %s", reason)
            self.compiled.keep(key, NEVER)
        else:
            self.compiled.keep(key, replace(compiled, name=name, label=label))


def _root_fields(
    planner: Planner, schema: GraphQLSchema, operation: OperationDefinitionNode
) -> dict[str, list[FieldNode]]:
    query_type = schema.query_type
    assert query_type is not None
    return planner.collect(query_type, [operation])  # type: ignore[list-item]


def _relation(schema: GraphQLSchema, name: str) -> Relation | None:
    assert schema.query_type is not None
    relation = relation_of(schema.query_type.fields.get(name))
    return relation if isinstance(relation, Relation) else None


def _planner(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], settings: Any
) -> Planner:
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    info = SimpleNamespace(schema=schema, fragments=fragments, variable_values=variables)
    return Planner(info, settings)  # type: ignore[arg-type]


def shape_of(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> Shape | Any:
    """The document's shape, or `NEVER` for one the fast path leaves alone: not a query, a
    directive on the operation, or a root field without a relation declaration."""
    if operation.operation != OperationType.QUERY or operation.directives:
        return NEVER
    uses: dict[str, int] = {}

    class Count(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            uses[node.name.value] = uses.get(node.name.value, 0) + 1

    visit(operation, Count())
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            visit(definition, Count())
    # the variable definitions count once each
    ids: dict[str, int] = {}
    try:
        planner = _planner(schema, document, {}, None)
        roots = _root_fields(planner, schema, operation)
    except Unsupported:
        return NEVER
    for nodes in roots.values():
        for node in nodes:
            name = node.name.value
            if name == "__typename":
                continue
            relation = _relation(schema, name)
            if relation is None:
                return NEVER
            if isinstance(relation, ById):
                for argument in node.arguments or ():
                    if argument.name.value == "id" and isinstance(argument.value, VariableNode):
                        variable = argument.value.name.value
                        ids[variable] = ids.get(variable, 0) + 1
    bound = frozenset(name for name, count in ids.items() if uses.get(name, 0) == count + 1)
    return Shape(bound)


def compile_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    request: Request,
    shape: Shape,
    settings: Any,
) -> Compiled:
    """The statement answering `request`'s operation (see `Compiled`, without its names);
    raises `Unsupported`.

    The statement returns one row: a column per root value, and for an object found by id
    (`ById`) a column per key of it. Python puts them together (`assemble`): nesting a large
    value in another `json_build_object` copies it again at every level, which made a canvas
    of 10,000 nodes (12 MB) a sixth slower than the executor's answer."""
    coerced = get_variable_values(schema, operation.variable_definitions or (), request.variables)
    if isinstance(coerced, list):
        raise Unsupported("variables")
    planner = _planner(schema, document, coerced.coerced, settings)
    scope = Scope(request.viewer_id, settings)
    columns: list[Any] = []
    source: Any = select(literal_column("1").label("one")).subquery("root")
    layout: list[Layout] = []
    # parameter -> (its variable, None) or (None, the id the key fixes)
    ids: dict[str, tuple[str | None, Any]] = {}
    lists = rows = 0
    readers: list[tuple[str, tuple[FieldNode, ...], bool]] = []

    def column(value: Any) -> int:
        # UTF-8 bytes, as the body is: not decoded into a str only to be encoded again
        columns.append(func.convert_to(cast(func.to_json(value), Text), UTF8))
        return len(columns) - 1

    for key, nodes in _root_fields(planner, schema, operation).items():
        name = nodes[0].name.value
        prefix = orjson.dumps(key) + b":"
        if name == "__typename":
            layout.append((prefix, b'"Query"', None, ()))
            continue
        relation = _relation(schema, name)
        if relation is None or schema.query_type is None:
            raise Unsupported(name)
        field = schema.query_type.fields[name]
        selected = planner.select(key, name, field, nodes)
        relation.check(selected, settings)
        readers.append((key, tuple(nodes), not isinstance(field.type, GraphQLNonNull)))
        if isinstance(relation, ById):
            assert selected.plan is not None
            variable = _id_variable(nodes[0])
            ids[relation.parameter(selected)] = (
                (variable, None)
                if variable in shape.bound
                else (None, parse_uuid(selected.python_arguments["id"]))
            )
            found = relation.found(selected, scope)
            pairs = object_pairs(selected.plan, found.alias, scope)
            row = found.select(
                literal_column("true").label("found"),
                *(value.label(f"v{index}") for index, (_, value) in enumerate(pairs)),
            ).lateral(f"root{len(layout)}")
            source = source.outerjoin(row, true())
            fields = tuple(
                (orjson.dumps(field) + b":", column(row.c[f"v{index}"]))
                for index, (field, _) in enumerate(pairs)
            )
            layout.append((prefix, None, column(row.c.found), fields))
        else:
            layout.append((prefix, None, column(relation.render(selected, None, scope)), ()))
        found_lists, found_rows = _rendered(relation, selected, settings)
        lists, rows = lists + found_lists, rows + found_rows
    if not columns:
        return Compiled(None, b"".join(assemble(tuple(layout), ())), (), tuple(layout), 0, 0)
    statement = select(*columns).select_from(source)
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    parameters: list[tuple[str | None, Any]] = []
    for parameter in compiled.positiontup or ():
        if parameter in ids:
            variable, value = ids[parameter]
            parameters.append((variable, value))
            continue
        # an expanded `IN` list's items are `<name>_<n>`, of the type of `<name>`
        bind = compiled.binds.get(parameter)
        if bind is None:
            bind = compiled.binds[parameter.rsplit("_", 1)[0]]
        process = bind.type.dialect_impl(DIALECT).bind_processor(DIALECT)
        value = compiled.params[parameter]
        parameters.append((None, process(value) if process else value))
    reader = readers[0] if len(readers) == 1 else None
    return Compiled(
        str(compiled), b"", tuple(parameters), tuple(layout), lists, rows, reader=reader
    )


# A root value: its key's bytes (`"key":`), then its constant JSON, or the column holding it (for
# an object found by id: the column saying it was found, and its keys' bytes and columns).
Layout = tuple[bytes, bytes | None, int | None, tuple[tuple[bytes, int], ...]]
UTF8: Any = literal_column("'UTF8'")


def assemble(layout: tuple[Layout, ...], row: Any) -> list[bytes]:
    """The pieces of the response's `data` object, from the statement's row (see
    `compile_operation`); joined once, since a rendered list can be megabytes."""
    pieces = [b"{"]
    for position, (prefix, constant, found, fields) in enumerate(layout):
        pieces += (b",", prefix) if position else (prefix,)
        if constant is not None:
            pieces.append(constant)
        elif not fields:
            pieces.append(row[found] or b"null")
        elif row[found] is None:
            pieces.append(b"null")
        else:
            pieces.append(b"{")
            for index, (name, column) in enumerate(fields):
                pieces += (b",", name) if index else (name,)
                pieces.append(row[column] or b"null")
            pieces.append(b"}")
    pieces.append(b"}")
    return pieces


def _id_variable(node: FieldNode) -> str | None:
    for argument in node.arguments or ():
        if argument.name.value == "id" and isinstance(argument.value, VariableNode):
            return argument.value.name.value
    return None


def _rendered(relation: Relation, selected: Selected, settings: Any) -> tuple[int, int]:
    """The lists rendered whole under a field, counted as the executor's path counts them (one
    per list it reaches through objects it builds itself), and the rows they reserve."""
    if relation.renders_whole:
        return 1, relation.rows_rendered(selected, settings)
    lists = rows = 0
    plan = selected.plan
    renderer = RENDERERS.get(plan.type_name) if plan is not None else None
    fields = getattr(renderer, "fields", {})
    for below in plan.fields if plan is not None else ():
        what, declaration = fields.get(below.name, (None, None))
        if what == "relation":
            found_lists, found_rows = _rendered(declaration, below, settings)
            lists, rows = lists + found_lists, rows + found_rows
    return lists, rows


def arguments_of(compiled: Compiled, request: Request) -> list[Any] | None:
    """The statement's parameters for `request`; None when an id is not a UUID (the executor
    reports it)."""
    values = []
    for variable, value in compiled.parameters:
        if variable is None:
            values.append(value)
            continue
        given = request.variables.get(variable)
        if not isinstance(given, str):
            return None
        try:
            values.append(parse_uuid(given))
        except GraphQLError:
            return None
    return values


def body_of(compiled: Compiled, row: Any, debug: bool) -> bytes:
    """The response: the `data` assembled from the statement's row, and with
    `LCT_DEBUG_SQL_COUNT` the extensions the executor's path reports
    (graph.app.StatementCountExtension), and `compiled: true`."""
    data = [compiled.constant] if row is None else assemble(compiled.layout, row)
    return _body(compiled, data, None, debug)


class _Nulls:
    """A row of NULLs, whatever its width."""

    def __getitem__(self, _: int) -> None:
        return None


def timed_out_body(compiled: Compiled, statement_timeout_ms: int, debug: bool) -> bytes:
    """The response when `statement_timeout` cancelled the statement: the error at the root
    field that reads the database (`Compiled.reader`), that field null, as the executor reports
    a cancelled statement (graph.masking)."""
    assert compiled.reader is not None
    key, nodes, nullable = compiled.reader
    error = statement_timeout_error(list(nodes), [key], statement_timeout_ms)
    data = assemble(compiled.layout, _Nulls()) if nullable else [b"null"]
    return _body(compiled, data, [error.formatted], debug)


def _body(compiled: Compiled, data: list[bytes], errors: Any, debug: bool) -> bytes:
    pieces = [b'{"data":', *data]
    if errors:
        pieces += (b',"errors":', orjson.dumps(errors))
    if debug:
        statements = 0 if compiled.sql is None else 1
        extensions = {
            "sqlStatements": statements,
            "renderedLists": compiled.rendered_lists,
            "compiled": True,
        }
        pieces += (b',"extensions":', orjson.dumps(extensions))
    pieces.append(b"}")
    return b"".join(pieces)


# -- serving -----------------------------------------------------------------------------------

LEARN = "lct_learn"  # the request state's member naming a request to compile when it succeeds


def enabled(settings: Any) -> bool:
    return bool(
        settings.compile_operations
        and settings.render_in_database
        and not settings.transaction_pooling
    )


async def read_small_body(scope: ASGIScope, receive: Receive) -> tuple[bytes | None, Receive]:
    """A small JSON body, read whole, and a `receive` that gives it again to whoever runs the
    request instead; None (and nothing read) for any other body."""
    length = -1
    json = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
    if not json or not 0 < length <= MAX_BODY_BYTES:
        return None, receive
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive  # disconnected: nothing to answer
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


class FastPath:
    """Answers the requests `Operations` has compiled; hands every other one to `executor`."""

    def __init__(
        self,
        operations: Operations,
        settings: Any,
        engine: Callable[[], AsyncEngine | None],
        budget: Callable[[], RenderBudget | None],
        observability: Observability,
        persisted: PersistedDocuments,
    ) -> None:
        self.operations = operations
        self.persisted = persisted
        self.settings = settings
        self.connections = Connections(engine, keep=max(1, settings.pool_size // 2))
        self.budget = budget
        self.observability = observability

    async def __call__(
        self, scope: ASGIScope, receive: Receive, send: Send, executor: ASGIApp
    ) -> None:
        if scope["method"] != "POST" or self.observability.tracing is not None:
            await executor(scope, receive, send)
            return
        body, receive = await read_small_body(scope, receive)
        viewer = scope.get("state", {}).get("viewer")
        viewer_id = getattr(viewer, "user_id", None)
        request = None if body is None else Request.of(body, viewer_id, self.persisted)
        if request is None:
            await executor(scope, receive, send)
            return
        compiled = self.operations.find(request)
        if compiled is None or not await self.answer(compiled, request, scope, receive, send):
            if compiled is None:
                scope.setdefault("state", {})[LEARN] = request
            await executor(scope, receive, send)

    async def answer(
        self, compiled: Compiled, request: Request, scope: ASGIScope, receive: Receive, send: Send
    ) -> bool:
        """Sends the answer; False (nothing sent) when the executor must answer instead."""
        started = time.perf_counter()
        arguments = arguments_of(compiled, request)
        if arguments is None:
            return False
        budget = self.budget() if compiled.rows else None
        reserved = await budget.reserve(compiled.rows) if budget is not None else 0
        debug = self.settings.debug_sql_count
        outcome = "ok"
        try:
            try:
                row = None
                if compiled.sql is not None:
                    row = await self.connections.fetch(compiled.sql, arguments)
            except Exception as error:
                # a cancelled statement is reported here: run again it would be cancelled
                # again, after as long; anything else the executor runs again and reports
                if compiled.reader is None or not is_statement_timeout(error):
                    logger.debug("compiled operation failed, to the executor: %r", error)
                    return False
                outcome = "error"
                body = timed_out_body(compiled, self.settings.statement_timeout_ms, debug)
            else:
                body = body_of(compiled, row, debug)
            await send_response(Response(body, media_type=media_type(scope)), scope, receive, send)
        finally:
            if budget is not None:
                budget.give_back(reserved)
        statements = 0 if compiled.sql is None else 1
        seconds = time.perf_counter() - started
        self.observability.operation_done(
            compiled.name, compiled.label, outcome, seconds, statements
        )
        self.observability.rendered(compiled)
        return True


class Connections:
    """The fast path's connections: taken from the engine's pool, and up to `keep` of them
    parked between requests instead of given back.

    Checking a connection out of SQLAlchemy's pool and back costs about 0.1 ms of Python,
    as long as the rest of a small request. A parked connection is not counted as in use in
    the pool gauges (`graph.observability.park`); one parked for longer than the pool's ping
    window is proven alive first, as the pool would (`db.session.ping_on_checkout`), and one
    that fails is dropped (the executor answers that request).
    """

    def __init__(self, engine: Callable[[], AsyncEngine | None], keep: int) -> None:
        self.engine = engine
        self.keep = keep
        self.idle: list[tuple[AsyncConnection, Any, float]] = []

    async def fetch(self, sql: str, arguments: list[Any]) -> Any:
        """One statement's one row, through the driver: no SQLAlchemy execution around it."""
        connection, driver = await self._take()
        try:
            value = await driver.fetchrow(sql, *arguments)
        except BaseException as error:
            if isinstance(error, Exception) and not is_unavailable(error):
                await self._give_back(connection, driver)
            else:  # dead, or cancelled half way: its state is unknown
                await self._discard(connection)
            raise
        await self._give_back(connection, driver)
        return value

    async def _take(self) -> tuple[AsyncConnection, Any]:
        engine = self.engine()
        if engine is None:
            raise RuntimeError("the app's lifespan has not run: no database")
        while self.idle:
            connection, driver, since = self.idle.pop()
            park(engine, -1)
            if time.monotonic() - since < session.PING_AFTER_IDLE_SECONDS:
                return connection, driver
            try:
                await driver.execute("SELECT 1")
                return connection, driver
            except Exception as error:
                logger.info("a parked connection did not answer: %r", error)
                await self._discard(connection)
        connection = await engine.connect()
        driver = (await connection.get_raw_connection()).driver_connection
        return connection, driver

    async def _give_back(self, connection: AsyncConnection, driver: Any) -> None:
        engine = self.engine()
        if engine is not None and len(self.idle) < self.keep:
            self.idle.append((connection, driver, time.monotonic()))
            park(engine, 1)
        else:
            await connection.close()

    @staticmethod
    async def _discard(connection: AsyncConnection) -> None:
        try:
            await connection.invalidate()
            await connection.close()
        except Exception as error:  # it is gone already
            logger.debug("discarding a dead connection: %r", error)

    async def close(self) -> None:
        """Gives every parked connection back (before the engine is disposed of)."""
        engine = self.engine()
        while self.idle:
            connection, _, _ = self.idle.pop()
            if engine is not None:
                park(engine, -1)
            await connection.close()


def media_type(scope: ASGIScope) -> str:
    """What the executor's path answers a success with (`prefers_graphql_response`)."""
    accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
    if prefers_graphql_response(accept.decode("latin-1")):
        return f"{GRAPHQL_RESPONSE}; charset=utf-8"
    return "application/json"


class Learning(SchemaExtension):
    """Compiles the request the fast path marked, once the executor answered it without error."""

    def __init__(self, operations: Operations) -> None:
        self.operations = operations

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        state = getattr(getattr(context.context, "request", None), "scope", {}).get("state", {})
        request = state.pop(LEARN, None)
        result = context.result
        if (
            not isinstance(request, Request)
            or context.pre_execution_errors
            or result is None
            or result.errors
            or context.graphql_document is None
        ):
            return
        label = OPERATION_NAMES.label(context)
        name = label if label != "other" else str(context.operation_name)[:200]
        try:
            self.operations.learn(
                request,
                context.schema,
                context.graphql_document,
                label,
                name,
                context.context.settings,
            )
        except Exception:  # a request that succeeded stays a success
            logger.exception("compiling an operation failed; the executor keeps answering it")
            self.operations.shapes.keep((request.query, request.operation_name), NEVER)
