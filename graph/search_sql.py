"""Full-text search over conversations, utterances and nodes: the domain SQL, free of the API.

One statement finds the page: a UNION ALL of one branch per kind, each filtered on the visibility
predicate (`graph.permissions.visible_to`) joined in, ranked with `ts_rank_cd` (normalisation
1 | 32: divided by 1 + the log of the document's length, then scaled into [0, 1), so a long
transcript does not outrank a short utterance by length alone), ordered by rank, kind and id
(a total order, so keyset cursors continue exactly) and cut to the page; only then are the page's
headlines and rows computed. Counting the matches is a second statement, run when asked for.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from db.models import Conversation, Node, Utterance
from db.search import config_literal, node_vector, utterance_vector
from graph.permissions import visible_to
from graph.registry import KINDS as REGISTRY

KINDS = ("conversation", "utterance", "node")
KIND_ORDER = {kind: position for position, kind in enumerate(KINDS)}
NORMALISATION = 1 | 32
MAX_QUERY_LENGTH = 1000
HEADLINE_OPTIONS = (
    "StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, MaxFragments=2,"
    ' FragmentDelimiter=" … "'
)


class SearchInputError(ValueError):
    """A search the user must change: empty, too long, or with no searchable word."""


@dataclass(frozen=True)
class SearchRequest:
    query: str
    kinds: tuple[str, ...] = KINDS
    conversation_ids: tuple[uuid.UUID, ...] | None = None
    speaker: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    time_from: float | None = None
    time_to: float | None = None

    def __post_init__(self) -> None:
        text = self.query.strip()
        if not text:
            raise SearchInputError("`query` is empty; give at least one word to search for.")
        if len(self.query) > MAX_QUERY_LENGTH:
            raise SearchInputError(f"`query` is longer than {MAX_QUERY_LENGTH} characters.")
        if "\x00" in self.query:
            raise SearchInputError("`query` holds a NUL character.")
        if not self.kinds:
            raise SearchInputError("`kinds` is empty; leave it out to search every kind.")


@dataclass(frozen=True)
class Hit:
    kind: str
    rank: float
    conversation_id: uuid.UUID
    id: uuid.UUID
    headline: str
    row: dict[str, Any]

    @property
    def key(self) -> tuple[float, int, uuid.UUID]:
        return (self.rank, KIND_ORDER[self.kind], self.id)


def encode_cursor(key: tuple[float, int, uuid.UUID]) -> str:
    rank, kind, row_id = key
    return base64.urlsafe_b64encode(
        json.dumps(["search", rank, kind, str(row_id)]).encode()
    ).decode()


def decode_cursor(cursor: str) -> tuple[float, int, uuid.UUID]:
    try:
        tag, rank, kind, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if tag != "search" or not isinstance(rank, (int, float)) or isinstance(rank, bool):
            raise ValueError(tag)
        if kind not in KIND_ORDER.values():
            raise ValueError(kind)
        return (float(rank), kind, uuid.UUID(row_id))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise SearchInputError(
            "`after` is not a cursor of this search; pass a `cursor` or `pageInfo.endCursor` it"
            " returned."
        ) from None


# The filters of a request, each a bound parameter of the same name when given.
FILTERS = (
    "conversation_ids",
    "speaker",
    "started_after",
    "started_before",
    "time_from",
    "time_to",
)


@dataclass(frozen=True)
class SearchShape:
    """Everything that changes a search's SQL; the rest (the query, the viewer, the filters'
    values, the cursor, the page size) is bound parameters. Statements are built and compiled
    once per shape (`statements_of`), which was half of a small search's time in the server."""

    kinds: tuple[str, ...]
    config: str
    anonymous: bool
    filters: frozenset[str]  # those given


# The parameters every statement of a shape may take; a statement uses those its shape needs.
QUERY = bindparam("query", type_=Text)
VIEWER = bindparam("viewer_id", type_=Text)
CONVERSATION_IDS = bindparam("conversation_ids", type_=ARRAY(PG_UUID()))
SPEAKER = bindparam("speaker", type_=Text)
STARTED_AFTER = bindparam("started_after", type_=DateTime(timezone=True))
STARTED_BEFORE = bindparam("started_before", type_=DateTime(timezone=True))
TIME_FROM = bindparam("time_from", type_=Float)
TIME_TO = bindparam("time_to", type_=Float)
PAGE_LIMIT = bindparam("page_limit", type_=Integer)
AFTER_RANK = bindparam("after_rank", type_=Float)
AFTER_KIND = bindparam("after_kind", type_=Integer)
AFTER_ID = bindparam("after_id", type_=PG_UUID())


