"""`apiCallStats` (grouped aggregates over the API-calls log) and `conversationStatistics`.

The SQL is in graph/analytics_sql.py; this module turns arguments into its requests and rows into
types.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from graph.analytics_sql import (
    Having,
    OrderTerm,
    StatsInputError,
    StatsRequest,
    decode_offset,
    edits_by,
    encode_offset,
    nodes_by_level,
    nodes_by_type,
    relationships_by_type,
    speakers,
    stats_from_rows,
    stats_statement,
    unknown_zone,
    zone_names_statement,
)
from graph.context import Context
from graph.conversations import Conversation, conversation_id_of
from graph.pagination import Connection, Direction, Page, PageInfo, user_error

Info = strawberry.Info[Context, None]


Money = NewType("Money", Decimal)
# joined to the schema's scalar_map (graph/schema.py)
SCALARS: dict[object, ScalarDefinition] = {
    Money: strawberry.scalar(
        name="Money",
        description="An exact decimal amount of US dollars, as text in plain notation"
        " (`12.345678`, never an exponent).",
        serialize=lambda value: format(value, "f"),
        parse_value=lambda value: Money(Decimal(str(value))),
    )
}


_zone_names: frozenset[str] | None = None


@strawberry.enum(description="What API calls can be grouped by.")
class ApiCallGroupKey(Enum):
    PROVIDER = "provider"
    MODEL = "model"
    FEATURE = "feature"
    ENDPOINT = "endpoint"
    STATUS = "status"
    CONVERSATION = "conversation"
    BUCKET = "bucket"


@strawberry.enum(description="The length of a time bucket, in the requested time zone.")
class TimeBucket(Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.enum(
    description="An aggregate of a group of API calls: sums, averages, minima and maxima of"
    " tokens, cost and latency; latency percentiles."
)
class ApiCallMetric(Enum):
    COUNT = "count"
    PROMPT_TOKENS_SUM = "prompt_tokens_sum"
    PROMPT_TOKENS_AVG = "prompt_tokens_avg"
    PROMPT_TOKENS_MIN = "prompt_tokens_min"
    PROMPT_TOKENS_MAX = "prompt_tokens_max"
    COMPLETION_TOKENS_SUM = "completion_tokens_sum"
    COMPLETION_TOKENS_AVG = "completion_tokens_avg"
    COMPLETION_TOKENS_MIN = "completion_tokens_min"
    COMPLETION_TOKENS_MAX = "completion_tokens_max"
    TOTAL_TOKENS_SUM = "total_tokens_sum"
    TOTAL_TOKENS_AVG = "total_tokens_avg"
    TOTAL_TOKENS_MIN = "total_tokens_min"
    TOTAL_TOKENS_MAX = "total_tokens_max"
    PROMPT_COST_SUM = "prompt_cost_sum"
    PROMPT_COST_AVG = "prompt_cost_avg"
    PROMPT_COST_MIN = "prompt_cost_min"
    PROMPT_COST_MAX = "prompt_cost_max"
    COMPLETION_COST_SUM = "completion_cost_sum"
    COMPLETION_COST_AVG = "completion_cost_avg"
    COMPLETION_COST_MIN = "completion_cost_min"
    COMPLETION_COST_MAX = "completion_cost_max"
    TOTAL_COST_SUM = "total_cost_sum"
    TOTAL_COST_AVG = "total_cost_avg"
    TOTAL_COST_MIN = "total_cost_min"
    TOTAL_COST_MAX = "total_cost_max"
    LATENCY_COUNT = "latency_count"
    LATENCY_AVG = "latency_avg"
    LATENCY_MIN = "latency_min"
    LATENCY_MAX = "latency_max"
    LATENCY_P50 = "latency_p50"
    LATENCY_P95 = "latency_p95"
    LATENCY_P99 = "latency_p99"


@strawberry.enum(description="How a `having` condition compares.")
class Comparison(Enum):
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"


@strawberry.enum(description="How percentiles are computed.")
class PercentileMethod(Enum):
    CONTINUOUS = "continuous"
    DISCRETE = "discrete"


@strawberry.input(description="Keep only groups whose aggregate compares so with the value.")
class ApiCallHaving:
    metric: ApiCallMetric
    comparison: Comparison
    value: Decimal


@strawberry.input(description="One sort term: a grouping key or an aggregate (give one of them).")
class ApiCallStatsOrder:
    key: ApiCallGroupKey | None = None
    metric: ApiCallMetric | None = None
    direction: Direction = Direction.ASC


@strawberry.input(description="Which API calls to aggregate.")
class ApiCallStatsFilter:
    started_after: datetime | None = strawberry.field(
        default=None, description="Started at or after this."
    )
    started_before: datetime | None = strawberry.field(
        default=None, description="Started before this."
    )
    conversation_ids: list[strawberry.ID] | None = None
    providers: list[str] | None = None
    models: list[str] | None = None
    features: list[str] | None = None
    endpoints: list[str] | None = None
    statuses: list[str] | None = None


@strawberry.type(description="Sum, average, minimum and maximum of a token count.")
class TokenStats:
    sum: float = strawberry.field(
        description="A whole number (GraphQL's Int stops at 2^31 - 1; this is exact to 2^53)."
    )
    avg: float | None
    min: int | None
    max: int | None


@strawberry.type(
    description="Sum, average, minimum and maximum of a cost in US dollars, as exact decimals"
    " (`Money` is text: every cent of a sum over millions of calls is exact)."
)
class MoneyStats:
    sum: Money
    avg: Money | None = strawberry.field(description="Rounded to 12 decimal places.")
    min: Money | None
    max: Money | None


@strawberry.type(
    description="Latency in milliseconds; calls without a latency are left out of every figure."
)
class LatencyStats:
    count: int = strawberry.field(description="Calls with a latency.")
    avg: float | None
    min: int | None
    max: int | None
    p50: float | None
    p95: float | None
    p99: float | None


@strawberry.type(description="Aggregates of a set of API calls.")
class ApiCallAggregate:
    count: int
    prompt_tokens: TokenStats
    completion_tokens: TokenStats
    total_tokens: TokenStats
    prompt_cost: MoneyStats
    completion_cost: MoneyStats
    total_cost: MoneyStats
    latency_ms: LatencyStats


@strawberry.type(
    description="One group of API calls: its keys (null when not grouped by) and aggregates."
)
class ApiCallGroup:
    provider: str | None
    model: str | None
    feature: str | None
    endpoint: str | None
    status: str | None
    conversation_id: strawberry.ID | None
    bucket: datetime | None = strawberry.field(
        description="The start of the time bucket, in the requested time zone's offset."
    )
    aggregate: ApiCallAggregate

    @strawberry.field(description="The conversation of the group, when grouped by conversation.")
    async def conversation(self, info: Info) -> Conversation | None:
        if self.conversation_id is None:
            return None
        return await info.context.loaders.at(info).conversation_by_id.load(self.conversation_id)


@strawberry.type(
    description="Groups of API calls, one page of them in order, and the grand totals of every"
    " call the filter selects (`having` filters groups, not the totals)."
)
class ApiCallStatsConnection(Connection[ApiCallGroup]):
    totals: ApiCallAggregate


def _aggregate(values: dict[str, Any]) -> ApiCallAggregate:
    def tokens(column: str) -> TokenStats:
        return TokenStats(
            sum=float(values.get(f"{column}_sum") or 0),
            avg=values.get(f"{column}_avg"),
            min=values.get(f"{column}_min"),
            max=values.get(f"{column}_max"),
        )

    def money(column: str) -> MoneyStats:
        def amount(name: str) -> Money | None:
            value = values.get(f"{column}_{name}")
            return None if value is None else Money(Decimal(value))

        return MoneyStats(
            sum=amount("sum") or Money(Decimal(0)),
            avg=amount("avg"),
            min=amount("min"),
            max=amount("max"),
        )

    return ApiCallAggregate(
        count=values.get("count") or 0,
        prompt_tokens=tokens("prompt_tokens"),
        completion_tokens=tokens("completion_tokens"),
        total_tokens=tokens("total_tokens"),
        prompt_cost=money("prompt_cost"),
        completion_cost=money("completion_cost"),
        total_cost=money("total_cost"),
        latency_ms=LatencyStats(
            count=values.get("latency_count") or 0,
            avg=values.get("latency_avg"),
            min=values.get("latency_min"),
            max=values.get("latency_max"),
            p50=values.get("latency_p50"),
            p95=values.get("latency_p95"),
            p99=values.get("latency_p99"),
        ),
    )


def _bucket(values: dict[str, Any]) -> datetime | None:
    local = values.get("bucket_local")
    if local is None:
        return None
    offset = timezone(timedelta(seconds=values["bucket_offset"]))
    return datetime.fromisoformat(local).replace(tzinfo=offset)


def _group(values: dict[str, Any]) -> ApiCallGroup:
    conversation = values.get("conversation")
    return ApiCallGroup(
        provider=values.get("provider"),
        model=values.get("model"),
        feature=values.get("feature"),
        endpoint=values.get("endpoint"),
        status=values.get("status"),
        conversation_id=None if conversation is None else strawberry.ID(str(conversation)),
        bucket=_bucket(values),
        aggregate=_aggregate(values),
    )


AGGREGATE_FIELDS = {"aggregate", "totals"}
STATS_FIELDS = {
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
    "totalTokens": "total_tokens",
    "promptCost": "prompt_cost",
    "completionCost": "completion_cost",
    "totalCost": "total_cost",
    "latencyMs": "latency",
}


def _children(selection: Any) -> list[Any]:
    """A selection's fields, with fragments (spread or inline) opened."""
    found = []
    for child in getattr(selection, "selections", ()):
        if hasattr(child, "name") and not hasattr(child, "type_condition"):
            found.append(child)
        else:
            found += _children(child)
    return found


