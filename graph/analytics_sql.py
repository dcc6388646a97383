"""Grouped aggregates over the API-calls log and statistics of a conversation: the domain SQL.

`apiCallStats` is one statement: the visible calls (those of conversations the viewer may read;
a call with no conversation belongs to nobody the API knows and is counted for nobody), grouped
by `GROUPING SETS ((keys...), ())` so that the grand totals come from the same pass (by the keys
alone when the totals are not read), `HAVING` on the groups alone, a window function numbering
the groups in the requested order (every key appended, so the order is total) and counting them;
the page is a range of those numbers.

Money is summed exactly: each double-precision cost is counted as a whole number of picodollars
(10^-12; a cost of a million dollars or more, as its 15-digit decimal), and the integers are
added, so sums are exact to the cent however many rows they add. Converting a double to an integer
costs a fraction of converting it to `numeric`, which is what adding a million rows mostly did.
Latency percentiles come from one ordered-set aggregate per group (`percentile_cont` or
`percentile_disc` over an array of fractions, so one sort serves p50, p95 and p99); NULL latencies
are left out of every latency figure and counted in `latency.count` by their absence.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Numeric,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.sql.elements import Grouping

from db.models import ApiCall, Conversation, Edit, Node, Relationship, Utterance
from graph.permissions import visible_conversation_ids

KEYS = ("provider", "model", "feature", "endpoint", "status", "conversation", "bucket")
BUCKETS = ("hour", "day", "week", "month")
PERCENTILES = (0.5, 0.95, 0.99)
COMPARISONS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}
# Zone names as pg_timezone_names spells them; anything else never reaches SQL.
ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")
TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
COSTS = ("prompt_cost", "completion_cost", "total_cost")


class StatsInputError(ValueError):
    """An aggregate request the user must change."""


@dataclass(frozen=True)
class Having:
    metric: str
    comparison: str
    value: Decimal


@dataclass(frozen=True)
class OrderTerm:
    name: str  # a key or a metric
    descending: bool = False


@dataclass(frozen=True)
class StatsRequest:
    keys: tuple[str, ...] = ()
    bucket: str = "day"
    time_zone: str = "UTC"
    started_after: datetime | None = None
    started_before: datetime | None = None
    conversation_ids: tuple[uuid.UUID, ...] | None = None
    providers: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    endpoints: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    having: tuple[Having, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    discrete_percentiles: bool = False
    # whether the grand totals are read: they take a second grouping of every row
    totals: bool = True
    # the aggregates to compute (None: all); each costs work on every row
    needed: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if len(set(self.keys)) != len(self.keys):
            raise StatsInputError("`groupBy` names a key twice.")
        if self.bucket not in BUCKETS:
            raise StatsInputError(f"`bucket` must be one of {', '.join(BUCKETS)}.")
        if not ZONE_NAME.match(self.time_zone):
            raise StatsInputError(unknown_zone(self.time_zone))
        for term in self.order:
            if term.name in KEYS and term.name not in self.keys:
                raise StatsInputError(
                    f"`orderBy` names the key {term.name.upper()}, which is not in `groupBy`."
                )


def unknown_zone(name: str) -> str:
    return (
        f"`timeZone` {name[:64]!r} is not a time-zone name PostgreSQL knows; use an IANA name"
        " such as `Europe/Berlin` or `UTC` (see pg_timezone_names)."
    )


def metric_names() -> tuple[str, ...]:
    names = ["count"]
    for column in TOKENS + COSTS:
        names += [f"{column}_sum", f"{column}_avg", f"{column}_min", f"{column}_max"]
    names += ["latency_count", "latency_avg", "latency_min", "latency_max"]
    names += ["latency_p50", "latency_p95", "latency_p99"]
    return tuple(names)


METRICS = metric_names()


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(["apiCallStats", offset]).encode()).decode()


def decode_offset(cursor: str) -> int:
    try:
        tag, offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if tag != "apiCallStats" or not isinstance(offset, int) or isinstance(offset, bool):
            raise ValueError(tag)
        if not 0 <= offset < 2**31:
            raise ValueError(offset)
        return offset
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise StatsInputError(
            "`after` is not a cursor of these groups; pass a `cursor` or `pageInfo.endCursor` it"
            " returned."
        ) from None


@dataclass
class StatsResult:
    groups: list[dict[str, Any]]
    totals: dict[str, Any]
    group_count: int
    has_next_page: bool
    offset: int
    keys: tuple[str, ...] = field(default=())


def stats_statement(
    request: StatsRequest, viewer_id: str | None, first: int, offset: int
) -> Select[Any]:
    calls_table = ApiCall.__table__.c
    conditions: list[ColumnElement[bool]] = [
        # `IS TRUE`: a hashed lookup per call in the viewer's conversations, where the planner
        # would otherwise join every call to its conversation (a fifth of the statement's time
        # over a million calls)
        calls_table.conversation_id.in_(visible_conversation_ids(viewer_id)).is_(true())
    ]
    if request.started_after is not None:
        conditions.append(calls_table.started_at >= request.started_after)
    if request.started_before is not None:
        conditions.append(calls_table.started_at < request.started_before)
    if request.conversation_ids is not None:
        conditions.append(
            calls_table.conversation_id
            == func.any(literal(list(request.conversation_ids), ARRAY(PG_UUID())))
        )
    for column, values in (
        ("provider", request.providers),
        ("model", request.models),
        ("feature", request.features),
        ("endpoint", request.endpoints),
        ("status", request.statuses),
    ):
        if values is not None:
            conditions.append(calls_table[column].in_(values))
    source: Any = ApiCall.__table__
    bucket: Any = None
    if "bucket" in request.keys:
        buckets = bucket_ranges(request)
        source = source.join(
            buckets,
            and_(
                calls_table.started_at >= buckets.c.starts,
                calls_table.started_at < buckets.c.ends,
            ),
        )
        bucket = buckets.c.value
    key_columns: dict[str, Any] = {
        "provider": calls_table.provider,
        "model": calls_table.model,
        "feature": calls_table.feature,
        "endpoint": calls_table.endpoint,
        "status": calls_table.status,
        "conversation": calls_table.conversation_id,
        "bucket": bucket,
    }
    calls = (
        select(
            *(key_columns[key].label(key) for key in request.keys),
            *(calls_table[column] for column in TOKENS),
            *(calls_table[column] for column in COSTS),
            calls_table.latency_ms,
        )
        .select_from(source)
        .where(*conditions)
        .subquery("calls")
    )
    aggregates = _aggregates(calls, request)
    keys = [calls.c[key] for key in request.keys]
    having = [_having(aggregates, term) for term in request.having]
    if keys and request.totals:
        is_total = func.grouping(*keys) != 0
        group_by: Any = func.grouping_sets(tuple_(*keys), tuple_())
        having_clause: ColumnElement[bool] = or_(is_total, and_(true(), *having))
    elif keys:
        # a plain GROUP BY: hashed, and without a second pass over every row
        is_total = literal(False)
        group_by = keys
        having_clause = and_(true(), *having)
    else:
        is_total = literal(True)
        group_by = None
        having_clause = true()
    order_terms = []
    for term in request.order:
        expression = calls.c[term.name] if term.name in KEYS else aggregates[term.name]
        order_terms.append(
            expression.desc().nulls_last() if term.descending else expression.asc().nulls_last()
        )
    order_terms += [key.asc().nulls_last() for key in keys]
    position = func.row_number().over(partition_by=is_total, order_by=order_terms or None)
    group_count = func.count().over(partition_by=is_total)
    extra = []
    if "bucket" in request.keys:
        local = func.timezone(literal(request.time_zone, Text), calls.c.bucket)
        extra = [
            func.to_char(local, literal('YYYY-MM-DD"T"HH24:MI:SS', Text)).label("bucket_local"),
            cast(
                func.extract("epoch", local - func.timezone(literal("UTC", Text), calls.c.bucket)),
                Integer,
            ).label("bucket_offset"),
        ]
    inner = select(
        *keys,
        *extra,
        is_total.label("is_total"),
        *(expression.label(name) for name, expression in aggregates.items()),
        position.label("position"),
        group_count.label("group_count"),
    ).select_from(calls)
    if group_by is not None:
        inner = inner.group_by(*(group_by if isinstance(group_by, list) else [group_by]))
        inner = inner.having(having_clause)
    grouped = inner.subquery("grouped")
    return (
        select(grouped)
        .where(
            or_(
                grouped.c.is_total,
                and_(grouped.c.position > offset, grouped.c.position <= offset + first + 1),
            )
        )
        .order_by(grouped.c.is_total, grouped.c.position)
    )


BUCKET_RANGES = """
WITH RECURSIVE extent AS (
    -- the requested range, within the calls' (so a wide range costs no more than the data)
    SELECT greatest(:lower, earliest.at) AS lower, least(:upper, latest.at) AS upper
    FROM (SELECT min(started_at) AS at FROM api_calls_log) AS earliest,
         (SELECT max(started_at) AS at FROM api_calls_log) AS latest
    WHERE earliest.at IS NOT NULL
), probe AS (
    SELECT probe.at
    FROM extent,
         generate_series(date_trunc(:unit, extent.lower AT TIME ZONE :zone)
                             - CAST(:step AS interval),
                         extent.upper AT TIME ZONE :zone + CAST(:step AS interval),
                         CAST(:step AS interval)) AS local(at),
         LATERAL (VALUES (local.at AT TIME ZONE :zone),
                         ((local.at AT TIME ZONE :zone) - interval '1 microsecond')) AS probe(at)
), bucket AS (
    SELECT date_trunc(:unit, probe.at, :zone) AS value, max(probe.at) AS probe
    FROM probe GROUP BY 1
), ordered AS (
    SELECT value, probe, lag(probe) OVER (ORDER BY value) AS previous_probe FROM bucket
), search(value, low, high) AS (
    SELECT value, previous_probe, probe FROM ordered
    WHERE previous_probe IS NOT NULL
      AND NOT (date_trunc(:unit, value, :zone) = value
               AND date_trunc(:unit, value - interval '1 microsecond', :zone) < value)
    UNION ALL
    SELECT value,
           CASE WHEN date_trunc(:unit, middle, :zone) >= value THEN low ELSE middle END,
           CASE WHEN date_trunc(:unit, middle, :zone) >= value THEN middle ELSE high END
    FROM search,
         LATERAL (SELECT low + (extract(epoch FROM high - low) * 1000000 / 2)::bigint
                               * interval '1 microsecond' AS middle) AS halved
    WHERE high - low > interval '1 microsecond'
), starting AS (
    SELECT value,
           CASE WHEN previous_probe IS NULL THEN '-infinity'::timestamptz
                ELSE coalesce((SELECT min(high) FROM search WHERE search.value = ordered.value),
                              value)
           END AS starts
    FROM ordered
)
SELECT value, starts, coalesce(lead(starts) OVER (ORDER BY value), 'infinity') AS ends
FROM starting
"""


def bucket_ranges(request: StatsRequest) -> Any:
    """The request's time buckets as ranges of instants: `value` is `date_trunc(bucket,
    started_at, zone)` for exactly the calls with `starts <= started_at < ends`.

    A call then finds its bucket through the time index (a range scan per bucket) instead of a
    time-zone conversion per row. The values come from `date_trunc` itself, applied to the
    instants of every local bucket start in the range and to the microsecond before each (so
    that both sides of an hour repeated by a fall-back are found); a bucket starts at its own
    value unless `date_trunc` says otherwise, and then its first microsecond is found by
    bisection. `date_trunc` never decreases as time passes, which is all this relies on."""
    unit = request.bucket
    return (
        text(BUCKET_RANGES)
        .bindparams(
            bindparam("unit", unit, type_=Text),
            bindparam("zone", request.time_zone, type_=Text),
            bindparam("step", f"1 {unit}", type_=Text),
            bindparam("lower", request.started_after, type_=DateTime(timezone=True)),
            bindparam("upper", request.started_before, type_=DateTime(timezone=True)),
        )
        .columns(
            value=DateTime(timezone=True),
            starts=DateTime(timezone=True),
            ends=DateTime(timezone=True),
        )
        .subquery("buckets")
    )


def _aggregates(calls: Any, request: StatsRequest) -> dict[str, Any]:
    """The aggregate expressions the request needs, by metric name. Costs are summed and
    averaged as numeric; their minimum and maximum are one stored value, converted after."""
    found: dict[str, Any] = {"count": func.count()}
    for column in TOKENS:
        value = calls.c[column]
        found[f"{column}_sum"] = func.coalesce(func.sum(value), 0)
        found[f"{column}_avg"] = cast(func.avg(value), Float)
        found[f"{column}_min"] = func.min(value)
        found[f"{column}_max"] = func.max(value)
    for column in COSTS:
        value = calls.c[column]
        total = exact_sum(value)
        found[f"{column}_sum"] = total
        found[f"{column}_avg"] = func.round(total / func.nullif(func.count(), 0), 12)
        found[f"{column}_min"] = cast(func.min(value), Numeric)
        found[f"{column}_max"] = cast(func.max(value), Numeric)
    latency = calls.c.latency_ms
    found["latency_count"] = func.count(latency)
    found["latency_avg"] = cast(func.avg(latency), Float)
    found["latency_min"] = func.min(latency)
    found["latency_max"] = func.max(latency)
    names = ("latency_p50", "latency_p95", "latency_p99")
    needed = request.needed
    if needed is None or any(name in needed for name in names):
        method = func.percentile_disc if request.discrete_percentiles else func.percentile_cont
        fractions = literal(list(PERCENTILES), ARRAY(Float))
        # parenthesised, so that PostgreSQL accepts the subscript; one sort serves all three
        percentiles = type_coerce(Grouping(method(fractions).within_group(latency)), ARRAY(Float))
        for index, name in enumerate(names, start=1):
            found[name] = cast(percentiles[index], Float)
    if needed is None:
        return found
    return {name: expression for name, expression in found.items() if name in needed}


PICODOLLARS = 10**12
WHOLE_PICODOLLARS_BELOW = 10**6  # dollars: 10^18 picodollars still fit a bigint


def exact_sum(money: Any) -> Any:
    """The exact sum of a double-precision money column, as numeric: each value in whole
    picodollars (rounded to the nearest), or, from a million dollars on (and NaN, infinities), as
    its 15-digit decimal; no value is too large, and no row pays a float-to-numeric conversion
    unless its value needs one. Trailing zeros are trimmed."""
    whole = func.abs(money) < WHOLE_PICODOLLARS_BELOW
    picodollars = func.sum(cast(money * PICODOLLARS, BigInteger)).filter(whole)
    large = func.sum(cast(money, Numeric)).filter(~whole)
    return func.trim_scale(
        func.coalesce(picodollars, 0) * literal(Decimal(1) / PICODOLLARS, Numeric)
        + func.coalesce(large, 0)
    )


def _having(aggregates: dict[str, Any], term: Having) -> ColumnElement[bool]:
    compare = COMPARISONS[term.comparison]
    result: ColumnElement[bool] = compare(
        cast(aggregates[term.metric], Numeric), literal(term.value, Numeric)
    )
    return result


def stats_from_rows(rows: list[Any], request: StatsRequest, first: int, offset: int) -> StatsResult:
    groups = []
    totals: dict[str, Any] = {}
    group_count = 0
    for row in rows:
        values = dict(row._mapping)
        if values["is_total"]:
            totals = values
        else:
            group_count = values["group_count"]
            groups.append(values)
    if not request.keys:
        # No key: the one group is everything, and so are the totals.
        group_count = 1 if offset == 0 else 0
        groups = [totals] if offset == 0 and first > 0 else []
    return StatsResult(
        groups=groups[:first],
        totals=totals,
        group_count=group_count,
        has_next_page=len(groups) > first,
        offset=offset,
        keys=request.keys,
    )


def zone_names_statement() -> Select[Any]:
    return select(literal_column("name")).select_from(func.pg_timezone_names())


# -- statistics of a conversation ------------------------------------------------------------------
# Each is one grouped statement for a batch of conversations (keyed by conversation id); the
# caller has checked that the viewer may read them (the loaders' visibility filter applies too).


def conversations_in(column: Any, ids: list[uuid.UUID]) -> ColumnElement[bool]:
    return column == func.any(literal(list(ids), ARRAY(PG_UUID())))


def visible(column: Any, viewer_id: str | None) -> ColumnElement[bool]:
    return column.in_(visible_conversation_ids(viewer_id, include_deleted=True))


def nodes_by_level(ids: list[uuid.UUID], viewer_id: str | None) -> Select[Any]:
    table = Node.__table__.c
    return (
        select(table.conversation_id, table.level, func.count())
        .where(
            conversations_in(table.conversation_id, ids), visible(table.conversation_id, viewer_id)
        )
        .group_by(table.conversation_id, table.level)
        .order_by(table.conversation_id, table.level.asc().nulls_last())
    )


def nodes_by_type(ids: list[uuid.UUID], viewer_id: str | None) -> Select[Any]:
    table = Node.__table__.c
    return (
        select(table.conversation_id, table.node_type, func.count())
        .where(
            conversations_in(table.conversation_id, ids), visible(table.conversation_id, viewer_id)
        )
        .group_by(table.conversation_id, table.node_type)
        .order_by(table.conversation_id, func.count().desc(), table.node_type.asc().nulls_last())
    )


def relationships_by_type(ids: list[uuid.UUID], viewer_id: str | None) -> Select[Any]:
    table = Relationship.__table__.c
    return (
        select(
            table.conversation_id,
            table.relationship_type,
            func.count(),
            cast(func.avg(table.strength), Float),
        )
        .where(
            conversations_in(table.conversation_id, ids), visible(table.conversation_id, viewer_id)
        )
        .group_by(table.conversation_id, table.relationship_type)
        .order_by(table.conversation_id, func.count().desc(), table.relationship_type)
    )


def speakers(ids: list[uuid.UUID], viewer_id: str | None) -> Select[Any]:
    """Words are whitespace-separated runs (graph/services/common.py's `word_count`); speaking
    time is each utterance's duration, or its end minus its start when no duration is stored."""
    table = Utterance.__table__.c
    words: Any = func.coalesce(
        func.array_length(
            func.regexp_split_to_array(func.btrim(table.text, literal(" \t\n\r\f\v")), r"\s+"), 1
        ),
        0,
    )
    words = case((func.btrim(table.text, literal(" \t\n\r\f\v")) == "", 0), else_=words)
    seconds = func.coalesce(table.duration_seconds, table.timestamp_end - table.timestamp_start)
    return (
        select(
            table.conversation_id,
            table.speaker_id,
            func.max(table.speaker_name),
            func.count(),
            func.sum(words),
            cast(func.coalesce(func.sum(seconds), 0), Float),
        )
        .where(
            conversations_in(table.conversation_id, ids), visible(table.conversation_id, viewer_id)
        )
        .group_by(table.conversation_id, table.speaker_id)
        .order_by(table.conversation_id, func.count().desc(), table.speaker_id)
    )


def edits_by(column: str, ids: list[uuid.UUID], viewer_id: str | None) -> Select[Any]:
    table = Edit.__table__.c
    return (
        select(
            table.conversation_id,
            table[column],
            func.count(),
            func.count().filter(table.exported_for_training.is_(True)),
        )
        .where(
            conversations_in(table.conversation_id, ids), visible(table.conversation_id, viewer_id)
        )
        .group_by(table.conversation_id, table[column])
        .order_by(table.conversation_id, func.count().desc(), table[column])
    )


__all__ = ["Conversation", "StatsRequest", "stats_statement"]