class Search:
    """The statements of one search, for one viewer, in one text-search configuration: each a
    statement of the search's shape and the parameters to run it with."""

    def __init__(self, request: SearchRequest, viewer_id: str | None, config: str) -> None:
        self.request = request
        self.viewer_id = viewer_id
        self.filters = {
            name: getattr(request, name) for name in FILTERS if getattr(request, name) is not None
        }
        self.shape = SearchShape(
            kinds=tuple(kind for kind in KINDS if kind in request.kinds),
            config=config,
            anonymous=viewer_id is None,
            filters=frozenset(self.filters),
        )
        self.statements = statements_of(self.shape)

    def parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {"query": self.request.query, **self.filters}
        if self.viewer_id is not None:
            values["viewer_id"] = self.viewer_id
        return values

    def page(
        self, first: int, after: tuple[float, int, uuid.UUID] | None
    ) -> tuple[Select[Any], dict[str, Any]]:
        statement = self.statements.page if after is None else self.statements.page_after
        return statement, self.page_values(first, after)

    def page_selecting(self, after: bool, columns: Columns) -> Select[Any]:
        """The page statement with `columns` of the hits' rows in place of the rows; built on
        each call, for the caller to keep. Its parameters are `page_values`."""
        return _Builder(self.shape).page_statement(after, columns)

    def page_values(self, first: int, after: tuple[float, int, uuid.UUID] | None) -> dict[str, Any]:
        values = {**self.parameters(), "page_limit": first + 1}
        if after is not None:
            rank, kind, row_id = after
            values.update(after_rank=rank, after_kind=kind, after_id=row_id)
        return values

    def count(self) -> tuple[Select[Any], dict[str, Any]]:
        return self.statements.count, self.parameters()

    def has_words(self) -> tuple[Select[Any], dict[str, Any]]:
        """Whether the query has a word to search for (`numnode` 0: stop words, punctuation)."""
        return self.statements.has_words, {"query": self.request.query}


@dataclass(frozen=True)
class SearchStatements:
    page: Select[Any]
    page_after: Select[Any]
    count: Select[Any]
    has_words: Select[Any]


@functools.lru_cache(maxsize=512)
def statements_of(shape: SearchShape) -> SearchStatements:
    """The statements of a shape, built once: SQLAlchemy keeps a statement's cache key on the
    statement, and its compiled form in the engine's cache under that key."""
    builder = _Builder(shape)
    return SearchStatements(
        page=builder.page_statement(after=False),
        page_after=builder.page_statement(after=True),
        count=select(func.count()).select_from(builder.matches().subquery()),
        has_words=select(func.numnode(builder.tsquery) > 0),
    )


