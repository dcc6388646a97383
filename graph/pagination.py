"""Relay-style cursor connections with keyset cursors, paged per parent.

A connection is one page of rows in a fixed order (a sort key and the row id as tie-breaker). The
cursor of a row is its sort key and id, so `after:` continues exactly where the page ended even when
rows are added or removed in between. Nested connections are paged per parent in one statement:
`row_number() over (partition by <parent> order by <key>)` picks each parent's first rows, so every
parent gets its own page (one `LIMIT` for all parents would leave later parents empty).

`totalCount` is a separate grouped `count(*)`, run only when the field is selected.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    Text,
    and_,
    cast,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from db.settings import Settings
from graph.sql_json import iso_datetime

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

BAD_USER_INPUT = "BAD_USER_INPUT"
# Sort keys compared in Python as another type than their column's (money as a float).
PYTHON_TYPES: dict[type, type] = {decimal.Decimal: float}


def user_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})


@strawberry.enum(description="Sort direction.")
class Direction(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type(description="Where a page sits in its list (Relay cursor connections).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when `after` was given: keyset pages do not look backwards."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Pass as `after` to continue after this item.")
    node: T


@strawberry.type(description="One page of a list; see `pageInfo` to continue.")
class Connection(Generic[T]):
    page: strawberry.Private[Page]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The items of this page, in order.")
    def nodes(self) -> list[T]:
        return self.page.items

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        cursor = self.page.cursor
        return [Edge(cursor=cursor(index), node=item) for index, item in enumerate(self.page.items)]

    @strawberry.field(description="How many items the list holds in all pages (filters apply).")
    async def total_count(self) -> int:
        return await self.count()


@dataclass(frozen=True)
class ListArgs(Generic[K]):
    """A connection's arguments: filter, order and page, one batch per distinct value."""

    filter: K
    order: Ordering
    page: PageRequest


@dataclass(frozen=True)
class PageRequest:
    """Validated `first` / `after`: the page size and the decoded cursor."""

    first: int
    after: tuple[Any, ...] | None


def page_request(
    settings: Settings, first: int | None, after: str | None, order: Ordering
) -> PageRequest:
    if first is None:
        first = settings.default_page_size
    if first < 0:
        raise user_error("`first` must not be negative.")
    if first > settings.max_page_size:
        raise user_error(
            f"`first` is {first}, more than the maximum page size {settings.max_page_size};"
            " ask for fewer and follow `pageInfo.endCursor`."
        )
    return PageRequest(first=first, after=None if after is None else order.decode(after))


@dataclass(frozen=True)
class Ordering:
    """A sort key (a column, NULLs sorting last in ascending order) and a direction."""

    column: str
    python_type: type
    nullable: bool
    direction: Direction = Direction.ASC

    @classmethod
    def of(cls, table: Table, name: str, direction: Direction) -> Ordering:
        """The order by `table`'s column `name`: the key's type and whether it can be null
        are the column's."""
        column = table.c[name]
        python_type = PYTHON_TYPES.get(column.type.python_type, column.type.python_type)
        return cls(name, python_type, bool(column.nullable), direction)

    def cursor_sql(self, table: FromClause) -> ColumnElement[Any]:
        """The cursor of each row, made by PostgreSQL for both paths (graph/rendering too):
        the URL-safe base64 of the JSON array [column, sort key, id], which `decode` reads."""
        value = self.key(table)
        if self.python_type is datetime:
            value = iso_datetime(value)
        payload = func.json_build_array(literal(self.column, Text), value, cast(table.c.id, Text))
        encoded = func.encode(func.convert_to(cast(payload, Text), "UTF8"), "base64")
        return func.translate(encoded, "+/\n", "-_")

    def key(self, table: FromClause) -> ColumnElement[Any]:
        column = table.c[self.column]
        if not self.nullable:
            return column
        return func.coalesce(column, literal(_greatest(self.python_type), column.type))

    def order_by(self, table: FromClause) -> list[ColumnElement[Any]]:
        if self.direction is Direction.ASC:
            return [self.key(table).asc(), table.c.id.asc()]
        return [self.key(table).desc(), table.c.id.desc()]

    def after(self, table: FromClause, cursor: tuple[Any, ...]) -> ColumnElement[bool]:
        row = tuple_(self.key(table), table.c.id)
        value = tuple_(*(literal(part) for part in cursor))
        return row > value if self.direction is Direction.ASC else row < value

    def decode(self, cursor: str) -> tuple[Any, ...]:
        try:
            column, value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            if column != self.column:
                raise ValueError(column)
            return (_from_json(self.python_type, value), uuid.UUID(row_id))
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
            raise user_error(
                "`after` is not a cursor of this list in this order; pass a `cursor` or"
                " `pageInfo.endCursor` it returned."
            ) from None


