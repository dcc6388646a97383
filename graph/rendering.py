"""Lists of objects rendered as JSON by PostgreSQL instead of field by field in Python.

A canvas asks for a thousand nodes with twenty fields and their relationships: the executor would
resolve and complete some 35,000 fields one Python call at a time, ten times longer than
PostgreSQL takes to produce the same data. So when every field selected under a list's items is
one this module can express in SQL (a column, a typed shape of a JSONB column, or a traversal it
knows: a node's relationships, children, parent, neighbours in time, utterances and edits, a
relationship's ends, an utterance's node), the statement that fetches the page renders each item
with `json_build_object` and correlated subqueries, keyed by the response keys (aliases
included), and the item is served as a pre-serialised fragment (`orjson.Fragment`) that
`RenderingExecutionContext` passes through untouched.

The JSON is the one the resolvers would produce: the same keys in the same order, ids as text,
`DateTime` as Python's `isoformat()`, enums by name, the same rows through the same visibility
predicate and in the same order (`tests/read/test_rendering.py` compares both paths over every
type and shape). A selection with anything else in it (another traversal, a directive other than
`@skip` / `@include`, more keys than `json_build_object` takes) is served by the resolvers as
before. `LCT_RENDER_IN_DATABASE=false` switches the whole mechanism off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
)
from graphql.pyutils import Undefined
from graphql.utilities import value_from_ast
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.sql.util import ClauseAdapter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph import filters as f
from graph.filters import RelationshipFilter, any_of

Rendered = orjson.Fragment
# json_build_object takes at most 100 arguments: 50 keys.
MAX_KEYS = 50
EMPTY_LIST: ColumnElement[Any] = literal_column("'[]'::json")


class RenderBudget:
    """How many rendered list items one server process holds at once (`LCT_RENDER_BUDGET_ROWS`).

    A 10,000-node canvas is some 12 MB of JSON, held as rows, as the response body and in the
    socket's buffer until it is sent; thirty-two of them at once would take half a gigabyte. A
    request reserves its first rendered list's page size before the statement runs and gives it
    back once its response is sent (`graph.app.GraphQLView`); requests that do not fit wait, so
    memory stays bounded while PostgreSQL, which does the work, stays busy. A request reserves
    once, whatever else it renders, so that no two requests can wait on each other.
    """

    def __init__(self, rows: int) -> None:
        self.capacity = rows
        self.free = rows
        self._waiting: list[asyncio.Future[None]] = []

    async def reserve(self, rows: int) -> int:
        rows = min(max(rows, 1), self.capacity)
        while self.free < rows:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                self._waiting.remove(waiter)
        self.free -= rows
        return rows

    def give_back(self, rows: int) -> None:
        """Synchronous, so that a cancelled request still gives its rows back."""
        self.free += rows
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_result(None)


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


# -- plans: what a selection asks for, as a hashable value --------------------------------------


@dataclass(frozen=True)
class Selected:
    """One response key of an object: the field, its arguments, and what is selected under it."""

    key: str
    name: str
    arguments: tuple[tuple[str, Hashable], ...] = ()
    plan: Plan | None = None

    def argument(self, name: str) -> Any:
        return dict(self.arguments).get(name)


@dataclass(frozen=True)
class Plan:
    """The fields selected on one object type, in response order. Part of a loader key."""

    type_name: str
    fields: tuple[Selected, ...]


class Unsupported(Exception):
    """The selection has something this module does not render; the resolvers serve it."""


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    return value


class Planner:
    """Turns the field nodes of one operation into plans, against the executable schema."""

    def __init__(self, info: GraphQLResolveInfo) -> None:
        self.schema: GraphQLSchema = info.schema
        self.fragments = info.fragments
        # strawberry's resolve info carries the coerced variables as a plain dict
        self.variables: dict[str, Any] = info.variable_values or {}  # type: ignore[assignment]

    def collect(
        self, object_type: GraphQLObjectType, field_nodes: Iterable[FieldNode]
    ) -> dict[str, list[FieldNode]]:
        """The sub-fields of `field_nodes` by response key, grouped as the executor groups them."""
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def walk(selection_set: SelectionSetNode | None) -> None:
            for selection in selection_set.selections if selection_set else ():
                if not self._included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    grouped.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    if condition is None or self._applies(condition.name.value, object_type):
                        walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if name in visited or fragment is None:
                        continue
                    visited.add(name)
                    if self._applies(fragment.type_condition.name.value, object_type):
                        walk(fragment.selection_set)

        for field_node in field_nodes:
            walk(field_node.selection_set)
        return grouped

    def plan(self, object_type: GraphQLObjectType, field_nodes: list[FieldNode]) -> Plan:
        renderer = RENDERERS.get(object_type.name)
        if renderer is None:
            raise Unsupported(object_type.name)
        grouped = self.collect(object_type, field_nodes)
        if len(grouped) > MAX_KEYS:
            raise Unsupported("too many keys")
        fields = []
        for key, nodes in grouped.items():
            name = nodes[0].name.value
            if name == "__typename":
                fields.append(Selected(key, name))
                continue
            field = object_type.fields.get(name)
            if field is None or not renderer.renders(name):
                raise Unsupported(f"{object_type.name}.{name}")
            fields.append(self._selected(key, name, field, nodes))
        return Plan(object_type.name, tuple(fields))

    def _selected(
        self, key: str, name: str, field: GraphQLField, nodes: list[FieldNode]
    ) -> Selected:
        arguments = self._arguments(field, nodes[0])
        named = get_named_type(field.type)
        plan = None
        if isinstance(named, GraphQLObjectType):
            plan = self.plan(named, nodes)
        frozen = tuple(sorted((name, _freeze(value)) for name, value in arguments.items()))
        return Selected(key, name, frozen, plan)

    def _arguments(self, field: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The field's argument values (validated already), defaults filled in."""
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        values: dict[str, Any] = {}
        for name, argument in field.args.items():
            value_node = given.get(name)
            if value_node is None or (
                isinstance(value_node, VariableNode) and value_node.name.value not in self.variables
            ):
                if argument.default_value is not Undefined:
                    values[name] = argument.default_value
            else:
                values[name] = value_from_ast(value_node, argument.type, self.variables)
        return values

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                raise Unsupported(f"@{name}")
            condition = directive.arguments[0].value if directive.arguments else None
            if isinstance(condition, VariableNode):
                value = self.variables.get(condition.name.value)
            else:
                value = getattr(condition, "value", None)
            if bool(value) == (name == "skip"):
                return False
        return True

    def _applies(self, type_name: str, object_type: GraphQLObjectType) -> bool:
        condition = self.schema.get_type(type_name)
        if condition is object_type:
            return True
        return is_abstract_type(condition) and self.schema.is_sub_type(condition, object_type)


