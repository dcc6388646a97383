"""Relation fields, each declared once, next to the type it belongs to.

A relation says which rows of which kind a field of a parent row reaches, in which order, with
which argument filters. Everything else is derived from that one declaration:

- `render(selected, parent, scope)`: the rows as a correlated subquery that renders them as JSON
  inside the parent's statement (graph/rendering), so a list of parents with this field selected
  is one statement;
- the resolver's body, `resolve(root, info, **arguments)`: when PostgreSQL can render all that
  is selected under the field, the whole field for a batch of parents in one statement
  (`batch_rendered`, built from `render`), one JSON value per parent; otherwise (or with
  `LCT_RENDER_IN_DATABASE=false`) a per-request loader that fetches the rows for a batch of
  parents in one statement (`batch`: `unnest` of the parents' ids joined `LATERAL` to the rows
  each one reaches), for the resolvers below to build field by field;
- `metadata`: the field's weight in the query-cost limit (graph/limits, `ESTIMATED_SIZE`).

Every path builds its SQL from the same `rows(parent, scope, key)`: the target rows, their order
and the conditions that match them to a parent, visibility included. A new traversal is one
declaration and a two-line resolver; a new filter argument is one parameter of its `key`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.sql.util import ClauseAdapter

from graph.limits import ESTIMATED_SIZE
from graph.pagination import Direction, ListArgs, Ordering, connection, page_request
from graph.permissions import found_live
from graph.registry import KINDS, RELATION, Kind, columns, kind_of
from graph.relay import from_row
from graph.rendering.compiler import render_object
from graph.rendering.planner import Plan, Selected, Unsupported, field_selection
from graph.sql_json import EMPTY_LIST, build_object
from graph.strawberry_adapter import Rendered

UUIDS = ARRAY(PG_UUID(as_uuid=True))
MAX_ANCESTORS = 1000

Key = Callable[..., Hashable]
"""A relation's arguments (Python names, enums as their values) as a hashable filter."""


def no_arguments() -> None:
    return None


class Scope:
    """What a statement needs to know about the request: who asks, and what they may read."""

    viewer_id: str | None
    settings: Any

    def visible(self, table: FromClause) -> ColumnElement[bool]:
        raise NotImplementedError


@dataclass
class Rows:
    """The target rows one parent reaches: an alias of the target table, the conditions that
    match them to the parent (visibility included) and their order."""

    alias: FromClause
    where: list[ColumnElement[bool]]
    order: list[Any]
    # what the rows are read from when that is more than the alias (a join)
    source: FromClause | None = None

    def select(self, *columns: Any) -> Select[Any]:
        statement = select(*columns)
        if self.source is not None:
            statement = statement.select_from(self.source)
        return statement.where(*self.where)


