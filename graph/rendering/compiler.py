"""Plans into SQL: each object becomes a `json_build_object` over its row, keyed by the response
keys (aliases included), with the JSON the resolvers would produce: the same keys in the same
order, ids as text, `DateTime` as Python's `isoformat()`, enums by name.

What a field renders as is read from its declaration (`Renderer.bind`): a column, a typed shape of
a JSONB column (graph/shapes.py), an owner-only column (graph/permissions.py) or a relation
(graph/relations.py), which renders itself as a correlated subquery over the parent's row.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
)
from sqlalchemy import ARRAY, ColumnElement, FromClause, Text, case, cast, func, literal

from graph import shapes
from graph.pagination import Connection, Edge, PageInfo
from graph.permissions import OWNER_ONLY, owner_only_sql
from graph.registry import BY_TYPE_NAME, RELATION
from graph.rendering.planner import RENDERERS, Plan, Selected
from graph.sql_json import build_object, iso_datetime
from graph.strawberry_adapter import graphql_schema, strawberry_field


def _enum_names(column: Any, enum: GraphQLEnumType) -> ColumnElement[Any]:
    return case(*((column == value.value, name) for name, value in enum.values.items()), else_=None)


class Renderer:
    """How the fields of one object type of the graph become SQL over a row source."""

    def __init__(self, graphql_type: GraphQLObjectType, table: Any) -> None:
        self.type_name = graphql_type.name
        self.table = table
        self.fields: dict[str, Any] = {}
        for name, field in graphql_type.fields.items():
            definition = strawberry_field(field)
            metadata = getattr(definition, "metadata", None) or {}
            if RELATION in metadata:
                self.fields[name] = ("relation", metadata[RELATION])
            elif shapes.SHAPE in metadata:
                self.fields[name] = ("shape", (metadata[shapes.SHAPE], definition))
            elif OWNER_ONLY in metadata:
                self.fields[name] = ("owner_only", metadata[OWNER_ONLY])
            elif (
                definition is not None
                and definition.base_resolver is None
                and definition.python_name in table.c
            ):
                self.fields[name] = ("column", (definition.python_name, field.type))

    def renders(self, name: str) -> bool:
        return name in self.fields

    def shape_types(self) -> set[str]:
        """The names of the shape types this type's JSONB fields read, nested ones included."""
        found: set[str] = set()
        pending = [
            shapes.reading_of(definition.type)
            for what, (_, definition) in (
                (what, declaration) for what, declaration in self.fields.values() if what == "shape"
            )
        ]
        while pending:
            reading = pending.pop()
            if reading.shape is None or reading.shape.__name__ in found:
                continue
            definition = reading.shape.__strawberry_definition__  # type: ignore[attr-defined]
            found.add(definition.name)
            pending.extend(shapes.reading_of(field.type) for field in definition.fields)
        return found

    def check(self, selected: Selected, settings: Any) -> None:
        what, declaration = self.fields[selected.name]
        if what == "relation":
            declaration.check(selected, settings)

    def render(self, plan: Plan, source: FromClause, scope: Any) -> ColumnElement[Any]:
        return build_object(self.pairs(plan, source, scope))

    def pairs(self, plan: Plan, source: FromClause, scope: Any) -> list[tuple[str, Any]]:
        """Each response key of the object with the SQL of its value."""
        pairs: list[tuple[str, Any]] = []
        for selected in plan.fields:
            if selected.name == "__typename":
                pairs.append((selected.key, literal(self.type_name, Text)))
                continue
            what, declaration = self.fields[selected.name]
            if what == "column":
                name, graphql_type = declaration
                pairs.append((selected.key, _serialised(source.c[name], graphql_type)))
            elif what == "relation":
                pairs.append((selected.key, declaration.render(selected, source, scope)))
            elif what == "shape":
                column, definition = declaration
                reading = shapes.reading_of(definition.type)
                value = source.c[column]
                if isinstance(value.type, ARRAY):  # jsonb[]: read as one JSON array
                    value = func.to_jsonb(value)
                pairs.append(
                    (selected.key, shapes.sql(reading, selected.plan, value, build_object))
                )
            else:
                pairs.append((selected.key, owner_only_sql(source, declaration, scope.viewer_id)))
        return pairs


class Structure:
    """A type rendered by the relation that holds it (connections, their edges, `PageInfo`) or
    by its JSONB shape: every field is planned, the holder renders them."""

    def renders(self, name: str) -> bool:
        return True

    def check(self, selected: Selected, settings: Any) -> None:
        return None


def _serialised(column: Any, graphql_type: Any) -> Any:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    if graphql_type.name == "DateTime":
        return iso_datetime(column)
    if isinstance(graphql_type, GraphQLEnumType):
        return _enum_names(column, graphql_type)
    return column


def render_object(plan: Plan, source: FromClause, scope: Any) -> ColumnElement[Any]:
    """The JSON object of one row of `source`, as `plan` selects it."""
    return build_object(object_pairs(plan, source, scope))


def object_pairs(plan: Plan, source: FromClause, scope: Any) -> list[tuple[str, Any]]:
    """The keys of `render_object`'s object, each with the SQL of its value."""
    renderer = RENDERERS[plan.type_name]
    assert isinstance(renderer, Renderer)
    return renderer.pairs(plan, source, scope)


def render(plan: Plan, source: FromClause, scope: Any) -> ColumnElement[Any]:
    """The JSON of one row of `source`, as text (asyncpg hands it over without decoding)."""
    return cast(render_object(plan, source, scope), Text)


# Types the field holding them renders itself (graph/search.py: a search hit), by GraphQL name.
HELD_BY_FIELD: set[str] = set()


def register(strawberry_schema: Any) -> None:
    """Binds the renderers to the executable schema (once, when the schema is built): one per
    object type of the registry, and a `Structure` for connections, edges, `PageInfo` and the
    shapes of JSONB columns."""
    schema: GraphQLSchema = graphql_schema(strawberry_schema)
    for name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or name.startswith("__"):
            continue
        kind = BY_TYPE_NAME.get(name)
        if kind is not None:
            renderer = RENDERERS[name] = Renderer(graphql_type, kind.table)
            for shape in renderer.shape_types():
                RENDERERS[shape] = Structure()
        elif name in HELD_BY_FIELD or _specialised_from(graphql_type, (Connection, Edge, PageInfo)):
            RENDERERS[name] = Structure()


def _specialised_from(graphql_type: GraphQLObjectType, generics: tuple[type, ...]) -> bool:
    origin = getattr(strawberry_field(graphql_type), "origin", None)  # type: ignore[arg-type]
    return isinstance(origin, type) and issubclass(origin, generics)
