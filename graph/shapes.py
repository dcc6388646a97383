"""Typed objects read from JSONB columns (`speakerInfo`, `participants`, ...), declared once.

A shape is a strawberry type whose fields are keys of a JSON object, read by the field's type:
`str` as text (a string as it is, any other JSON value as its JSON text), `float` as a number,
`int` as a 32-bit integer, `JSON` as it is, and a list of a shape as a JSON array of objects
(an item that is not an object is null where the list's items are nullable, left out where they
are not). A value of the wrong JSON type reads as null. From that one reading come both paths:
`read` builds the objects in Python for the resolvers, `sql` builds the same JSON in PostgreSQL
for rendered lists (graph/rendering).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.utils.str_converters import to_camel_case

from graph.limits import ESTIMATED_SIZE
from graph.sql_json import EMPTY_LIST

SHAPE = "lct_shape"
INT_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Reading:
    """How one JSON value is read: a scalar kind, or a list of / an object of a shape."""

    kind: str  # "text", "number", "integer", "json", "object" or "list"
    shape: type | None = None
    nullable_items: bool = False


def reading_of(field_type: Any) -> Reading:
    if isinstance(field_type, StrawberryOptional):
        field_type = field_type.of_type
    if isinstance(field_type, StrawberryList):
        item: Any = field_type.of_type
        nullable = isinstance(item, StrawberryOptional)
        shape = item.of_type if nullable else item
        return Reading("list", shape, nullable)
    if hasattr(field_type, "__strawberry_definition__"):
        return Reading("object", field_type)
    if field_type is str:
        return Reading("text")
    if field_type is float:
        return Reading("number")
    if field_type is int:
        return Reading("integer")
    return Reading("json")


def _fields(shape: type) -> list[Any]:
    return list(shape.__strawberry_definition__.fields)  # type: ignore[attr-defined]


# -- Python -----------------------------------------------------------------------------------


def read(reading: Reading, value: Any) -> Any:
    if reading.kind == "text":
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)
    if reading.kind == "number":
        return float(value) if _is_number(value) else None
    if reading.kind == "integer":
        in_range = isinstance(value, int) and INT_RANGE[0] <= value <= INT_RANGE[1]
        return value if in_range and not isinstance(value, bool) else None
    if reading.kind == "json":
        return value
    assert reading.shape is not None
    if reading.kind == "object":
        return _object(reading.shape, value)
    if not isinstance(value, list):
        return None
    items = [_object(reading.shape, item) for item in value]
    return items if reading.nullable_items else [item for item in items if item is not None]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _object(shape: type, value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    return shape(
        **{
            field.python_name: read(reading_of(field.type), value.get(field.python_name))
            for field in _fields(shape)
        }
    )


def column_shape(column: str, **field_options: Any) -> Any:
    """A field whose value is read from the JSONB `column` as the field's type says."""
    readings: list[Reading] = []

    # unannotated: the field's type is the one its class declares
    def resolve(root):
        if not readings:
            readings.append(reading_of(declared.type))
        return read(readings[0], root.__dict__.get(column))

    # a list read from a column costs no statement: it weighs as one object in the cost limit
    metadata = {SHAPE: column, ESTIMATED_SIZE: 1}
    declared: Any = strawberry.field(resolver=resolve, metadata=metadata, **field_options)
    return declared


# -- SQL --------------------------------------------------------------------------------------


def _json_text(value: Any) -> ColumnElement[Any]:
    return case(
        (func.jsonb_typeof(value) == "string", value.op("#>>")(literal_column("'{}'"))),
        (func.jsonb_typeof(value) == "null", None),
        else_=cast(value, Text),
    )


def _json_number(value: Any) -> ColumnElement[Any]:
    return case((func.jsonb_typeof(value) == "number", value), else_=None)


def _bounded_integer(value: Any) -> ColumnElement[Any]:
    text = cast(value, Text)
    integral = (func.jsonb_typeof(value) == "number") & text.op("~")(literal(r"^-?[0-9]{1,10}$"))
    in_range = cast(text, BigInteger).between(*INT_RANGE)
    return case((integral, case((in_range, value), else_=None)), else_=None)


Plan = Any
BuildObject = Callable[[list[tuple[str, Any]]], ColumnElement[Any]]


def sql(
    reading: Reading, plan: Plan | None, value: Any, build_object: BuildObject
) -> ColumnElement[Any]:
    """`value` (a jsonb expression) read as `reading`, the object's fields as `plan` selects."""
    if reading.kind == "text":
        return _json_text(value)
    if reading.kind == "number":
        return _json_number(value)
    if reading.kind == "integer":
        return _bounded_integer(value)
    if reading.kind == "json":
        return case((func.jsonb_typeof(value) == "null", None), else_=value)
    assert reading.shape is not None and plan is not None
    if reading.kind == "object":
        return _sql_object(reading.shape, plan, value, build_object)
    elements = (
        func.jsonb_array_elements(value)
        .table_valued("value", with_ordinality="position")
        .render_derived()
    )
    item = _sql_object(reading.shape, plan, elements.c.value, build_object)
    query = select(
        func.coalesce(func.json_agg(aggregate_order_by(item, elements.c.position)), EMPTY_LIST)
    ).select_from(elements)
    if not reading.nullable_items:
        query = query.where(func.jsonb_typeof(elements.c.value) == "object")
    return case((func.jsonb_typeof(value) == "array", query.scalar_subquery()), else_=None)


def _sql_object(
    shape: type, plan: Plan, value: Any, build_object: BuildObject
) -> ColumnElement[Any]:
    fields = {field.python_name: field for field in _fields(shape)}
    by_graphql_name = {_graphql_name(field): field for field in fields.values()}
    pairs: list[tuple[str, Any]] = []
    for selected in plan.fields:
        if selected.name == "__typename":
            pairs.append((selected.key, literal(plan.type_name, Text)))
            continue
        field = by_graphql_name[selected.name]
        item = value.op("->")(literal(field.python_name, Text))
        pairs.append((selected.key, sql(reading_of(field.type), selected.plan, item, build_object)))
    return case((func.jsonb_typeof(value) == "object", build_object(pairs)), else_=None)


def _graphql_name(field: Any) -> str:
    return str(field.graphql_name) if field.graphql_name else to_camel_case(field.python_name)