def list_items_plan(info: Any) -> Plan | None:
    """The plan of the items of a list field (`[ThreadNode!]!`), when they can be rendered."""
    if not info.context.settings.render_in_database:
        return None
    raw: GraphQLResolveInfo = info._raw_info
    item_type = get_named_type(raw.return_type)
    if not isinstance(item_type, GraphQLObjectType):
        return None
    try:
        return Planner(raw).plan(item_type, list(raw.field_nodes))
    except Unsupported:
        return None


def connection_items_plan(info: Any) -> Plan | None:
    """The plan of a connection's items, when every selection of them can be rendered.

    The items are selected under `nodes` and under `edges { node }`, possibly several times
    (aliases); each selection must give the same plan, since one rendering serves them all.
    """
    if not info.context.settings.render_in_database:
        return None
    raw: GraphQLResolveInfo = info._raw_info
    connection_type = get_named_type(raw.return_type)
    if not isinstance(connection_type, GraphQLObjectType):
        return None
    planner = Planner(raw)
    try:
        item_selections: list[list[FieldNode]] = []
        for nodes in planner.collect(connection_type, raw.field_nodes).values():
            name = nodes[0].name.value
            if name == "nodes":
                item_selections.append(nodes)
            elif name == "edges":
                edge_type = get_named_type(connection_type.fields["edges"].type)
                assert isinstance(edge_type, GraphQLObjectType)
                for edge_nodes in planner.collect(edge_type, nodes).values():
                    if edge_nodes[0].name.value == "node":
                        item_selections.append(edge_nodes)
        if not item_selections:
            return None
        item_type = get_named_type(connection_type.fields["nodes"].type)
        assert isinstance(item_type, GraphQLObjectType)
        plans = {planner.plan(item_type, nodes) for nodes in item_selections}
    except Unsupported:
        return None
    return plans.pop() if len(plans) == 1 else None


