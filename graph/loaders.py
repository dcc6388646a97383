"""Every database read of the GraphQL layer, as dataloaders built per request.

Each loader is named `<thing>_by_<key>` and has the same body: one statement for the whole batch
(`= ANY($1)`), a dict, values in key order; `None` for a missing object and `[]` for a to-many key
with no rows. Loaders whose key carries arguments (filters, page) batch the keys per distinct
arguments, so a query costs one statement per list field and argument set, however many rows come
back. Every statement only sees rows of conversations the viewer may read (`graph.permissions`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    Table,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from strawberry.dataloader import DataLoader

from graph import filters as f
from graph.api_calls import ApiCall
from graph.clusters import Cluster
from graph.conversations import Conversation
from graph.edits import Edit
from graph.filters import (
    ApiCallFilter,
    ConversationFilter,
    EditFilter,
    NodeFilter,
    RelationshipFilter,
    UtteranceFilter,
)
from graph.nodes import ThreadNode
from graph.pagination import Ordering, Page, PageRequest, fetch_counts, fetch_pages
from graph.permissions import visible_conversation_ids, visible_to
from graph.relationships import Relationship
from graph.relay import from_row
from graph.rendering import Plan, Rendered, render
from graph.utterances import Utterance

if TYPE_CHECKING:
    from graph.context import Context

K = TypeVar("K", bound=Hashable)
A = TypeVar("A", bound=Hashable)
V = TypeVar("V")

UUIDS = ARRAY(PG_UUID(as_uuid=True))
# Row ids are `RowId` at run time; the types declare them `strawberry.ID`, so keys are loose.
RowId = Any
# The tables `node(id:)` looks an id up in, with the type each one's rows become.
KINDS: dict[str, tuple[Table, type]] = {
    "conversation": (f.conversations, Conversation),
    "node": (f.nodes, ThreadNode),
    "relationship": (f.relationships, Relationship),
    "cluster": (f.clusters, Cluster),
    "utterance": (f.utterances, Utterance),
    "edit": (f.edits, Edit),
    "api_call": (f.api_calls, ApiCall),
}
MAX_ANCESTORS = 1000


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
    kind: [
        (column.key, converter)
        for column in table.c
        if (converter := _converter(column)) is not None
    ]
    for kind, (table, _) in KINDS.items()
}


def from_json(kind: str, data: dict[str, Any]) -> Any:
    for name, convert in CONVERTERS[kind]:
        data[name] = convert(data.get(name))
    return from_row(KINDS[kind][1], data)


@dataclass(frozen=True)
class ListArgs(Generic[A]):
    """A connection's arguments: filter, order and page, one batch per distinct value."""

    filter: A
    order: Ordering
    page: PageRequest
    render: Plan | None = None


