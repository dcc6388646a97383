"""The custom scalars: `UUID`, `DateTime` and `JSON`.

`UUID` and `DateTime` are `uuid.UUID` and `datetime.datetime` in Python. `SCALAR_MAP` (the schema's
`scalar_map`) gives them the definitions clients see: `@specifiedBy` the RFC each follows, a
description, and parsers that accept exactly what that RFC allows, so a value a client reads can
always be sent back and a value the server refuses is refused before any resolver runs.
`JSON` holds free-form JSONB values (strawberry's, specified by ECMA-404).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

UUID = uuid.UUID
DateTime = datetime

# RFC 3339 section 5.6 `date-time`; "t"/"z" in lower case are allowed by its section 5.6 note.
_RFC_3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# RFC 4122's text form: 32 hex digits in groups of 8-4-4-4-12.
_RFC_4122 = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str) or not _RFC_3339.fullmatch(value):
        raise StrawberryInputCoercionError(
            f"DateTime cannot represent {str(value)[:60]!r}: expected RFC 3339 date-time text"
            " with a UTC offset, e.g. 2026-11-24T06:04:57.307408+00:00."
        )
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as error:
        raise StrawberryInputCoercionError(
            f"DateTime cannot represent {value!r}: {error}."
        ) from None


def _parse_uuid(value: object) -> uuid.UUID:
    if not isinstance(value, str) or not _RFC_4122.fullmatch(value):
        raise StrawberryInputCoercionError(
            f"UUID cannot represent {str(value)[:60]!r}: expected RFC 4122 text such as"
            " 0f8fad5b-d9cb-469f-a165-70867728950e."
        )
    return uuid.UUID(value)


def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()


SCALAR_MAP: dict[object, ScalarDefinition] = {
    uuid.UUID: strawberry.scalar(
        name="UUID",
        description="A UUID as RFC 4122 text in its canonical lower-case form"
        " (`0f8fad5b-d9cb-469f-a165-70867728950e`), in and out. It stands for references to"
        " things this schema has no object type for (transcript chunks, claims, threads);"
        " objects' own ids and references to objects are `ID`s, which hold UUIDs too. Map it to"
        " `string` in generated clients.",
        specified_by_url="https://datatracker.ietf.org/doc/html/rfc4122",
        serialize=str,
        parse_value=_parse_uuid,
    ),
    datetime: strawberry.scalar(
        name="DateTime",
        description="An instant as RFC 3339 `date-time` text with its UTC offset"
        " (`2026-11-24T06:04:57.307408+00:00`; `Z` is accepted for `+00:00`). The server"
        " always answers with an offset and microseconds when there are any; text without an"
        " offset is refused. Map it to `string` in generated clients (or parse it into a date"
        " type of your own).",
        specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339#section-5.6",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
}

__all__ = ["JSON", "SCALAR_MAP", "UUID", "DateTime"]
