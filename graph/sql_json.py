"""JSON built by PostgreSQL exactly as the Python side would serialise the same values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, case, cast, func, literal, literal_column

EMPTY_LIST: ColumnElement[Any] = literal_column("'[]'::json")


def iso_datetime(column: Any) -> ColumnElement[Any]:
    """`timestamptz` as Python's `datetime.isoformat()` of the UTC value asyncpg returns."""
    utc = func.timezone("UTC", column)
    microseconds = cast(func.date_part("microseconds", column), Integer) % 1_000_000
    fraction = case((microseconds != 0, func.to_char(utc, ".US")), else_="")
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS').concat(fraction).concat("+00:00")


def build_object(pairs: list[tuple[str, Any]]) -> ColumnElement[Any]:
    """`json_build_object` of (key, value) pairs, in their order."""
    arguments: list[Any] = []
    for key, value in pairs:
        arguments += [literal(key, Text), value]
    return func.json_build_object(*arguments)
