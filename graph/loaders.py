"""Every database read of the GraphQL layer, as dataloaders built per request.

Three families, each with one body: `by_id(kind)` (one `= ANY($1)` statement for a batch of ids,
`None` for a missing or hidden object), `of(relation)` (a relation's rows for a batch of parents,
see graph/relations.py) and `pages(relation)` / `counts(relation)` (cursor connections, paged per
parent). Loaders whose key carries arguments (filters, page, a rendering plan) batch the keys per
distinct arguments, so a query costs one statement per list field and argument set, however many
rows come back. Every statement only sees rows of conversations the viewer may read
(`Loaders.visible`, from graph/permissions.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    bindparam,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from strawberry.dataloader import DataLoader

from graph.pagination import ListArgs, Page, fetch_counts, fetch_pages
from graph.permissions import visible_rows
from graph.registry import KINDS, UNREAD_COLUMNS, columns
from graph.relations import STATEMENTS, UUIDS, Paged, Relation
from graph.relay import from_row

if TYPE_CHECKING:
    from graph.context import Context

K = TypeVar("K", bound=Hashable)
A = TypeVar("A", bound=Hashable)
V = TypeVar("V")

# Row ids are `uuid.UUID` at run time; the types declare them `strawberry.ID`, so keys are loose.
RowId = Any


def _converter(column: Any) -> Callable[[Any], Any] | None:
    """How a column's JSON value (from `to_jsonb`) becomes the value asyncpg would give."""
    column_type = column.type
    if isinstance(column_type, ARRAY) and isinstance(column_type.item_type, PG_UUID):
        return lambda value: None if value is None else [uuid.UUID(item) for item in value]
    if isinstance(column_type, PG_UUID):
        return lambda value: None if value is None else uuid.UUID(value)
    if isinstance(column_type, DateTime):
        return lambda value: None if value is None else datetime.fromisoformat(value)
    return None


CONVERTERS: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
    name: [
        (column.key, converter)
        for column in kind.table.c
        if (converter := _converter(column)) is not None
    ]
    for name, kind in KINDS.items()
}


def from_json(kind: str, data: dict[str, Any]) -> Any:
    """An object of `kind` from its row as JSON (`to_jsonb`)."""
    for name, convert in CONVERTERS[kind]:
        data[name] = convert(data.get(name))
    return from_row(KINDS[kind].graphql_type, data)


class GroupedLoader(DataLoader[tuple[K, A], V]):
    """Keys are (parent, arguments); one `load_group(arguments, parents)` call per arguments."""

    def __init__(self, load_group: Callable[[A, list[K]], Awaitable[Sequence[V]]]) -> None:
        async def load(keys: list[tuple[K, A]]) -> list[V]:
            groups: dict[A, list[K]] = {}
            for parent, arguments in keys:
                groups.setdefault(arguments, []).append(parent)
            found: dict[tuple[K, A], V] = {}
            for arguments, parents in groups.items():
                values = await load_group(arguments, parents)
                found.update(zip(((parent, arguments) for parent in parents), values, strict=True))
            return [found[key] for key in keys]

        super().__init__(load)


def field_path(path: Any) -> tuple[str, ...]:
    keys = []
    while path is not None:
        if isinstance(path.key, str):
            keys.append(path.key)
        path = path.prev
    return tuple(keys)