def _selected_metrics(info: Info) -> set[str]:
    """The aggregates the selection reads (under `aggregate` and `totals`), by metric name."""
    metrics: set[str] = set()

    def walk(selections: list[Any]) -> None:
        for selected in selections:
            if selected.name in AGGREGATE_FIELDS:
                for field in _children(selected):
                    if field.name == "count":
                        metrics.add("count")
                    elif field.name in STATS_FIELDS:
                        prefix = STATS_FIELDS[field.name]
                        metrics.update(f"{prefix}_{part.name}" for part in _children(field))
            else:
                walk(_children(selected))

    for root in info.selected_fields:
        walk(_children(root))
    return metrics


def _selects_totals(info: Info) -> bool:
    return any(
        selected.name == "totals" for root in info.selected_fields for selected in _children(root)
    )


async def _check_zone(info: Info, name: str) -> None:
    global _zone_names
    if name == "UTC":
        return
    if _zone_names is None:
        # The server's zone list changes only with its binaries: read once per process.
        _zone_names = frozenset(row[0] for row in await info.context.fetch(zone_names_statement()))
    if name not in _zone_names:
        raise user_error(unknown_zone(name))


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@strawberry.type(description="Figures of one conversation's graph, transcript and edits.")
class ConversationStatistics:
    conversation_id: strawberry.ID
    viewer: strawberry.Private[str | None]

    async def _rows(self, info: Info, statement: Any) -> list[Any]:
        return list(await info.context.fetch(statement))

    @strawberry.field(description="Nodes per zoom level, lowest level first.")
    async def nodes_by_level(self, info: Info) -> list[LevelCount]:
        rows = await self._rows(info, nodes_by_level([self._id], self.viewer))
        return [LevelCount(level=row[1], count=row[2]) for row in rows]

    @strawberry.field(description="Nodes per node type, most frequent first.")
    async def nodes_by_type(self, info: Info) -> list[TypeCount]:
        rows = await self._rows(info, nodes_by_type([self._id], self.viewer))
        return [TypeCount(type=row[1], count=row[2]) for row in rows]

    @strawberry.field(description="Relationships per type with their average strength.")
    async def relationships_by_type(self, info: Info) -> list[RelationshipTypeStats]:
        rows = await self._rows(info, relationships_by_type([self._id], self.viewer))
        return [
            RelationshipTypeStats(type=row[1], count=row[2], average_strength=row[3])
            for row in rows
        ]

    @strawberry.field(
        description="Per speaker: utterances, words (whitespace-separated) and speaking time"
        " (each utterance's duration, or end minus start), most utterances first."
    )
    async def speakers(self, info: Info) -> list[SpeakerStats]:
        rows = await self._rows(info, speakers([self._id], self.viewer))
        return [
            SpeakerStats(
                speaker_id=row[1],
                speaker_name=row[2],
                utterances=row[3],
                words=row[4] or 0,
                speaking_seconds=row[5],
            )
            for row in rows
        ]

    @strawberry.field(description="Edits per edit type, with how many were exported for training.")
    async def edits_by_type(self, info: Info) -> list[EditCount]:
        rows = await self._rows(info, edits_by("edit_type", [self._id], self.viewer))
        return [EditCount(key=row[1], count=row[2], exported_for_training=row[3]) for row in rows]

    @strawberry.field(description="Edits per user, with how many were exported for training.")
    async def edits_by_user(self, info: Info) -> list[EditCount]:
        rows = await self._rows(info, edits_by("user_id", [self._id], self.viewer))
        return [EditCount(key=row[1], count=row[2], exported_for_training=row[3]) for row in rows]

    @property
    def _id(self) -> uuid.UUID:
        return uuid.UUID(str(self.conversation_id))


