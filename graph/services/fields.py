"""Writable columns, declared once per table as a frozen dataclass of `Fields`.

A field of a `Fields` dataclass is a column a client may write, named as the column and typed as
the domain holds it (`uuid.UUID`, `datetime`, a JSON value as `Any`, an enum as its stored text).
`UNSET` means "not sent": a create leaves the column to its default, an update leaves it as it is;
`None` clears it. Everything else is derived from that declaration: the service stores exactly
`provided()` (nothing to forget), the edits log snapshots the stored row, and the GraphQL layer
builds its input type from the dataclass (`graph.mutations.inputs`).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Self


class Unset(enum.Enum):
    """The type of `UNSET`: a value the caller did not send (not the same as None)."""

    UNSET = "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class Fields:
    """Base of a table's writable columns; see the module docstring."""

    def provided(self) -> dict[str, Any]:
        """The fields that were sent, keyed by column name."""
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if getattr(self, item.name) is not UNSET
        }

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Self:
        """From column values computed by name (the canvas import does); an unknown name is a
        TypeError, as a misspelt keyword is."""
        return cls(**values)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))

    @classmethod
    def types(cls) -> dict[str, Any]:
        """Each field's type with `Unset` left out (`str | None`, `list[uuid.UUID] | None`)."""
        if cls not in _RESOLVED:  # one entry per Fields class: a bounded set, resolved once
            hints = typing.get_type_hints(cls)
            _RESOLVED[cls] = {name: _without_unset(hints[name]) for name in cls.names()}
        return _RESOLVED[cls]


_RESOLVED: dict[type[Fields], dict[str, Any]] = {}


def _without_unset(annotation: Any) -> Any:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    members = tuple(item for item in typing.get_args(annotation) if item is not Unset)
    return typing.Union[members] if len(members) > 1 else members[0]  # noqa: UP007