def _greatest(python_type: type) -> Any:
    if python_type is float:
        return float("inf")
    if python_type is int:
        return 2**31 - 1
    if python_type is datetime:
        return datetime.max
    return "\uffff"


def _from_json(python_type: type, value: Any) -> Any:
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is float:
        return float(value)
    if python_type is int:
        # Outside int4 the database would refuse the parameter; that is a bad cursor, not a bug.
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
            raise ValueError(value)
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    return value


@dataclass
class Page:
    """One parent's page: its items and the cursor of each."""

    items: list[Any]
    cursors: list[str]
    has_next_page: bool

    def cursor(self, index: int) -> str:
        return self.cursors[index]


async def fetch_pages(
    fetch: Callable[[Any], Awaitable[Sequence[Any]]],
    table: Table,
    parent: KeyedColumnElement[Any] | None,
    parents: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    order: Ordering,
    page: PageRequest,
    make: Callable[[Any], Any],
) -> list[Page]:
    """Each parent's page in one statement; `parent=None` pages the whole table as one list.

    Each parent's rows are a `LATERAL` subquery with its own `ORDER BY ... LIMIT`, so an index on
    (parent, sort key) reads a page and stops, whatever the statistics say.
    """
    where = list(conditions)
    if page.after is not None:
        where.append(order.after(table, page.after))
    ordering = order.order_by(table)
    position = func.row_number().over(order_by=ordering).label("_position")
    ranked = select(table, position).where(and_(true(), *where)).order_by(*ordering)
    ranked = ranked.limit(page.first + 1)
    inner: FromClause
    if parent is None:
        inner = ranked.subquery()
        source: FromClause = inner
        parent_key: Any = literal(None)
        sequence = [inner.c._position]
    else:
        parent_ids = (
            func.unnest(literal(list(parents), _array_of(parent)))
            .table_valued("id", with_ordinality="ordinal")
            .render_derived(name="parent")
        )
        inner = ranked.where(parent == parent_ids.c.id).lateral()
        source = parent_ids.join(inner, true())
        parent_key = parent_ids.c.id
        sequence = [parent_ids.c.ordinal, inner.c._position]
    # the parent and the cursor first, read by position; then the row
    keys = [parent_key.label("_parent"), order.cursor_sql(inner).label("_cursor")]
    statement = select(*keys, inner).select_from(source).order_by(*sequence)
    grouped: dict[Any, list[Any]] = {key: [] for key in parents}
    single = parents[0] if parent is None else None
    for row in await fetch(statement):
        grouped[single if parent is None else row[0]].append(row)
    pages = []
    for key in parents:
        rows = grouped[key]
        shown = rows[: page.first]
        pages.append(
            Page(
                items=[make(row) for row in shown],
                cursors=[row[1] for row in shown],
                has_next_page=len(rows) > page.first,
            )
        )
    return pages


async def fetch_counts(
    fetch: Callable[[Any], Awaitable[Sequence[Any]]],
    table: Table,
    parent: KeyedColumnElement[Any] | None,
    parents: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
) -> list[int]:
    where = list(conditions)
    if parent is None:
        rows = await fetch(select(func.count()).select_from(table).where(and_(true(), *where)))
        return [rows[0][0]] * len(parents)
    where.append(parent == func.any(literal(list(parents), _array_of(parent))))
    statement = select(parent, func.count()).select_from(table).where(and_(*where)).group_by(parent)
    counts = {row[0]: row[1] for row in await fetch(statement)}
    return [counts.get(key, 0) for key in parents]


def _array_of(column: KeyedColumnElement[Any]) -> Any:
    from sqlalchemy.dialects.postgresql import ARRAY

    return ARRAY(column.type)


def connection(page: Page, after_given: bool, count: Callable[[], Awaitable[int]]) -> Any:
    return Connection(
        page=page,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after_given,
            start_cursor=page.cursor(0) if page.items else None,
            end_cursor=page.cursor(len(page.items) - 1) if page.items else None,
        ),
        count=count,
    )


__all__ = [
    "Connection",
    "Direction",
    "Edge",
    "Ordering",
    "Page",
    "PageInfo",
    "PageRequest",
    "connection",
    "fetch_counts",
    "fetch_pages",
    "page_request",
    "user_error",
]