@strawberry.type
class LevelCount:
    level: int | None
    count: int


@strawberry.type
class TypeCount:
    type: str | None
    count: int


@strawberry.type
class RelationshipTypeStats:
    type: str
    count: int
    average_strength: float | None


@strawberry.type
class SpeakerStats:
    speaker_id: str
    speaker_name: str | None
    utterances: int
    words: int
    speaking_seconds: float


@strawberry.type
class EditCount:
    key: str = strawberry.field(description="The edit type or the user id.")
    count: int
    exported_for_training: int


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="Grouped aggregates over the API-calls log, in one SQL statement: counts,"
        " tokens, exact costs and latency (with percentiles), grouped by any keys and a time"
        " bucket in a time zone you name, with `having`, order, pages and grand totals. Only"
        " calls of conversations you may read are counted; calls with no conversation (their"
        " conversation was deleted, or they were made outside one) are counted for nobody."
    )
    async def api_call_stats(
        self,
        info: Info,
        group_by: Annotated[
            list[ApiCallGroupKey] | None,
            strawberry.argument(
                description="The keys of a group, in this order (none: one group)."
            ),
        ] = None,
        bucket: Annotated[
            TimeBucket, strawberry.argument(description="The length of BUCKET (ISO weeks).")
        ] = TimeBucket.DAY,
        time_zone: Annotated[
            str,
            strawberry.argument(
                description="An IANA zone name (pg_timezone_names); buckets start at its local"
                " midnight, with its daylight-saving changes."
            ),
        ] = "UTC",
        filter: ApiCallStatsFilter | None = None,
        having: list[ApiCallHaving] | None = None,
        order_by: Annotated[
            list[ApiCallStatsOrder] | None,
            strawberry.argument(
                description="Sort terms; ties are broken by the keys in `groupBy` order."
            ),
        ] = None,
        percentiles: PercentileMethod = PercentileMethod.CONTINUOUS,
        first: int | None = None,
        after: str | None = None,
    ) -> ApiCallStatsConnection:
        settings = info.context.settings
        size = settings.default_page_size if first is None else first
        if size < 0 or size > settings.max_page_size:
            raise user_error(f"`first` must be between 0 and {settings.max_page_size}.")
        given = filter or ApiCallStatsFilter()
        try:
            order = []
            for term in order_by or ():
                if (term.key is None) == (term.metric is None):
                    raise StatsInputError("Each `orderBy` term gives exactly one of key, metric.")
                chosen: Any = term.key if term.key is not None else term.metric
                name = chosen.value
                order.append(OrderTerm(name, term.direction is Direction.DESC))
            request = StatsRequest(
                keys=tuple(key.value for key in group_by or ()),
                bucket=bucket.value,
                time_zone=time_zone,
                started_after=given.started_after,
                started_before=given.started_before,
                conversation_ids=None
                if given.conversation_ids is None
                else tuple(conversation_id_of(value) for value in given.conversation_ids),
                providers=_tuple(given.providers),
                models=_tuple(given.models),
                features=_tuple(given.features),
                endpoints=_tuple(given.endpoints),
                statuses=_tuple(given.statuses),
                having=tuple(
                    Having(term.metric.value, term.comparison.value, term.value)
                    for term in having or ()
                ),
                order=tuple(order),
                discrete_percentiles=percentiles is PercentileMethod.DISCRETE,
                totals=_selects_totals(info),
                needed=frozenset(
                    _selected_metrics(info)
                    | {term.metric.value for term in having or ()}
                    | {term.name for term in order}
                ),
            )
            offset = 0 if after is None else decode_offset(after)
        except StatsInputError as error:
            raise user_error(str(error)) from None
        await _check_zone(info, time_zone)
        rows = await info.context.fetch(
            stats_statement(request, info.context.viewer_id, size, offset)
        )
        result = stats_from_rows(list(rows), request, size, offset)
        page = Page(
            items=[_group(values) for values in result.groups],
            cursors=[encode_offset(offset + index + 1) for index in range(len(result.groups))],
            has_next_page=result.has_next_page,
        )
        count = result.group_count

        async def total() -> int:
            return count

        return ApiCallStatsConnection(
            page=page,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=page.cursor(0) if page.items else None,
                end_cursor=page.cursor(len(page.items) - 1) if page.items else None,
            ),
            count=total,
            totals=_aggregate(result.totals),
        )

    @strawberry.field(
        description="Figures of a conversation (nodes, relationships, speakers, edits), each one"
        " SQL statement; null when the conversation is missing or not visible to you."
    )
    async def conversation_statistics(
        self, info: Info, conversation_id: strawberry.ID
    ) -> ConversationStatistics | None:
        found = await info.context.loaders.at(info).conversation_by_id.load(
            conversation_id_of(conversation_id)
        )
        if found is None or found.deleted_at is not None:
            return None
        return ConversationStatistics(
            conversation_id=strawberry.ID(str(found.id)), viewer=info.context.viewer_id
        )