class _Builder:
    def __init__(self, shape: SearchShape) -> None:
        self.shape = shape
        self.regconfig: Any = literal_column(config_literal(shape.config))
        self.tsquery = func.websearch_to_tsquery(self.regconfig, QUERY, type_=TSQUERY)

    # -- the matches -----------------------------------------------------------------------

    def _conversation_conditions(self) -> list[ColumnElement[bool]]:
        """Visibility and the filters on the conversation; soft-deleted ones are never found."""
        table = Conversation.__table__.c
        filters = self.shape.filters
        where = [visible_to(None if self.shape.anonymous else VIEWER)]
        if "conversation_ids" in filters:
            where.append(table.id == func.any(CONVERSATION_IDS))
        if "started_after" in filters:
            where.append(table.started_at >= STARTED_AFTER)
        if "started_before" in filters:
            where.append(table.started_at < STARTED_BEFORE)
        return where

    def _timed(self, start: Any, end: Any) -> list[ColumnElement[bool]]:
        """A row is in the window when its time span overlaps it."""
        where = []
        if "time_from" in self.shape.filters:
            where.append(func.coalesce(end, start) >= TIME_FROM)
        if "time_to" in self.shape.filters:
            where.append(start <= TIME_TO)
        return where

    def _branch(self, kind: str) -> Select[Any]:
        conversations = Conversation.__table__
        shape = self.shape
        filters = shape.filters
        if kind == "conversation":
            vector: Any = conversations.c.tsv_search
            source: Any = conversations
            row_id = conversations.c.id
            where: list[ColumnElement[bool]] = []
            if filters & {"speaker", "time_from", "time_to"}:
                where.append(false())  # a conversation has no speaker and no time offset
        elif kind == "utterance":
            table = Utterance.__table__
            vector = literal_column(utterance_vector(shape.config, "utterances"))
            source = table.join(conversations, conversations.c.id == table.c.conversation_id)
            row_id = table.c.id
            where = self._timed(table.c.timestamp_start, table.c.timestamp_end)
            if "speaker" in filters:
                where.append(or_(table.c.speaker_id == SPEAKER, table.c.speaker_name == SPEAKER))
        else:
            table = Node.__table__
            vector = literal_column(node_vector(shape.config, "nodes"))
            source = table.join(conversations, conversations.c.id == table.c.conversation_id)
            row_id = table.c.id
            where = self._timed(table.c.timestamp_start, table.c.timestamp_end)
            if "speaker" in filters:
                where.append(table.c.speaker_info["primary_speaker"].astext == SPEAKER)
        if "conversation_ids" in filters and kind != "conversation":
            # on the row's own column too: the planner carries `= ANY` across no join, and
            # this lets it start from the conversation's rows instead of every match
            where.append(table.c.conversation_id == func.any(CONVERSATION_IDS))
        rank = cast(func.ts_rank_cd(vector, self.tsquery, NORMALISATION), Float)
        return (
            select(
                literal(kind, Text).label("kind"),
                literal(KIND_ORDER[kind], Integer).label("kind_order"),
                row_id.label("id"),
                conversations.c.id.label("conversation_id"),
                rank.label("rank"),
            )
            .select_from(source)
            .where(vector.op("@@")(self.tsquery), *self._conversation_conditions(), *where)
        )

    def matches(self) -> Any:
        return union_all(*(self._branch(kind) for kind in self.shape.kinds))

    # -- the page --------------------------------------------------------------------------

    def page_statement(self, after: bool, columns: Columns | None = None) -> Select[Any]:
        """The page: the hits' keys, rank and headline, and `columns` of the hits' rows (by
        default the row itself, as JSON), each row joined in as the alias its kind names."""
        hits = self.matches().subquery("hits")
        condition: ColumnElement[bool] = true()
        if after:
            condition = or_(
                hits.c.rank < AFTER_RANK,
                and_(
                    hits.c.rank == AFTER_RANK,
                    tuple_(hits.c.kind_order, hits.c.id) > tuple_(AFTER_KIND, AFTER_ID),
                ),
            )
        page = (
            select(hits)
            .where(condition)
            .order_by(*hit_order(hits))
            .limit(PAGE_LIMIT)
            .subquery("page")
        )
        rows = hit_rows()
        utterances, nodes, conversations = rows["utterance"], rows["node"], rows["conversation"]
        options = literal(HEADLINE_OPTIONS, Text)

        def headline(document: Any) -> Any:
            return func.ts_headline(self.regconfig, document, self.tsquery, options)

        said = Utterance.__table__.alias("said")
        first_said = (
            select(headline(said.c.text))
            .where(
                said.c.conversation_id == conversations.c.id,
                literal_column(utterance_vector(self.shape.config, "said")).op("@@")(self.tsquery),
            )
            .order_by(said.c.sequence_number)
            .limit(1)
            .correlate(conversations)
            .scalar_subquery()
        )
        named = func.to_tsvector(self.regconfig, conversations.c.conversation_name).op("@@")(
            self.tsquery
        )
        conversation_headline = case(
            (named, headline(conversations.c.conversation_name)),
            else_=func.coalesce(first_said, headline(conversations.c.conversation_name)),
        )
        node_text = func.concat_ws(
            " — ", nodes.c.node_name, nodes.c.summary, func.lct_joined(nodes.c.key_points)
        )
        source: Any = page
        for kind, row in rows.items():
            source = source.outerjoin(row, and_(page.c.kind == kind, row.c.id == page.c.id))
        return (
            select(
                page.c.kind,
                page.c.rank,
                page.c.conversation_id,
                page.c.id,
                page.c.kind_order,
                case(
                    (page.c.kind == "utterance", headline(utterances.c.text)),
                    (page.c.kind == "node", headline(node_text)),
                    else_=conversation_headline,
                ).label("headline"),
                *(columns or row_column)(page, rows),
            )
            .select_from(source)
            .order_by(*hit_order(page))
        )


# The columns a page selects of its hits' rows, given the page (its `kind` says which row a hit
# has) and each kind's row (`hit_rows`).
Columns = Callable[[Any, Mapping[str, Any]], list[Any]]


def hit_rows() -> dict[str, Any]:
    """Each kind's table, as the alias a page joins its hits' rows as (on kind and id)."""
    return {kind: REGISTRY[kind].table.alias(f"hit_{kind}") for kind in KINDS}


def row_column(page: Any, rows: Mapping[str, Any]) -> list[Any]:
    """The hit's row as JSON: what the executor's path builds the hit from."""
    return [
        func.coalesce(
            *(
                func.to_jsonb(row.table_valued()).op("-")(literal("tsv_search"))
                if kind == "conversation"
                else func.to_jsonb(row.table_valued())
                for kind, row in rows.items()
            )
        ).label("row")
    ]


def hit_order(hits: Any) -> tuple[Any, ...]:
    """The order of hits, and of their cursors' keys: best rank first, then kind, then id."""
    return (hits.c.rank.desc(), hits.c.kind_order, hits.c.id)


def hits_from_rows(rows: list[Any]) -> list[Hit]:
    return [
        Hit(
            kind=row.kind,
            rank=row.rank,
            conversation_id=row.conversation_id,
            id=row.id,
            headline=row.headline or "",
            row=row.row,
        )
        for row in rows
    ]


NO_WORDS = (
    "`query` has no word to search for (only stop words or punctuation); search for a word that"
    " carries meaning."
)