# -- rendering: plans into SQL ------------------------------------------------------------------

Visible = Callable[[FromClause], ColumnElement[bool]]
"""The visibility predicate of the request, for rows of a table or of an alias of one."""


def _iso_datetime(column: Any) -> ColumnElement[Any]:
    """`timestamptz` as Python's `datetime.isoformat()` of the UTC value asyncpg returns."""
    utc = func.timezone("UTC", column)
    microseconds = cast(func.date_part("microseconds", column), Integer) % 1_000_000
    fraction = case((microseconds != 0, func.to_char(utc, ".US")), else_="")
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS').concat(fraction).concat("+00:00")


def _enum_names(column: Any, enum: GraphQLEnumType) -> ColumnElement[Any]:
    return case(*((column == value.value, name) for name, value in enum.values.items()), else_=None)


def _json_text(value: Any) -> ColumnElement[Any]:
    """A JSONB value as `graph.nodes._text` serves it: a string as is, anything else as JSON."""
    return case(
        (func.jsonb_typeof(value) == "string", value.op("#>>")(literal_column("'{}'"))),
        (func.jsonb_typeof(value) == "null", None),
        else_=cast(value, Text),
    )


def _json_number(value: Any) -> ColumnElement[Any]:
    """A JSONB value as `graph.nodes._number` serves it: a number, or null."""
    return case((func.jsonb_typeof(value) == "number", value), else_=None)


def _build_object(pairs: list[tuple[str, Any]]) -> ColumnElement[Any]:
    arguments: list[Any] = []
    for key, value in pairs:
        arguments += [literal(key, Text), value]
    return func.json_build_object(*arguments)


class Renderer:
    """How the fields of one object type become SQL over a row source (a table or alias)."""

    def __init__(self, type_name: str, table: Any) -> None:
        self.type_name = type_name
        self.table = table
        self.columns: dict[str, str] = {}
        self.special: dict[str, Callable[[Selected, FromClause, Visible], ColumnElement[Any]]] = {}
        self._types: dict[str, Any] = {}

    def bind(self, graphql_type: GraphQLObjectType, definition: Any, names: Any) -> None:
        """Learns the column fields from the strawberry definition: fields without a resolver."""
        for field in definition.fields:
            if field.base_resolver is None and field.python_name in self.table.c:
                name = names.from_field(field)
                self.columns[name] = field.python_name
                self._types[name] = graphql_type.fields[name].type

    def renders(self, name: str) -> bool:
        return name in self.columns or name in self.special

    def render(self, plan: Plan, source: FromClause, visible: Visible) -> ColumnElement[Any]:
        pairs: list[tuple[str, Any]] = []
        for selected in plan.fields:
            if selected.name == "__typename":
                pairs.append((selected.key, literal(self.type_name, Text)))
            elif selected.name in self.columns:
                column = source.c[self.columns[selected.name]]
                pairs.append((selected.key, self._serialised(selected.name, column)))
            else:
                pairs.append((selected.key, self.special[selected.name](selected, source, visible)))
        return _build_object(pairs)

    def _serialised(self, name: str, column: Any) -> Any:
        graphql_type = self._types[name]
        while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
            graphql_type = graphql_type.of_type
        if graphql_type.name == "DateTime":
            return _iso_datetime(column)
        if isinstance(graphql_type, GraphQLEnumType):
            return _enum_names(column, graphql_type)
        return column


RENDERERS: dict[str, Renderer] = {}


def render(plan: Plan, source: FromClause, visible: Visible) -> ColumnElement[Any]:
    """The JSON of one row of `source`, as text (asyncpg hands it over without decoding)."""
    return cast(RENDERERS[plan.type_name].render(plan, source, visible), Text)


# -- the shapes of JSONB columns (mirroring graph.nodes._speaker_info) --------------------------