class StatementCache:
    """Built statements by what determines them (the declaration, the parents' kind, the
    selection, the viewer and the settings), least recently used dropped past `size`.

    A rendered canvas is a statement of some thousand SQL expressions: building it took longer
    than PostgreSQL took to run it. The statement holds no row and no request, only SQL.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._statements: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
            if len(self._statements) > self.size:
                self._statements.popitem(last=False)
        else:
            self._statements.move_to_end(key)
        return statement


STATEMENTS = StatementCache(512)


def visible_from(scope: Scope, alias: FromClause, parent: Any) -> ColumnElement[bool]:
    """Rows of `alias` the viewer may read, reached from a `parent` row they may read:
    visibility is per conversation, so a row of the parent's conversation needs no other check
    (and PostgreSQL checks the others with one hashed lookup instead of a join per row)."""
    if "conversation_id" in alias.c and parent is not None and "conversation_id" in parent.c:
        return or_(alias.c.conversation_id == parent.c.conversation_id, scope.visible(alias))
    if "conversation_id" in alias.c and parent is not None and "owner_id" in parent.c:
        return or_(alias.c.conversation_id == parent.c.id, scope.visible(alias))
    return scope.visible(alias)


def adapt(alias: FromClause, conditions: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """Conditions written against a table, moved onto an alias of it."""
    adapter = ClauseAdapter(alias)
    return [adapter.traverse(condition) for condition in conditions]


def plain(value: Any) -> Any:
    """An argument as the filters take it: an enum by its value, a list as a tuple."""
    if isinstance(value, list):
        return tuple(plain(item) for item in value)
    return getattr(value, "value", value)


@dataclass(eq=False)
class Relation:
    """The base of every declaration; see the module docstring."""

    target: str
    key: Key = no_arguments
    estimated_size: int = 1
    many: bool = True

    @property
    def kind(self) -> Kind:
        return KINDS[self.target]

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {RELATION: self}
        if self.many:
            metadata[ESTIMATED_SIZE] = self.estimated_size
        return metadata

    def field(self, **options: Any) -> Any:
        """`strawberry.field` for the resolver of this relation."""
        return strawberry.field(metadata=self.metadata, **options)

    def filter_of(self, arguments: dict[str, Any]) -> Hashable:
        return self.key(**{name: plain(value) for name, value in arguments.items()})

    def check(self, selected: Selected, settings: Any) -> None:
        """Raises `Unsupported` for arguments the resolver must answer (with its error)."""

    # -- the rows -------------------------------------------------------------------------

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        """The rows `parent` (a row source with the parent's columns) reaches."""
        raise NotImplementedError

    # -- the resolver: the whole field rendered, or the Python path ---------------------------

    # a list (or a connection) is rendered whole at a parent the resolvers built; one object is
    # not worth a statement of its own (`by_id` batches it with its siblings)
    renders_whole: bool = True

    async def resolve(self, root: Any, info: Any, **arguments: Any) -> Any:
        selected = field_selection(info) if self.renders_whole else None
        if selected is None:
            return await self.resolve_in_python(root, info, **arguments)
        await info.context.rendering(self.rows_rendered(selected, info.context.settings))
        loader = info.context.loaders.at(info).rendered(self)
        kind = None if root is None or not hasattr(root, "id") else kind_of(root).name
        return await loader.load((getattr(root, "id", None), (kind, selected)))

    def rows_rendered(self, selected: Selected, settings: Any) -> int:
        """How many items a rendering of the field holds, for the memory budget."""
        return int(settings.default_page_size)

    async def batch_rendered(
        self, scope: Any, arguments: tuple[str | None, Selected], parent_ids: list[Any]
    ) -> list[Rendered]:
        """The field of every parent (rows of `kind`) as one JSON value each, one statement."""
        kind, selected = arguments
        statement = STATEMENTS.get(
            (self, kind, selected, scope.viewer_id, id(scope.context.settings)),
            lambda: self.rendered_statement(kind, selected, scope),
        )
        if kind is None:  # a root list: one value, whatever asked for it
            (row,) = await scope.fetch(statement)
            return [Rendered(row[0])] * len(parent_ids)
        found = {
            row[0]: Rendered(row[1])
            for row in await scope.fetch(statement, {"parent_ids": list(parent_ids)})
        }
        return [found[parent_id] for parent_id in parent_ids]

    def rendered_statement(self, kind: str | None, selected: Selected, scope: Any) -> Any:
        """The statement of `batch_rendered`, the parents' ids a parameter (`parent_ids`)."""
        if kind is None:
            return select(cast(self.render(selected, None, scope), Text))
        parents = KINDS[kind].table.alias()
        return select(parents.c.id, cast(self.render(selected, parents, scope), Text)).where(
            parents.c.id == func.any(bindparam("parent_ids", type_=UUIDS))
        )

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        key = self.filter_of(arguments)
        return await info.context.loaders.at(info).of(self).load((root.id, key))

    async def batch(self, scope: Any, key: Hashable, parent_ids: list[Any]) -> list[list[Any]]:
        """Every parent's rows in one statement, as objects."""
        parents = (
            func.unnest(literal(list(parent_ids), UUIDS))
            .table_valued("id", with_ordinality="position")
            .render_derived(name="parent")
        )
        rows = self.rows(parents, scope, key)
        position = func.row_number().over(order_by=rows.order).label("_position")
        lateral = rows.select(*columns(rows.alias), position).lateral()
        statement = (
            select(parents.c.id.label("_parent"), lateral)
            .select_from(parents.join(lateral, true()))
            .order_by(parents.c.position, lateral.c._position)
        )
        found: dict[Any, list[Any]] = {parent_id: [] for parent_id in parent_ids}
        make = self.kind.graphql_type
        for row in await scope.fetch(statement):
            mapping = dict(row._mapping)
            parent_id = mapping.pop("_parent")
            mapping.pop("_position")
            found[parent_id].append(from_row(make, mapping))
        scope.context.to_empty.extend(found.values())
        return [found[parent_id] for parent_id in parent_ids]

    # -- the SQL path -----------------------------------------------------------------------

    def render(
        self, selected: Selected, parent: FromClause | None, scope: Any
    ) -> ColumnElement[Any]:
        assert selected.plan is not None
        rows = self.rows(parent, scope, self.filter_of(selected.python_arguments))
        document = render_object(selected.plan, rows.alias, scope)
        aggregate = func.json_agg(aggregate_order_by(document, *rows.order))
        return rows.select(func.coalesce(aggregate, EMPTY_LIST)).scalar_subquery()


@dataclass(eq=False)
class ToOne(Relation):
    """The row whose id the parent's `reference` column holds; null when missing or hidden."""

    reference: str = ""
    many: bool = False
    renders_whole: bool = False

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        return Rows(
            alias, [alias.c.id == parent.c[self.reference], visible_from(scope, alias, parent)], []
        )

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        reference = getattr(root, self.reference)
        if reference is None:
            return None
        return await info.context.loaders.at(info).by_id(self.target).load(reference)

    def render(
        self, selected: Selected, parent: FromClause | None, scope: Any
    ) -> ColumnElement[Any]:
        assert selected.plan is not None
        rows = self.rows(parent, scope, None)
        return rows.select(render_object(selected.plan, rows.alias, scope)).scalar_subquery()


@dataclass(eq=False)
class ById(Relation):
    """A root field: the row whose id the `id:` argument names; null when missing or hidden.
    A soft-deleted conversation is found only by its owner, and only with `includeDeleted`.

    Rendered, the id is the statement's parameter `id_<response key>`
    (graph/operations.py binds it per request), so every id shares one statement.
    """

    many: bool = False
    renders_whole: bool = False

    @staticmethod
    def parameter(selected: Selected) -> str:
        return f"id_{selected.key}"

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        where = [alias.c.id == parent, scope.visible(alias)]
        if "deleted_at" in alias.c and not key:
            where.append(alias.c.deleted_at.is_(None))
        return Rows(alias, where, [])

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        found = await info.context.loaders.at(info).by_id(self.target).load(arguments["id"])
        return found_live(found, include_deleted=bool(self.filter_of(arguments)))

    def filter_of(self, arguments: dict[str, Any]) -> Hashable:
        """Whether a soft-deleted row is asked for too."""
        return bool(arguments.get("include_deleted", False))

    def found(self, selected: Selected, scope: Any) -> Rows:
        """The row, its id the statement's parameter (given per request)."""
        identifier = bindparam(
            self.parameter(selected), type_=PG_UUID(as_uuid=True), required=False
        )
        return self.rows(identifier, scope, self.filter_of(selected.python_arguments))

    def render(
        self, selected: Selected, parent: FromClause | None, scope: Any
    ) -> ColumnElement[Any]:
        assert selected.plan is not None
        rows = self.found(selected, scope)
        return rows.select(render_object(selected.plan, rows.alias, scope)).scalar_subquery()


@dataclass(eq=False)
class Members(Relation):
    """The rows whose ids the parent's uuid[] `column` lists, in that order; hidden or missing
    ones left out, each once (at its first position).

    `id = ANY(column)` finds them by primary key (an `unnest` join lets the planner hash the
    whole table for every parent).
    """

    column: str = ""

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        listed = parent.c[self.column]
        return Rows(
            alias,
            [alias.c.id == func.any(listed), visible_from(scope, alias, parent)],
            [func.array_position(listed, alias.c.id)],
        )

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        listed = getattr(root, self.column)
        if not listed:
            return []
        loader = info.context.loaders.at(info).by_id(self.target)
        found = await loader.load_many(list(dict.fromkeys(listed)))
        return [item for item in found if item is not None]


@dataclass(eq=False)
class ToMany(Relation):
    """The rows whose `column` holds the parent's id, with `conditions` and the argument filter
    (`key`'s value has `conditions()` on the target table), in the target's natural order."""

    column: str = ""
    conditions: Callable[[FromClause], list[ColumnElement[bool]]] = field(default=lambda table: [])

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        table = self.kind.table
        where = [alias.c[self.column] == parent.c.id, visible_from(scope, alias, parent)]
        where += adapt(alias, self.conditions(table))
        if key is not None:
            where += adapt(alias, key.conditions())  # type: ignore[attr-defined]
        return Rows(alias, where, self.kind.order(alias))


@dataclass(eq=False)
class EitherEnd(Relation):
    """Rows with the parent's id in one of two columns (`ends`: the first end's rows first, each
    end's in the natural order), the ends chosen by the key's `ends` (`direction:`)."""

    ends: tuple[str, ...] = ()

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        chosen = key.ends if key is not None else self.ends  # type: ignore[attr-defined]
        where = [
            or_(*(alias.c[end] == parent.c.id for end in chosen)),
            visible_from(scope, alias, parent),
        ]
        if key is not None:
            where += adapt(alias, key.conditions())  # type: ignore[attr-defined]
        first_end_first = [alias.c[chosen[0]] != parent.c.id] if len(chosen) > 1 else []
        return Rows(alias, where, [*first_end_first, *self.kind.order(alias)])


@dataclass(eq=False)
class Containing(Relation):
    """The rows whose uuid[] `column` holds the parent's id (`@>`, which its GIN index serves)."""

    column: str = ""

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        holds = alias.c[self.column].op("@>")(array([parent.c.id]))
        return Rows(alias, [holds, visible_from(scope, alias, parent)], self.kind.order(alias))


@dataclass(eq=False)
class Ancestors(Relation):
    """The parent's `reference`, its `reference` and so on up to the root, nearest first.

    A recursive walk per parent; a loop in stored data stops at `MAX_ANCESTORS`.
    """

    reference: str = ""

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        table = self.kind.table
        step = table.alias()
        start = (
            select(step.c[self.reference].label("ancestor_id"), literal(1, Integer).label("depth"))
            .where(step.c.id == parent.c.id, step.c[self.reference].is_not(None))
            .correlate(parent)
            .cte(recursive=True, nesting=True)
        )
        above = table.alias()
        walk = start.union_all(
            select(above.c[self.reference], start.c.depth + 1)
            .select_from(above.join(start, above.c.id == start.c.ancestor_id))
            .where(above.c[self.reference].is_not(None), start.c.depth < MAX_ANCESTORS)
        )
        alias = table.alias()
        joined = walk.join(alias, alias.c.id == walk.c.ancestor_id)
        return Rows(alias, [scope.visible(alias)], [walk.c.depth], joined)


@dataclass(eq=False)
class OneOf(Relation):
    """The row of the kind the parent's `discriminator` names (`kinds`: discriminator value to
    kind), whose id `reference` holds; null for a value without a kind (an edit of a claim),
    and when missing or hidden."""

    discriminator: str = ""
    reference: str = ""
    kinds: dict[str, str] = field(default_factory=dict)
    many: bool = False
    renders_whole: bool = False

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        kind = self.kinds.get(plain(getattr(root, self.discriminator)))
        if kind is None:
            return None
        # one statement for targets of every kind (`object_by_id`'s UNION ALL)
        found = await info.context.loaders.at(info).object_by_id.load(getattr(root, self.reference))
        return found if found is not None and kind_of(found).name == kind else None

    def render(
        self, selected: Selected, parent: FromClause | None, scope: Any
    ) -> ColumnElement[Any]:
        assert selected.variants is not None and parent is not None
        plans = {plan.type_name: plan for plan in selected.variants}
        branches = []
        for value, kind_name in self.kinds.items():
            kind = KINDS[kind_name]
            alias = kind.table.alias()
            document = (
                select(render_object(plans[kind.type_name], alias, scope))
                .where(alias.c.id == parent.c[self.reference], visible_from(scope, alias, parent))
                .scalar_subquery()
            )
            branches.append((parent.c[self.discriminator] == value, document))
        return case(*branches, else_=literal_column("NULL::json"))


# Every object's `conversation`.
OF_CONVERSATION = ToOne("conversation", reference="conversation_id")


def edits_of(target_type: str) -> ToMany:
    """The edits log's rows about the parent (a `target_type` of the log), newest first."""
    return ToMany(
        "edit",
        column="target_id",
        conditions=lambda edit: [edit.c.target_type == target_type],
        estimated_size=10,
    )


PAGE_ARGUMENTS = ("first", "after", "order_by", "direction")


@dataclass(eq=False)
class Paged(ToMany):
    """A cursor connection (graph/pagination.py) over the rows whose `column` holds the
    parent's id (no column: every row the viewer may read, the root lists), filtered by `key`,
    ordered by the `order_by:` argument (an enum of column names; `order` when the field has
    none) in the `direction:` argument's direction; each parent gets its own page."""

    column: str = ""
    order_column: str = "created_at"
    many: bool = False

    def split(self, arguments: dict[str, Any]) -> tuple[Hashable, int | None, str | None, Any]:
        plain_arguments = {name: plain(value) for name, value in arguments.items()}
        filter_arguments = {
            name: value for name, value in plain_arguments.items() if name not in PAGE_ARGUMENTS
        }
        order = Ordering.of(
            self.kind.table,
            plain_arguments.get("order_by") or self.order_column,
            Direction(plain_arguments.get("direction") or "asc"),
        )
        key = self.key(**filter_arguments)
        return key, plain_arguments.get("first"), plain_arguments.get("after"), order

    def check(self, selected: Selected, settings: Any) -> None:

        _, first, after, order = self.split(selected.python_arguments)
        try:
            page_request(settings, first, after, order)
        except GraphQLError as error:
            raise Unsupported(error.message) from None

    def rows(self, parent: Any, scope: Scope, key: Hashable) -> Rows:
        alias = self.kind.table.alias()
        where = [*adapt(alias, key.conditions())]  # type: ignore[attr-defined]
        if self.column:
            where += [alias.c[self.column] == parent.c.id, visible_from(scope, alias, parent)]
        else:
            where.append(scope.visible(alias))
        return Rows(alias, where, [])

    def rows_rendered(self, selected: Selected, settings: Any) -> int:
        _, first, after, order = self.split(selected.python_arguments)
        return page_request(settings, first, after, order).first

    async def resolve_in_python(self, root: Any, info: Any, **arguments: Any) -> Any:
        key, first, after, order = self.split(arguments)
        page = page_request(info.context.settings, first, after, order)
        loaders = info.context.loaders.at(info)
        parent = root.id if self.column else None
        result = await loaders.pages(self).load((parent, ListArgs(key, order, page)))

        async def count() -> int:
            return await loaders.counts(self).load((parent, key))

        return connection(result, after is not None, count)

    def render(
        self, selected: Selected, parent: FromClause | None, scope: Any
    ) -> ColumnElement[Any]:
        assert selected.plan is not None
        key, first, after, order = self.split(selected.python_arguments)
        page = page_request(scope.settings, first, after, order)
        rows = self.rows(parent, scope, key)
        alias = rows.alias
        where = list(rows.where)
        if page.after is not None:
            where.append(order.after(alias, page.after))
        # the items' documents, one column per distinct selection of them
        item_plans: dict[Plan, str] = {}
        # cursors cost a little per row: made only when selected
        cursors = False
        for field_selected in selected.plan.fields:
            if field_selected.name == "nodes" and field_selected.plan is not None:
                item_plans.setdefault(field_selected.plan, f"_item{len(item_plans)}")
            elif field_selected.name == "edges" and field_selected.plan is not None:
                for edge_selected in field_selected.plan.fields:
                    if edge_selected.name == "node" and edge_selected.plan is not None:
                        item_plans.setdefault(edge_selected.plan, f"_item{len(item_plans)}")
                    cursors = cursors or edge_selected.name == "cursor"
            elif field_selected.name == "pageInfo" and field_selected.plan is not None:
                cursors = cursors or any(
                    info_selected.name in ("startCursor", "endCursor")
                    for info_selected in field_selected.plan.fields
                )
        ordering = order.order_by(alias)
        cursor = order.cursor_sql(alias) if cursors else literal_column("NULL::text")
        inner = (
            select(
                *(
                    render_object(plan, alias, scope).label(name)
                    for plan, name in item_plans.items()
                ),
                cursor.label("_cursor"),
                func.row_number().over(order_by=ordering).label("_position"),
            )
            .where(*where)
            .order_by(*ordering)
            .limit(page.first + 1)
            .correlate(*([parent] if parent is not None else []))
            .lateral()
        )
        position = inner.c._position
        shown = position <= page.first

        def listed(value: Any) -> ColumnElement[Any]:
            aggregate = func.json_agg(aggregate_order_by(value, position)).filter(shown)
            return func.coalesce(aggregate, EMPTY_LIST)

        def cursor_at(*order_by: Any) -> ColumnElement[Any]:
            cursors = func.array_agg(aggregate_order_by(inner.c._cursor, *order_by)).filter(shown)
            return type_coerce(cursors, ARRAY(Text))[1]

        pairs: list[tuple[str, Any]] = []
        for field_selected in selected.plan.fields:
            name = field_selected.name
            if name == "__typename":
                value: Any = literal(selected.plan.type_name, Text)
            elif name == "nodes":
                assert field_selected.plan is not None
                value = listed(inner.c[item_plans[field_selected.plan]])
            elif name == "edges":
                assert field_selected.plan is not None
                edge: list[tuple[str, Any]] = []
                for edge_selected in field_selected.plan.fields:
                    if edge_selected.name == "__typename":
                        edge.append(
                            (edge_selected.key, literal(field_selected.plan.type_name, Text))
                        )
                    elif edge_selected.name == "cursor":
                        edge.append((edge_selected.key, inner.c._cursor))
                    else:
                        assert edge_selected.plan is not None
                        edge.append((edge_selected.key, inner.c[item_plans[edge_selected.plan]]))
                value = listed(build_object(edge))
            elif name == "pageInfo":
                assert field_selected.plan is not None
                info: list[tuple[str, Any]] = []
                for info_selected in field_selected.plan.fields:
                    info_value = {
                        "__typename": literal(field_selected.plan.type_name, Text),
                        "hasNextPage": func.count() > page.first,
                        "hasPreviousPage": literal(after is not None),
                        "startCursor": cursor_at(position),
                        "endCursor": cursor_at(position.desc()),
                    }[info_selected.name]
                    info.append((info_selected.key, info_value))
                value = build_object(info)
            else:  # totalCount: every row the filters let through, on every page
                counted = self.rows(parent, scope, key)
                counting = counted.select(func.count())
                if parent is not None:
                    counting = counting.correlate(parent)
                value = counting.scalar_subquery()
            pairs.append((field_selected.key, value))
        # one row even when no selected key aggregates (`totalCount` alone) or no row matches
        whole = select(build_object(pairs)).select_from(inner).group_by(literal_column("()"))
        return whole.scalar_subquery()


__all__ = [
    "OF_CONVERSATION",
    "RELATION",
    "Ancestors",
    "ById",
    "Containing",
    "EitherEnd",
    "Members",
    "OneOf",
    "Paged",
    "Relation",
    "Rows",
    "Scope",
    "ToMany",
    "ToOne",
    "edits_of",
]
