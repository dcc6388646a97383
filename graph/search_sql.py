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
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Text,
    and_,
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


class Search:
    """The statements of one search, for one viewer, in one text-search configuration."""

    def __init__(self, request: SearchRequest, viewer_id: str | None, config: str) -> None:
        self.request = request
        self.viewer_id = viewer_id
        self.config = config
        self.regconfig: Any = literal_column(config_literal(config))
        self.tsquery = func.websearch_to_tsquery(
            self.regconfig, literal(request.query, Text), type_=TSQUERY
        )

    # -- the matches -----------------------------------------------------------------------

    def _conversation_conditions(self) -> list[ColumnElement[bool]]:
        """Visibility and the filters on the conversation; soft-deleted ones are never found."""
        table = Conversation.__table__.c
        request = self.request
        where = [visible_to(self.viewer_id)]
        if request.conversation_ids is not None:
            where.append(
                table.id == func.any(literal(list(request.conversation_ids), ARRAY(PG_UUID())))
            )
        if request.started_after is not None:
            where.append(table.started_at >= request.started_after)
        if request.started_before is not None:
            where.append(table.started_at < request.started_before)
        return where

    def _timed(self, start: Any, end: Any) -> list[ColumnElement[bool]]:
        """A row is in the window when its time span overlaps it."""
        where = []
        if self.request.time_from is not None:
            where.append(func.coalesce(end, start) >= self.request.time_from)
        if self.request.time_to is not None:
            where.append(start <= self.request.time_to)
        return where

    def _branch(self, kind: str) -> Select[Any]:
        conversations = Conversation.__table__
        request = self.request
        if kind == "conversation":
            vector: Any = conversations.c.tsv_search
            source: Any = conversations
            row_id = conversations.c.id
            where: list[ColumnElement[bool]] = []
            if request.speaker is not None or request.time_from is not None:
                where.append(false())  # a conversation has no speaker and no time offset
        elif kind == "utterance":
            table = Utterance.__table__
            vector = literal_column(utterance_vector(self.config, "utterances"))
            source = table.join(conversations, conversations.c.id == table.c.conversation_id)
            row_id = table.c.id
            where = self._timed(table.c.timestamp_start, table.c.timestamp_end)
            if request.speaker is not None:
                where.append(
                    or_(
                        table.c.speaker_id == request.speaker,
                        table.c.speaker_name == request.speaker,
                    )
                )
        else:
            table = Node.__table__
            vector = literal_column(node_vector(self.config, "nodes"))
            source = table.join(conversations, conversations.c.id == table.c.conversation_id)
            row_id = table.c.id
            where = self._timed(table.c.timestamp_start, table.c.timestamp_end)
            if request.speaker is not None:
                where.append(table.c.speaker_info["primary_speaker"].astext == request.speaker)
        if request.time_to is not None and kind == "conversation":
            where.append(false())
        if request.conversation_ids is not None and kind != "conversation":
            # on the row's own column too: the planner carries `= ANY` across no join, and
            # this lets it start from the conversation's rows instead of every match
            where.append(
                table.c.conversation_id
                == func.any(literal(list(request.conversation_ids), ARRAY(PG_UUID())))
            )
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
        return union_all(*(self._branch(kind) for kind in KINDS if kind in self.request.kinds))

    # -- the statements ----------------------------------------------------------------------

    def count_statement(self) -> Select[Any]:
        return select(func.count()).select_from(self.matches().subquery())

    def page_statement(self, first: int, after: tuple[float, int, uuid.UUID] | None) -> Select[Any]:
        hits = self.matches().subquery("hits")
        condition: ColumnElement[bool] = true()
        if after is not None:
            rank, kind, row_id = after
            condition = or_(
                hits.c.rank < rank,
                and_(
                    hits.c.rank == rank,
                    tuple_(hits.c.kind_order, hits.c.id) > tuple_(literal(kind), literal(row_id)),
                ),
            )
        page = (
            select(hits)
            .where(condition)
            .order_by(hits.c.rank.desc(), hits.c.kind_order, hits.c.id)
            .limit(first + 1)
            .subquery("page")
        )
        utterances = Utterance.__table__.alias("u")
        nodes = Node.__table__.alias("n")
        conversations = Conversation.__table__.alias("c")
        options = literal(HEADLINE_OPTIONS, Text)

        def headline(document: Any) -> Any:
            return func.ts_headline(self.regconfig, document, self.tsquery, options)

        said = Utterance.__table__.alias("said")
        first_said = (
            select(headline(said.c.text))
            .where(
                said.c.conversation_id == conversations.c.id,
                literal_column(utterance_vector(self.config, "said")).op("@@")(self.tsquery),
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
        return (
            select(
                page.c.kind,
                page.c.rank,
                page.c.conversation_id,
                page.c.id,
                case(
                    (page.c.kind == "utterance", headline(utterances.c.text)),
                    (page.c.kind == "node", headline(node_text)),
                    else_=conversation_headline,
                ).label("headline"),
                func.coalesce(
                    func.to_jsonb(utterances.table_valued()),
                    func.to_jsonb(nodes.table_valued()),
                    func.to_jsonb(conversations.table_valued()).op("-")(literal("tsv_search")),
                ).label("row"),
            )
            .select_from(
                page.outerjoin(
                    utterances, and_(page.c.kind == "utterance", utterances.c.id == page.c.id)
                )
                .outerjoin(nodes, and_(page.c.kind == "node", nodes.c.id == page.c.id))
                .outerjoin(
                    conversations,
                    and_(page.c.kind == "conversation", conversations.c.id == page.c.id),
                )
            )
            .order_by(page.c.rank.desc(), page.c.kind_order, page.c.id)
        )

    def has_words_statement(self) -> Select[Any]:
        """Whether the query has a word to search for (`numnode` 0: stop words, punctuation)."""
        return select(func.numnode(self.tsquery) > 0)


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
