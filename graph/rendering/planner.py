"""Plans: what a selection asks for, as a hashable value, or `Unsupported`.

The planner walks the field nodes of one operation against the executable schema, grouping the
sub-fields of an object by response key as the executor does (fragments, inline fragments,
`@skip` / `@include`), and records for each key the field, its arguments (defaults filled in,
variables substituted) and what is selected under it. A plan is part of a loader key, so two
fields that select the same thing share one statement.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
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

from graph.registry import RELATION
from graph.strawberry_adapter import raw_info, strawberry_field

# json_build_object takes at most 100 arguments: 50 keys.
MAX_KEYS = 50


class Renderable(Protocol):
    """What the planner asks of a type's renderer (graph/rendering/compiler.py)."""

    def renders(self, name: str) -> bool: ...

    def check(self, selected: Selected, settings: Any) -> None: ...


# The object types that can be planned, by GraphQL name; filled when the schema is built
# (`graph.rendering.compiler.register`).
RENDERERS: dict[str, Renderable] = {}


@dataclass(frozen=True)
class Selected:
    """One response key of an object: the field, its arguments, and what is selected under it
    (`plan` for an object type, `variants` for a union or interface: one plan per type)."""

    key: str
    name: str
    arguments: tuple[tuple[str, Hashable], ...] = ()
    plan: Plan | None = None
    variants: tuple[Plan, ...] | None = None

    @property
    def python_arguments(self) -> dict[str, Any]:
        return dict(self.arguments)


@dataclass(frozen=True)
class Plan:
    """The fields selected on one object type, in response order. Part of a loader key."""

    type_name: str
    fields: tuple[Selected, ...]


class Unsupported(Exception):
    """The selection has something the renderer does not render; the resolvers serve it."""


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    return value


class Planner:
    """Turns the field nodes of one operation into plans, against the executable schema."""

    def __init__(self, info: GraphQLResolveInfo, settings: Any) -> None:
        self.settings = settings
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
            selected = self.select(key, name, field, nodes)
            renderer.check(selected, self.settings)
            fields.append(selected)
        return Plan(object_type.name, tuple(fields))

    def select(self, key: str, name: str, field: GraphQLField, nodes: list[FieldNode]) -> Selected:
        arguments = self._arguments(field, nodes[0])
        named = get_named_type(field.type)
        plan = variants = None
        if isinstance(named, GraphQLObjectType):
            plan = self.plan(named, nodes)
        elif is_abstract_type(named):
            variants = tuple(
                self.plan(possible, nodes) for possible in self.schema.get_possible_types(named)
            )
        frozen = tuple(sorted((name, _freeze(value)) for name, value in arguments.items()))
        return Selected(key, name, frozen, plan, variants)

    def _arguments(self, field: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The field's argument values by Python name (validated already), defaults filled in."""
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        python_names = {
            name: getattr(strawberry_field(argument), "python_name", name)
            for name, argument in field.args.items()
        }
        values: dict[str, Any] = {}
        for name, argument in field.args.items():
            value_node = given.get(name)
            if value_node is None or (
                isinstance(value_node, VariableNode) and value_node.name.value not in self.variables
            ):
                if argument.default_value is not Undefined:
                    values[python_names[name]] = argument.default_value
            else:
                values[python_names[name]] = value_from_ast(
                    value_node, argument.type, self.variables
                )
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


def relation_of(field: GraphQLField | None) -> Any:
    """The relation declaration (graph/relations.py) a field was made from, if any."""
    declaration = getattr(strawberry_field(field), "metadata", None) if field else None
    return (declaration or {}).get(RELATION)


def field_selection(info: Any) -> Selected | None:
    """The field being resolved as one selection, when PostgreSQL can render all of it (a
    list's items with everything under them, or a whole connection) in one statement; None when
    rendering is off or the selection has something it does not render."""
    settings = info.context.settings
    if not settings.render_in_database:
        return None
    raw = raw_info(info)
    field = raw.parent_type.fields[raw.field_name]
    relation = relation_of(field)
    if relation is None:
        return None
    try:
        selected = Planner(raw, settings).select(
            raw.field_name, raw.field_name, field, list(raw.field_nodes)
        )
        relation.check(selected, settings)
    except Unsupported:
        return None
    return selected