def any_key(column: ColumnElement[Any], keys: Sequence[Any]) -> ColumnElement[bool]:
    return column == func.any(literal(list(keys), UUIDS))


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
    """The request's loaders; see the module docstring."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._scoped: dict[tuple[str, ...], Loaders] = {}
        self.fetch = context.fetch
        self.viewer_id = context.viewer_id

    # Each loader is built on first use: a request uses a few of them, and `at` makes one set of
    # loaders per field of the query.

    @cached_property
    def conversation_by_id(self) -> DataLoader[RowId, Conversation | None]:
        return DataLoader(self._conversation_by_id)

    @cached_property
    def node_by_id(self) -> DataLoader[RowId, ThreadNode | None]:
        return self._by_id(f.nodes, ThreadNode)

    @cached_property
    def relationship_by_id(self) -> DataLoader[RowId, Relationship | None]:
        return self._by_id(f.relationships, Relationship)

    @cached_property
    def cluster_by_id(self) -> DataLoader[RowId, Cluster | None]:
        return self._by_id(f.clusters, Cluster)

    @cached_property
    def utterance_by_id(self) -> DataLoader[RowId, Utterance | None]:
        return self._by_id(f.utterances, Utterance)

    @cached_property
    def edit_by_id(self) -> DataLoader[RowId, Edit | None]:
        return self._by_id(f.edits, Edit)

    @cached_property
    def api_call_by_id(self) -> DataLoader[RowId, ApiCall | None]:
        return self._by_id(f.api_calls, ApiCall)

    @cached_property
    def object_by_id(self) -> DataLoader[RowId, Any]:
        return DataLoader(self._object_by_id)

    @cached_property
    def ancestors_by_node_id(self) -> DataLoader[RowId, list[ThreadNode]]:
        return DataLoader(self._ancestors_by_node_id)

    @cached_property
    def clusters_by_node_id(self) -> DataLoader[RowId, list[Cluster]]:
        return DataLoader(self._clusters_by_node_id)

    @cached_property
    def utterances_by_node_id(self) -> DataLoader[RowId, list[Utterance]]:
        return self._many_by(
            f.utterances, f.utterances.c.node_id, Utterance, f.utterances.c.sequence_number
        )

    @cached_property
    def edits_by_node_id(self) -> DataLoader[RowId, list[Edit]]:
        return DataLoader(self._edits_by_node_id)

    @cached_property
    def relationships_by_from_node_id(
        self,
    ) -> GroupedLoader[RowId, RelationshipFilter, list[Relationship]]:
        return GroupedLoader(self._relationships_by("from_node_id"))

    @cached_property
    def relationships_by_to_node_id(
        self,
    ) -> GroupedLoader[RowId, RelationshipFilter, list[Relationship]]:
        return GroupedLoader(self._relationships_by("to_node_id"))

    @cached_property
    def clusters_by_conversation_id(self) -> GroupedLoader[RowId, int | None, list[Cluster]]:
        return GroupedLoader(self._clusters_by_conversation_id)

    @cached_property
    def nodes_by_conversation_id(
        self,
    ) -> GroupedLoader[RowId, tuple[NodeFilter, Plan | None], list[Any]]:
        return GroupedLoader(self._nodes_by_conversation_id)

    @cached_property
    def conversations_page(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.conversations, None, Conversation)

    @cached_property
    def conversations_count(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.conversations, None)

    @cached_property
    def nodes_page_by_conversation_id(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.nodes, "conversation_id", ThreadNode)

    @cached_property
    def nodes_count_by_conversation_id(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.nodes, "conversation_id")

    @cached_property
    def utterances_page_by_conversation_id(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.utterances, "conversation_id", Utterance)

    @cached_property
    def utterances_count_by_conversation_id(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.utterances, "conversation_id")

    @cached_property
    def relationships_page_by_conversation_id(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.relationships, "conversation_id", Relationship)

    @cached_property
    def relationships_count_by_conversation_id(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.relationships, "conversation_id")

    @cached_property
    def edits_page_by_conversation_id(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.edits, "conversation_id", Edit)

    @cached_property
    def edits_count_by_conversation_id(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.edits, "conversation_id")

    @cached_property
    def api_calls_page_by_conversation_id(self) -> GroupedLoader[Any, ListArgs[Any], Page]:
        return self._pages(f.api_calls, "conversation_id", ApiCall)

    @cached_property
    def api_calls_count_by_conversation_id(self) -> GroupedLoader[Any, Any, int]:
        return self._counts(f.api_calls, "conversation_id")

    def forget(self) -> None:
        """Drops every loader's cache: the request is done, and its rows are garbage now, not
        at the next full collection (context and loaders refer to each other)."""
        for scoped in self._scoped.values():
            scoped.forget()
        self._scoped.clear()
        for value in vars(self).values():
            if isinstance(value, DataLoader):
                value.clear_all()

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
        """Rows of `table` the viewer may read: those of conversations visible to them.

        security: the owner's soft-deleted conversations pass here, so that a conversation the
        owner asked for explicitly can be traversed; the root fields leave them out unless asked
        (`ConversationFilter.include_deleted`, `graph.queries`). Nobody else ever sees them.
        """
        if table is f.conversations:
            return visible_to(self.viewer_id, include_deleted=True)
        return table.c.conversation_id.in_(
            visible_conversation_ids(self.viewer_id, include_deleted=True)
        )

    # -- by id ------------------------------------------------------------------------------

    async def _conversation_by_id(self, keys: list[RowId]) -> list[Conversation | None]:
        table = f.conversations
        rows = await self.fetch(
            select(*self._columns(table)).where(any_key(table.c.id, keys), self.visible(table))
        )
        found = {row.id: from_row(Conversation, row) for row in rows}
        return [found.get(key) for key in keys]

    def _by_id(self, table: Table, kind: type[V]) -> DataLoader[RowId, V | None]:
        async def load(keys: list[RowId]) -> list[V | None]:
            rows = await self.fetch(
                select(table).where(any_key(table.c.id, keys), self.visible(table))
            )
            found = {row.id: from_row(kind, row) for row in rows}
            return [found.get(key) for key in keys]

        return DataLoader(load)

    async def _object_by_id(self, keys: list[RowId]) -> list[Any]:
        """Any object by id, whatever its table: one UNION ALL over the seven tables.

        Each branch returns its rows as JSON (`to_jsonb`), converted back to Python values
        column by column, so that objects of any mix of types cost one statement.
        """
        parameter = literal(list(keys), UUIDS)
        branches = []
        for kind, (table, _) in KINDS.items():
            row: Any = func.to_jsonb(table.table_valued())
            if table is f.conversations:
                row = row.op("-")(literal("tsv_search"))
            branches.append(
                select(literal(kind).label("kind"), table.c.id, row.label("row")).where(
                    table.c.id == func.any(parameter), self.visible(table)
                )
            )
        found = {
            row.id: from_json(row.kind, row.row) for row in await self.fetch(union_all(*branches))
        }
        return [found.get(key) for key in keys]

    # -- to-many ----------------------------------------------------------------------------

    def _many_by(
        self, table: Table, column: Any, kind: type[V], *order_by: Any
    ) -> DataLoader[RowId, list[V]]:
        async def load(keys: list[RowId]) -> list[list[V]]:
            rows = await self.fetch(
                select(table)
                .where(any_key(column, keys), self.visible(table))
                .order_by(*order_by, table.c.id)
            )
            found: dict[RowId, list[V]] = {key: [] for key in keys}
            for row in rows:
                found[row._mapping[column.key]].append(from_row(kind, row))
            return [found[key] for key in keys]

        return DataLoader(load)

    def _relationships_by(
        self, end: str
    ) -> Callable[[RelationshipFilter, list[RowId]], Awaitable[list[list[Relationship]]]]:
        table = f.relationships
        column = table.c[end]

        async def load(
            relationship_filter: RelationshipFilter, keys: list[RowId]
        ) -> list[list[Relationship]]:
            rows = await self.fetch(
                select(table)
                .where(
                    any_key(column, keys), self.visible(table), *relationship_filter.conditions()
                )
                .order_by(column, table.c.created_at, table.c.id)
            )
            found: dict[RowId, list[Relationship]] = {key: [] for key in keys}
            for row in rows:
                found[row._mapping[end]].append(from_row(Relationship, row))
            return [found[key] for key in keys]

        return load

    async def _clusters_by_node_id(self, keys: list[RowId]) -> list[list[Cluster]]:
        table = f.clusters
        # `&&` so that the GIN index on node_ids finds the clusters holding any of the nodes.
        rows = await self.fetch(
            select(table)
            .where(table.c.node_ids.op("&&")(literal(list(keys), UUIDS)), self.visible(table))
            .order_by(table.c.level, table.c.cluster_name, table.c.id)
        )
        found: dict[RowId, list[Cluster]] = {key: [] for key in keys}
        for row in rows:
            cluster = from_row(Cluster, row)
            for node_id in row.node_ids or ():
                members = found.get(node_id)
                if members is not None:
                    members.append(cluster)
        return [found[key] for key in keys]

    async def _edits_by_node_id(self, keys: list[RowId]) -> list[list[Edit]]:
        table = f.edits
        rows = await self.fetch(
            select(table)
            .where(
                table.c.target_type == "node", any_key(table.c.target_id, keys), self.visible(table)
            )
            .order_by(table.c.created_at.desc(), table.c.id.desc())
        )
        found: dict[RowId, list[Edit]] = {key: [] for key in keys}
        for row in rows:
            found[row.target_id].append(from_row(Edit, row))
        return [found[key] for key in keys]

    async def _ancestors_by_node_id(self, keys: list[RowId]) -> list[list[ThreadNode]]:
        """Each node's parent, grandparent, ... up to the root: one recursive CTE per batch."""
        table = f.nodes
        start = (
            select(
                table.c.id.label("start_id"),
                table.c.parent_id.label("ancestor_id"),
                literal(1, Integer).label("depth"),
            )
            .where(any_key(table.c.id, keys), table.c.parent_id.is_not(None))
            .cte("walk", recursive=True)
        )
        parent = table.alias("parent")
        walk = start.union_all(
            select(start.c.start_id, parent.c.parent_id, start.c.depth + 1).where(
                parent.c.id == start.c.ancestor_id,
                parent.c.parent_id.is_not(None),
                # A loop in stored data must not walk forever.
                start.c.depth < MAX_ANCESTORS,
            )
        )
        rows = await self.fetch(
            select(walk.c.start_id, table)
            .join(table, table.c.id == walk.c.ancestor_id)
            .where(self.visible(table))
            .order_by(walk.c.start_id, walk.c.depth)
        )
        found: dict[RowId, list[ThreadNode]] = {key: [] for key in keys}
        for row in rows:
            found[row.start_id].append(from_row(ThreadNode, row))
        return [found[key] for key in keys]

    async def _clusters_by_conversation_id(
        self, level: int | None, keys: list[RowId]
    ) -> list[list[Cluster]]:
        table = f.clusters
        where = [any_key(table.c.conversation_id, keys), self.visible(table)]
        if level is not None:
            where.append(table.c.level == level)
        rows = await self.fetch(
            select(table).where(*where).order_by(table.c.level, table.c.cluster_name, table.c.id)
        )
        found: dict[RowId, list[Cluster]] = {key: [] for key in keys}
        for row in rows:
            found[row.conversation_id].append(from_row(Cluster, row))
        return [found[key] for key in keys]

    async def _nodes_by_conversation_id(
        self, arguments: tuple[NodeFilter, Plan | None], keys: list[RowId]
    ) -> list[list[Any]]:
        """With a plan, each node comes as the JSON PostgreSQL rendered (graph.rendering)."""
        node_filter, plan = arguments
        table = f.nodes
        where = [any_key(table.c.conversation_id, keys), self.visible(table)]
        statement = select(table).where(*where, *node_filter.conditions())
        source: FromClause = table
        if plan is not None:
            # The rows are found first (OFFSET 0 keeps the planner from flattening the subquery
            # and choosing its plan by the rendering's cost), then rendered.
            source = statement.offset(0).subquery()
            statement = select(
                source.c.conversation_id, render(plan, source, self.visible).label("doc")
            )
        rows = await self.fetch(
            statement.order_by(source.c.conversation_id, source.c.timestamp_start, source.c.id)
        )
        found: dict[RowId, list[Any]] = {key: [] for key in keys}
        for row in rows:
            item = from_row(ThreadNode, row) if plan is None else Rendered(row.doc)
            found[row.conversation_id].append(item)
        self.context.to_empty.extend(found.values())
        return [found[key] for key in keys]

    # -- connections ------------------------------------------------------------------------

    def _pages(
        self, table: Table, parent: str | None, kind: type
    ) -> GroupedLoader[Any, ListArgs[Any], Page]:
        parent_column = table.c[parent] if parent is not None else None

        async def load(arguments: ListArgs[Any], keys: list[Any]) -> list[Page]:
            plan = arguments.render
            pages = await fetch_pages(
                self.fetch,
                table,
                parent_column,
                keys,
                [self.visible(table), *arguments.filter.conditions()],
                arguments.order,
                arguments.page,
                (lambda row: from_row(kind, row))
                if plan is None
                else (lambda row: Rendered(row[-1])),
                None if plan is None else (lambda source: render(plan, source, self.visible)),
            )
            for page in pages:
                self.context.to_empty.extend((page.items, page.keys))
            return pages

        return GroupedLoader(load)

    def _counts(self, table: Table, parent: str | None) -> GroupedLoader[Any, Any, int]:
        parent_column = table.c[parent] if parent is not None else None

        async def load(list_filter: Any, keys: list[Any]) -> list[int]:
            return await fetch_counts(
                self.fetch,
                table,
                parent_column,
                keys,
                [self.visible(table), *list_filter.conditions()],
            )

        return GroupedLoader(load)

    @staticmethod
    def _columns(table: Table) -> list[Any]:
        return [column for column in table.c if column.key != "tsv_search"]


__all__ = [
    "KINDS",
    "ApiCallFilter",
    "ConversationFilter",
    "EditFilter",
    "GroupedLoader",
    "ListArgs",
    "Loaders",
    "NodeFilter",
    "RelationshipFilter",
    "UtteranceFilter",
]
