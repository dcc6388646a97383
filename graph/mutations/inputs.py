"""GraphQL input types derived from the domain's declarations of writable columns, and back.

`input_type` builds a strawberry input from a `graph.services.fields.Fields` dataclass: one optional
field per column, in the declared order, typed by the standard map below (`Any` and `dict` are
`JSON`); `graphql` names the few fields whose API type says more than the domain's (an enum, a
typed input object, an `ID`). `fields_from` turns the input a client sent back into the domain's
`Fields`, parsing ids where the domain holds `uuid.UUID`. Adding a writable column is therefore one
line in the service's `Fields` (tests/mutations/test_stored_fields.py checks every input field of
every create and update mutation reaches its row).
"""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from graph.mutations.common import parse_id, stored
from graph.services.errors import camel
from graph.services.fields import Fields

F = TypeVar("F", bound=Fields)


def graphql_type(annotation: Any) -> Any:
    """The GraphQL annotation of a domain type: the same, except JSON values."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [graphql_type(item) for item in arguments if item is not type(None)]
        result = typing.Union[tuple(members)] if len(members) > 1 else members[0]  # noqa: UP007
        return result | None if type(None) in arguments else result
    if annotation is Any or origin is dict or annotation is dict:
        return JSON
    if origin is list:
        return list[graphql_type(arguments[0])]  # type: ignore[misc]
    return annotation


def _required(annotation: Any) -> Any:
    arguments = typing.get_args(annotation)
    if type(None) not in arguments:
        return annotation
    members = tuple(item for item in arguments if item is not type(None))
    return typing.Union[members] if len(members) > 1 else members[0]  # noqa: UP007


def input_type(
    name: str,
    domain: type[Fields],
    *,
    only: Iterable[str] | None = None,
    graphql: Mapping[str, Any] | None = None,
    required: Iterable[str] = (),
    leading: Mapping[str, Any] | None = None,
    default: Any = strawberry.UNSET,
    description: str | None = None,
) -> Any:
    """A strawberry input named `name` with a field per column of `domain` (those in `only`),
    after the `leading` fields (name: annotation, or (annotation, default or strawberry.field))."""
    # Annotations are type objects, not strings: strawberry need not resolve them in a module.
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    for field_name, spec in (leading or {}).items():
        annotation, *initial = spec if isinstance(spec, tuple) else (spec,)
        annotations[field_name] = annotation
        if initial:
            namespace[field_name] = initial[0]
    overrides, must = dict(graphql or {}), set(required)
    domain_types = domain.types()
    chosen = domain.names() if only is None else tuple(only)
    for field_name in chosen:
        annotation = overrides.get(field_name) or graphql_type(domain_types[field_name])
        if field_name in must:
            annotations[field_name] = _required(annotation)
        else:
            annotations[field_name] = annotation
            namespace[field_name] = default
    cls = type(name, (), namespace)
    return strawberry.input(cls, name=name, description=description)


def fields_from(domain: type[F], data: Any, prefix: str = "") -> F:
    """The columns of `domain` the client sent in `data` (a strawberry input), as the domain holds
    them: enums as their stored text, input objects as JSON, ids parsed (a bad one is an
    InvalidInput naming `prefix` + its camelCase path)."""
    domain_types = domain.types()
    values: dict[str, Any] = {}
    for name in domain.names():
        value = getattr(data, name, strawberry.UNSET)
        if value is strawberry.UNSET:
            continue
        values[name] = _as_declared(stored(value), domain_types[name], prefix + camel(name))
    return domain(**values)


def _as_declared(value: Any, annotation: Any, path: str) -> Any:
    holds = set(typing.get_args(annotation)) | {annotation}
    if isinstance(value, str) and uuid.UUID in holds:
        return parse_id(value, path)
    if isinstance(value, list) and list[uuid.UUID] in holds:
        return [
            item if isinstance(item, uuid.UUID) else parse_id(item, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    return value
