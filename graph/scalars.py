"""The custom scalars: `UUID`, `DateTime` and `JSON`.

`UUID` and `DateTime` are strawberry's scalars for `uuid.UUID` and `datetime.datetime` (ISO 8601
text, with the UTC offset); `JSON` holds free-form JSONB values. `SCALAR_MAP` (the schema's
`scalar_map`) replaces strawberry's `UUID` with one that serialises the same way and has a
description in the schema.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

UUID = uuid.UUID
DateTime = datetime

SCALAR_MAP: dict[object, ScalarDefinition] = {
    uuid.UUID: strawberry.scalar(
        name="UUID",
        description="A UUID as text in its canonical form"
        " (`0f8fad5b-d9cb-469f-a165-70867728950e`), for references to things this schema has no"
        " object type for (transcript chunks, claims, threads). Objects' own ids are `ID`s, which"
        " hold UUIDs too.",
        serialize=str,
        parse_value=lambda value: uuid.UUID(str(value)),
    )
}

__all__ = ["JSON", "SCALAR_MAP", "UUID", "DateTime"]