class Loaders:
    """The request's loaders; see the module docstring. Also the `Scope` (graph/relations.py)
    the statements are built in: who asks and what they may read."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._scoped: dict[tuple[str, ...], Loaders] = {}
        # built on first use: a request uses a few of them
        self._loaders: dict[Any, DataLoader[Any, Any]] = {}
        self.fetch = context.fetch
        self.viewer_id = context.viewer_id

    def _loader(self, key: Any, make: Callable[[], DataLoader[Any, Any]]) -> Any:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = make()
        return loader

    def by_id(self, kind: str) -> DataLoader[RowId, Any]:
        """Objects of `kind` by id."""
        return self._loader(("by_id", kind), lambda: DataLoader(self._by_id(kind)))

    # the loaders other modules name
    @property
    def conversation_by_id(self) -> DataLoader[RowId, Any]:
        return self.by_id("conversation")

    @property
    def node_by_id(self) -> DataLoader[RowId, Any]:
        return self.by_id("node")

    @property
    def relationship_by_id(self) -> DataLoader[RowId, Any]:
        return self.by_id("relationship")

    @property
    def cluster_by_id(self) -> DataLoader[RowId, Any]:
        return self.by_id("cluster")

    @property
    def utterance_by_id(self) -> DataLoader[RowId, Any]:
        return self.by_id("utterance")

    @property
    def object_by_id(self) -> DataLoader[RowId, Any]:
        """Any object by id, whatever its table."""
        return self._loader("object_by_id", lambda: DataLoader(self._object_by_id))

    def of(self, relation: Relation) -> GroupedLoader[RowId, Any, list[Any]]:
        """A relation's rows by parent id (and arguments)."""
        return self._loader(
            relation,
            lambda: GroupedLoader(lambda key, parents: relation.batch(self, key, parents)),
        )

    def rendered(self, relation: Relation) -> GroupedLoader[RowId, Any, Any]:
        """A relation's whole field rendered by PostgreSQL, by parent id (and selection)."""
        return self._loader(
            ("rendered", relation),
            lambda: GroupedLoader(
                lambda arguments, parents: relation.batch_rendered(self, arguments, parents)
            ),
        )

    def pages(self, relation: Paged) -> GroupedLoader[Any, ListArgs[Any], Page]:
        """A connection's page by parent id (None for a root list)."""
        return self._loader(("pages", relation), lambda: self._pages(relation))

    def counts(self, relation: Paged) -> GroupedLoader[Any, Any, int]:
        """A connection's `totalCount` by parent id (None for a root list)."""
        return self._loader(("counts", relation), lambda: self._counts(relation))

    def forget(self) -> None:
        """Drops every loader's cache: the request is done, and its rows are garbage now, not
        at the next full collection (context and loaders refer to each other)."""
        for scoped in self._scoped.values():
            scoped.forget()
        self._scoped.clear()
        for loader in self._loaders.values():
            loader.clear_all()
        self._loaders.clear()

    def at(self, info: Any) -> Loaders:
        """The loaders of one field of the query (its path without list indices).

        Loads from different fields of a query arrive at moments that depend on when their
        parents' rows came back, so a loader shared by all fields would batch them differently
        from run to run. One set of loaders per field makes a query's statement count a function
        of its shape: one statement per field and argument set.
        """
        key = field_path(info.path)
        scoped = self._scoped.get(key)
        if scoped is None:
            scoped = self._scoped[key] = Loaders(self.context)
        return scoped

    # -- visibility -------------------------------------------------------------------------

    def visible(self, table: FromClause) -> ColumnElement[bool]:
        return visible_rows(self.viewer_id, table)

    @property
    def settings(self) -> Any:
        return self.context.settings

    # -- by id ------------------------------------------------------------------------------

    def _by_id(self, kind: str) -> Callable[[list[RowId]], Awaitable[list[Any]]]:
        table = KINDS[kind].table
        make = KINDS[kind].graphql_type

        def build() -> Any:
            return select(*columns(table)).where(
                table.c.id == func.any(bindparam("ids", type_=UUIDS)), self.visible(table)
            )

        async def load(keys: list[RowId]) -> list[Any]:
            statement = STATEMENTS.get(("by_id", kind, self.viewer_id), build)
            rows = await self.fetch(statement, {"ids": list(keys)})
            found: dict[Any, Any] = {row.id: from_row(make, row) for row in rows}
            return [found.get(key) for key in keys]

        return load

    async def _object_by_id(self, keys: list[RowId]) -> list[Any]:
        """Any object by id, whatever its table: one UNION ALL over the tables of the registry.

        Each branch returns its rows as JSON (`to_jsonb`), converted back to Python values
        column by column, so that objects of any mix of types cost one statement.
        """
        statement = STATEMENTS.get(("object_by_id", self.viewer_id), self._objects_by_id)
        found = {
            row.id: from_json(row.kind, row.row)
            for row in await self.fetch(statement, {"ids": list(keys)})
        }
        return [found.get(key) for key in keys]

    def _objects_by_id(self) -> Any:
        parameter = bindparam("ids", type_=UUIDS)
        branches = []
        for name, kind in KINDS.items():
            table = kind.table
            row: Any = func.to_jsonb(table.table_valued())
            for unread in UNREAD_COLUMNS & set(table.c.keys()):
                row = row.op("-")(literal(unread))
            branches.append(
                select(literal(name).label("kind"), table.c.id, row.label("row")).where(
                    table.c.id == func.any(parameter), self.visible(table)
                )
            )
        return union_all(*branches)

    # -- connections ------------------------------------------------------------------------

    def _pages(self, relation: Paged) -> GroupedLoader[Any, ListArgs[Any], Page]:
        table = relation.kind.table
        parent_column = table.c[relation.column] if relation.column else None
        make = relation.kind.graphql_type

        async def load(arguments: ListArgs[Any], keys: list[Any]) -> list[Page]:
            pages = await fetch_pages(
                self.fetch,
                table,
                parent_column,
                keys,
                [self.visible(table), *arguments.filter.conditions()],
                arguments.order,
                arguments.page,
                lambda row: from_row(make, row),
            )
            for page in pages:
                self.context.to_empty.extend((page.items, page.cursors))
            return pages

        return GroupedLoader(load)

    def _counts(self, relation: Paged) -> GroupedLoader[Any, Any, int]:
        table = relation.kind.table
        parent_column = table.c[relation.column] if relation.column else None

        async def load(list_filter: Any, keys: list[Any]) -> list[int]:
            return await fetch_counts(
                self.fetch,
                table,
                parent_column,
                keys,
                [self.visible(table), *list_filter.conditions()],
            )

        return GroupedLoader(load)


__all__ = ["GroupedLoader", "ListArgs", "Loaders", "from_json"]