def _shape(
    fields: dict[str, tuple[str, str]],
) -> Callable[[Plan, Any], ColumnElement[Any]]:
    """A typed object read from a JSONB object: each field is a key read as text, a number
    or a list of a nested shape."""

    def build(plan: Plan, value: Any) -> ColumnElement[Any]:
        pairs: list[tuple[str, Any]] = []
        for selected in plan.fields:
            if selected.name == "__typename":
                pairs.append((selected.key, literal(plan.type_name, Text)))
                continue
            key, kind = fields[selected.name]
            item = value.op("->")(literal(key, Text))
            if kind == "text":
                pairs.append((selected.key, _json_text(item)))
            elif kind == "number":
                pairs.append((selected.key, _json_number(item)))
            else:
                assert selected.plan is not None
                pairs.append((selected.key, _shape_list(SHAPES[kind], selected.plan, item)))
        return case((func.jsonb_typeof(value) == "object", _build_object(pairs)), else_=None)

    return build


def _shape_list(
    shape: Callable[[Plan, Any], ColumnElement[Any]], plan: Plan, value: Any
) -> ColumnElement[Any]:
    elements = (
        func.jsonb_array_elements(value)
        .table_valued("value", with_ordinality="position")
        .render_derived()
    )
    items = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(shape(plan, elements.c.value), elements.c.position)
                ),
                EMPTY_LIST,
            )
        )
        .select_from(elements)
        .where(func.jsonb_typeof(elements.c.value) == "object")
        .scalar_subquery()
    )
    return case((func.jsonb_typeof(value) == "array", items), else_=None)


SHAPES: dict[str, Callable[[Plan, Any], ColumnElement[Any]]] = {
    "SecondarySpeaker": _shape(
        {"speakerId": ("speaker_id", "text"), "percentage": ("percentage", "number")}
    ),
}
SHAPES["SpeakerInfo"] = _shape(
    {
        "primarySpeaker": ("primary_speaker", "text"),
        "speakerName": ("speaker_name", "text"),
        "contributionPercentage": ("contribution_percentage", "number"),
        "secondarySpeakers": ("secondary_speakers", "SecondarySpeaker"),
    }
)


def _speaker_info(selected: Selected, source: FromClause, _: Visible) -> ColumnElement[Any]:
    assert selected.plan is not None
    return SHAPES["SpeakerInfo"](selected.plan, cast(source.c.speaker_info, JSONB))


# -- a node's relationships (mirroring Loaders._relationships_by) -------------------------------


def _relationships(ends: tuple[str, ...]) -> Callable[[Selected, FromClause, Visible], Any]:
    """`outgoing`, `incoming` and `relationships(direction:)`: outgoing ones first, each end by
    `createdAt` then id. (A relationship never joins a node to itself, so none is listed twice.)"""

    def build(selected: Selected, node: FromClause, visible: Visible) -> ColumnElement[Any]:
        assert selected.plan is not None
        chosen = ends
        direction = selected.argument("direction")
        if direction is not None:
            chosen = {"outgoing": ("from_node_id",), "incoming": ("to_node_id",)}.get(
                str(getattr(direction, "value", direction)).lower(), ends
            )
        alias = f.relationships.alias()
        relationship_filter = RelationshipFilter(
            types=any_of(selected.argument("relationshipType")),
            min_strength=selected.argument("minStrength"),
        )
        adapt = ClauseAdapter(alias).traverse
        outgoing_first = [alias.c.from_node_id != node.c.id] if len(chosen) > 1 else []
        document = RENDERERS[selected.plan.type_name].render(selected.plan, alias, visible)
        return (
            select(
                func.coalesce(
                    func.json_agg(
                        aggregate_order_by(
                            document, *outgoing_first, alias.c.created_at, alias.c.id
                        )
                    ),
                    EMPTY_LIST,
                )
            )
            .where(
                or_(*(alias.c[end] == node.c.id for end in chosen)),
                visible(alias),
                *(adapt(condition) for condition in relationship_filter.conditions()),
            )
            .scalar_subquery()
        )

    return build


# -- traversals to other rows (mirroring the loaders of graph/loaders.py) ----------------------

Special = Callable[[Selected, FromClause, Visible], ColumnElement[Any]]


def _document(selected: Selected, alias: FromClause, visible: Visible) -> ColumnElement[Any]:
    assert selected.plan is not None
    return RENDERERS[selected.plan.type_name].render(selected.plan, alias, visible)


def _one(table: Any, reference: str) -> Special:
    """The row whose id the source's `reference` column holds; null when missing or hidden."""

    def build(selected: Selected, source: FromClause, visible: Visible) -> ColumnElement[Any]:
        alias = table.alias()
        return (
            select(_document(selected, alias, visible))
            .where(alias.c.id == source.c[reference], visible(alias))
            .scalar_subquery()
        )

    return build


def _many(
    table: Any,
    match: Callable[[Any, FromClause], ColumnElement[bool]],
    order: Callable[[Any], list[Any]],
) -> Special:
    """The rows that `match` the source row, in `order`, as a JSON array."""

    def build(selected: Selected, source: FromClause, visible: Visible) -> ColumnElement[Any]:
        alias = table.alias()
        document = _document(selected, alias, visible)
        return (
            select(
                func.coalesce(
                    func.json_agg(aggregate_order_by(document, *order(alias))), EMPTY_LIST
                )
            )
            .where(match(alias, source), visible(alias))
            .scalar_subquery()
        )

    return build


def _children(selected: Selected, source: FromClause, visible: Visible) -> ColumnElement[Any]:
    """`ThreadNode.children`: the nodes of `childrenIds`, in that order, hidden ones left out.

    `id = ANY(childrenIds)` finds them by primary key (an `unnest` join lets the planner hash
    the whole table for every parent); `childrenIds` holds no id twice (graph/services keeps it
    so), so ordering by each id's position in it is the list's order.
    """
    alias = f.nodes.alias()
    document = _document(selected, alias, visible)
    position = func.array_position(source.c.children_ids, alias.c.id)
    return (
        select(func.coalesce(func.json_agg(aggregate_order_by(document, position)), EMPTY_LIST))
        .where(alias.c.id == func.any(source.c.children_ids), visible(alias))
        .scalar_subquery()
    )


# -- registration -------------------------------------------------------------------------------


def register(strawberry_schema: Any) -> None:
    """Binds the renderers to the executable schema (once, when the schema is built)."""
    from graph.api_calls import ApiCall
    from graph.edits import Edit
    from graph.nodes import ThreadNode
    from graph.relationships import Relationship
    from graph.utterances import Utterance

    kinds = {
        "ThreadNode": (ThreadNode, f.nodes),
        "Relationship": (Relationship, f.relationships),
        "Utterance": (Utterance, f.utterances),
        "Edit": (Edit, f.edits),
        "ApiCall": (ApiCall, f.api_calls),
    }
    schema: GraphQLSchema = strawberry_schema._schema
    names = strawberry_schema.config.name_converter
    for name, (kind, table) in kinds.items():
        renderer = Renderer(name, table)
        graphql_type = schema.type_map[name]
        assert isinstance(graphql_type, GraphQLObjectType)
        renderer.bind(graphql_type, kind.__strawberry_definition__, names)  # type: ignore[attr-defined]
        RENDERERS[name] = renderer
    nodes = RENDERERS["ThreadNode"]
    nodes.special["speakerInfo"] = _speaker_info
    nodes.special["outgoing"] = _relationships(("from_node_id",))
    nodes.special["incoming"] = _relationships(("to_node_id",))
    nodes.special["relationships"] = _relationships(("from_node_id", "to_node_id"))
    nodes.special["parent"] = _one(f.nodes, "parent_id")
    nodes.special["predecessor"] = _one(f.nodes, "predecessor_id")
    nodes.special["successor"] = _one(f.nodes, "successor_id")
    nodes.special["children"] = _children
    nodes.special["utterances"] = _many(
        f.utterances,
        lambda utterance, node: utterance.c.node_id == node.c.id,
        lambda utterance: [utterance.c.sequence_number, utterance.c.id],
    )
    nodes.special["edits"] = _many(
        f.edits,
        lambda edit, node: and_(edit.c.target_type == "node", edit.c.target_id == node.c.id),
        lambda edit: [edit.c.created_at.desc(), edit.c.id.desc()],
    )
    RENDERERS["Relationship"].special["fromNode"] = _one(f.nodes, "from_node_id")
    RENDERERS["Relationship"].special["toNode"] = _one(f.nodes, "to_node_id")
    RENDERERS["Utterance"].special["node"] = _one(f.nodes, "node_id")
    for shape in SHAPES:
        RENDERERS[shape] = _ShapeMarker(shape)


class _ShapeMarker(Renderer):
    """A JSONB shape: its fields are planned like an object's, rendered by `SHAPES`."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name, None)

    def renders(self, name: str) -> bool:
        return True
