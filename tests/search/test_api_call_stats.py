"""`apiCallStats` against an independent computation in Python over the same rows: grouping by
model and local day in Europe/Berlin across both daylight-saving changes, exact money, NULL
latencies, percentiles both ways, having, order, pages and totals."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.search.conftest import VIEWER, Corpus

STATS = """
query($groupBy: [ApiCallGroupKey!], $bucket: TimeBucket! = DAY, $timeZone: String! = "UTC",
      $first: Int, $after: String, $having: [ApiCallHaving!], $orderBy: [ApiCallStatsOrder!],
      $percentiles: PercentileMethod! = CONTINUOUS, $filter: ApiCallStatsFilter) {
  apiCallStats(groupBy: $groupBy, bucket: $bucket, timeZone: $timeZone, first: $first,
               after: $after, having: $having, orderBy: $orderBy, percentiles: $percentiles,
               filter: $filter) {
    __typename
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { model feature bucket conversationId aggregate { ...figures } }
    totals { ...figures }
  }
}
fragment figures on ApiCallAggregate {
  count
  totalTokens { sum avg min max }
  totalCost { sum avg min max }
  promptCost { sum }
  latencyMs { count avg min max p50 p95 p99 }
}"""

ROWS = """
SELECT model, feature, conversation_id, total_tokens, total_cost, prompt_cost, latency_ms,
       started_at
FROM api_calls_log
WHERE conversation_id IN (SELECT id FROM conversations WHERE owner_id = 'local-developer')"""

BERLIN = ZoneInfo("Europe/Berlin")


def continuous(values: list[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def discrete(values: list[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(math.ceil(fraction * len(ordered)), 1) - 1])


def figures(rows: list, percentile=continuous) -> dict:
    latencies = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
    tokens = [row["total_tokens"] for row in rows]
    costs = [Decimal(repr(row["total_cost"])) for row in rows]
    return {
        "count": len(rows),
        "tokens": sum(tokens),
        "cost": sum(costs, Decimal(0)),
        "prompt": sum((Decimal(repr(row["prompt_cost"])) for row in rows), Decimal(0)),
        "latency_count": len(latencies),
        "min": min(latencies, default=None),
        "max": max(latencies, default=None),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }


def served(aggregate: dict) -> dict:
    latency = aggregate["latencyMs"]
    return {
        "count": aggregate["count"],
        "tokens": int(aggregate["totalTokens"]["sum"]),
        "cost": Decimal(aggregate["totalCost"]["sum"]),
        "prompt": Decimal(aggregate["promptCost"]["sum"]),
        "latency_count": latency["count"],
        "min": latency["min"],
        "max": latency["max"],
        "p50": latency["p50"],
        "p95": latency["p95"],
        "p99": latency["p99"],
    }


def local_day(moment: datetime) -> datetime:
    local = moment.astimezone(BERLIN)
    return datetime(local.year, local.month, local.day, tzinfo=BERLIN)


async def fetch_all(graphql, size: int, **variables) -> tuple[list[dict], dict, int]:
    groups: list[dict] = []
    after = None
    while True:
        reply = await graphql(STATS, first=size, after=after, **variables)
        assert not reply.errors, reply.errors
        result = reply.data["apiCallStats"]
        groups += result["nodes"]
        if not result["pageInfo"]["hasNextPage"]:
            return groups, result["totals"], result["totalCount"]
        after = result["pageInfo"]["endCursor"]


@pytest.mark.parametrize("method", ["CONTINUOUS", "DISCRETE"])
async def test_cost_by_model_per_berlin_day(graphql, corpus: Corpus, corpus_db, method):
    rows = await corpus_db.fetch(ROWS)
    percentile = continuous if method == "CONTINUOUS" else discrete
    expected: dict = defaultdict(list)
    for row in rows:
        expected[(row["model"], local_day(row["started_at"]))].append(row)
    groups, totals, count = await fetch_all(
        graphql, 4, groupBy=["MODEL", "BUCKET"], timeZone="Europe/Berlin", percentiles=method
    )
    assert count == len(expected) == len(groups)
    keys = [(group["model"], datetime.fromisoformat(group["bucket"])) for group in groups]
    assert keys == sorted(expected, key=lambda key: (key[0], key[1]))
    # Buckets start at local midnight with that day's offset (+01:00 in winter, +02:00 in summer).
    offsets = {group["bucket"][-6:] for group in groups}
    assert offsets == {"+01:00", "+02:00"}, offsets
    for group, key in zip(groups, keys, strict=True):
        got = served(group["aggregate"])
        want = figures(expected[key], percentile)
        for name in ("p50", "p95", "p99"):
            assert got.pop(name) == pytest.approx(want.pop(name)), (key, name)
        assert got == want, key
    got_totals = served(totals)
    want_totals = figures(list(rows), percentile)
    for name in ("p50", "p95", "p99"):
        assert got_totals.pop(name) == pytest.approx(want_totals.pop(name))
    assert got_totals == want_totals
    for group in groups:
        money = group["aggregate"]["totalCost"]
        assert not any("E" in money[name] for name in ("sum", "avg", "min", "max")), money
        costs = [
            Decimal(repr(row["total_cost"]))
            for row in expected[(group["model"], datetime.fromisoformat(group["bucket"]))]
        ]
        assert Decimal(money["avg"]) == round(sum(costs) / len(costs), 12)
        assert (Decimal(money["min"]), Decimal(money["max"])) == (min(costs), max(costs))
    # Money is exact: the sum of the groups' sums is the total, to the last digit.
    assert sum(Decimal(g["aggregate"]["totalCost"]["sum"]) for g in groups) == Decimal(
        totals["totalCost"]["sum"]
    )


async def test_having_order_and_hourly_buckets_across_fall_back(graphql, corpus, corpus_db):
    rows = await corpus_db.fetch(ROWS)
    per_feature: dict = defaultdict(list)
    for row in rows:
        per_feature[row["feature"]].append(row)
    threshold = sorted(len(items) for items in per_feature.values())[1]
    groups, totals, count = await fetch_all(
        graphql,
        10,
        groupBy=["FEATURE"],
        having=[{"metric": "COUNT", "comparison": "GTE", "value": str(threshold)}],
        orderBy=[{"metric": "TOTAL_COST_SUM", "direction": "DESC"}],
    )
    want = sorted(
        (feature for feature, items in per_feature.items() if len(items) >= threshold),
        key=lambda feature: -sum(Decimal(repr(row["total_cost"])) for row in per_feature[feature]),
    )
    assert [group["feature"] for group in groups] == want
    assert count == len(want)
    assert totals["count"] == len(rows)  # having filters groups, not the totals
    # Hours in Berlin on the night of 2026-10-25: 02:00 happens twice, as two buckets.
    groups, _totals, _count = await fetch_all(
        graphql,
        100,
        groupBy=["BUCKET"],
        bucket="HOUR",
        timeZone="Europe/Berlin",
        filter={"startedAfter": "2026-10-25T00:00:00Z", "startedBefore": "2026-10-25T02:00:00Z"},
    )
    labels = [group["bucket"] for group in groups]
    expected_hours = {
        "2026-10-25T02:00:00+02:00": 0,
        "2026-10-25T02:00:00+01:00": 0,
    }
    for row in rows:
        moment = row["started_at"]
        if (
            datetime.fromisoformat("2026-10-25T00:00:00+00:00")
            <= moment
            < datetime.fromisoformat("2026-10-25T02:00:00+00:00")
        ):
            local = moment.astimezone(BERLIN).replace(minute=0, second=0, microsecond=0)
            expected_hours[local.isoformat()] += 1
    assert labels == list(expected_hours)
    assert [group["aggregate"]["count"] for group in groups] == list(expected_hours.values())


async def test_empty_selection_and_bad_input(graphql, corpus):
    groups, totals, count = await fetch_all(
        graphql, 10, groupBy=["MODEL"], filter={"models": ["no-such-model"]}
    )
    assert groups == [] and count == 0
    assert totals["count"] == 0 and totals["totalCost"]["sum"] == "0"
    assert totals["latencyMs"]["p50"] is None and totals["latencyMs"]["count"] == 0
    for variables in (
        {"groupBy": ["BUCKET"], "timeZone": "Mars/Olympus"},
        {"groupBy": ["BUCKET"], "timeZone": "Europe/Berlin'; --"},
        {"groupBy": ["MODEL", "MODEL"]},
        {"groupBy": ["MODEL"], "orderBy": [{"key": "FEATURE"}]},
        {"groupBy": ["MODEL"], "orderBy": [{"key": "MODEL", "metric": "COUNT"}]},
        {"groupBy": ["MODEL"], "after": "bogus"},
        {"groupBy": ["MODEL"], "first": -1},
    ):
        reply = await graphql(STATS, **variables)
        assert reply.status == 200, reply.body
        assert [e["extensions"]["code"] for e in reply.errors] == ["BAD_USER_INPUT"], variables


async def test_one_statement(graphql, corpus):
    variables = {"groupBy": ["MODEL", "FEATURE", "BUCKET"], "timeZone": "Asia/Kolkata"}
    await graphql(STATS, first=5, **variables)  # the process reads the zone names once
    reply = await graphql(STATS, first=5, **variables)
    assert not reply.errors and reply.statements == 1


async def test_no_keys_is_one_group_equal_to_the_totals(graphql, corpus, corpus_db):
    rows = await corpus_db.fetch(ROWS)
    groups, totals, count = await fetch_all(graphql, 10)
    assert count == 1 and groups == [
        {
            "model": None,
            "feature": None,
            "bucket": None,
            "conversationId": None,
            "aggregate": totals,
        }
    ]
    assert served(totals) == pytest.approx(figures(list(rows)))


async def test_a_bad_zone_is_refused_even_without_buckets(graphql, corpus):
    reply = await graphql(STATS, groupBy=["MODEL"], timeZone="Nowhere/Special")
    assert [e["extensions"]["code"] for e in reply.errors] == ["BAD_USER_INPUT"]


WITHOUT_TOTALS = STATS.replace("    totals { ...figures }\n", "")


async def test_groups_are_the_same_whether_or_not_the_totals_are_read(graphql, corpus):
    """Without `totals` the statement groups by the keys alone (no grouping set for the
    totals); the groups, their order, pages and count are the same."""
    assert WITHOUT_TOTALS != STATS
    for variables in (
        {"groupBy": ["MODEL", "BUCKET"], "timeZone": "Europe/Berlin", "first": 7},
        {
            "groupBy": ["FEATURE", "MODEL"],
            "having": [{"metric": "COUNT", "comparison": "GT", "value": "20"}],
            "orderBy": [{"metric": "TOTAL_COST_SUM", "direction": "DESC"}],
            "first": 3,
        },
    ):
        pages = []
        for document in (STATS, WITHOUT_TOTALS):
            reply = await graphql(document, **variables)
            assert not reply.errors, reply.errors
            result = reply.data["apiCallStats"]
            assert result["nodes"], variables
            pages.append((result["nodes"], result["totalCount"], result["pageInfo"]))
        assert pages[0] == pages[1], variables


# (cost, counted as): whole picodollars below a million dollars, 15 digits from there on
MONEY = [0.1, 0.2, 0.3, 1e-12, 4e-13, 6e-13, 1234.56789, 0.333333333333333, 2500000.125]


def counted(cost: float) -> Decimal:
    if abs(cost) < 10**6:
        return Decimal(round(cost * 10**12)) / 10**12
    return Decimal(format(cost, ".15g"))


async def test_money_is_exact_at_every_magnitude(graphql, corpus_db):
    conversation = await corpus_db.fetchval(
        "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
        " started_at, owner_id, visibility) VALUES ('money', 'transcript', 'test', now(),"
        " 'local-developer', 'private') RETURNING id"
    )
    try:
        await corpus_db.executemany(
            "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
            " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
            " total_cost, latency_ms, status, started_at) VALUES ($1, '/v1/chat', 'summary',"
            " 'openai', 'gpt-4o', 1, 1, 2, $2, 0, $2, 5, 'success', now())",
            [(conversation, cost) for cost in MONEY],
        )
        reply = await graphql(
            STATS, groupBy=["MODEL"], filter={"conversationIds": [str(conversation)]}
        )
        assert not reply.errors, reply.errors
        (group,) = reply.data["apiCallStats"]["nodes"]
        money = group["aggregate"]["totalCost"]
        want = sum((counted(cost) for cost in MONEY), Decimal(0))
        assert Decimal(money["sum"]) == want
        assert Decimal(money["avg"]) == round(want / len(MONEY), 12)
        assert reply.data["apiCallStats"]["totals"]["promptCost"]["sum"] == money["sum"]
        # what each cost stands for, where it has at most 12 decimals: 0.1 + 0.2 + 0.3 is 0.6
        written = [cost for cost in MONEY if cost != 0.333333333333333]
        assert sum(counted(cost) for cost in written) == sum(
            Decimal(repr(cost)) for cost in written
        )
        assert "E" not in money["sum"] and not money["sum"].endswith("0")
    finally:
        await corpus_db.execute(
            "DELETE FROM api_calls_log WHERE conversation_id = $1", conversation
        )
        await corpus_db.execute("DELETE FROM conversations WHERE id = $1", conversation)


BUCKETS = """
query($unit: TimeBucket!, $zone: String!) {
  apiCallStats(groupBy: [BUCKET], bucket: $unit, timeZone: $zone, first: 1000) {
    nodes { bucket aggregate { count } } } }"""


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Europe/London", "Asia/Kathmandu", "UTC"])
@pytest.mark.parametrize("unit", ["HOUR", "DAY", "WEEK", "MONTH"])
async def test_buckets_are_date_trunc_buckets(graphql, corpus, corpus_db, zone, unit):
    """Calls find their bucket by a range join (graph/analytics_sql.py's `bucket_ranges`); the
    buckets and their counts are exactly `date_trunc`'s, across both 2026 changes in Europe."""
    want = await corpus_db.fetch(
        "SELECT date_trunc($1, started_at, $2) AS bucket, count(*) FROM api_calls_log"
        " WHERE conversation_id IN (SELECT id FROM conversations WHERE owner_id = $3)"
        " GROUP BY 1 ORDER BY 1",
        unit.lower(),
        zone,
        VIEWER,
    )
    reply = await graphql(BUCKETS, unit=unit, zone=zone)
    assert not reply.errors, reply.errors
    got = [
        (datetime.fromisoformat(node["bucket"]), node["aggregate"]["count"])
        for node in reply.data["apiCallStats"]["nodes"]
    ]
    assert got == [(row["bucket"], row["count"]) for row in want]
    if unit == "HOUR" and zone == "Europe/Berlin":
        assert len(got) > 50, "the corpus should cross hours on both sides of each change"


async def test_buckets_of_empty_and_far_ranges(graphql, corpus):
    """A range before, after or around every call, or upside down: no bucket, no error, and a
    range from year 1 is clamped to the calls' own extent (it answers like no range at all)."""
    for window in (
        {"startedAfter": "0001-01-01T00:00:00Z", "startedBefore": "0002-01-01T00:00:00Z"},
        {"startedAfter": "9000-01-01T00:00:00Z"},
        {"startedAfter": "2026-06-01T00:00:00Z", "startedBefore": "2026-01-01T00:00:00Z"},
    ):
        groups, totals, count = await fetch_all(
            graphql, 10, groupBy=["BUCKET"], bucket="HOUR", filter=window
        )
        assert (groups, count, totals["count"]) == ([], 0, 0), window
    everything = await fetch_all(graphql, 1000, groupBy=["BUCKET"], bucket="HOUR")
    wide = await fetch_all(
        graphql,
        1000,
        groupBy=["BUCKET"],
        bucket="HOUR",
        filter={"startedAfter": "0001-01-01T00:00:00Z", "startedBefore": "9999-01-01T00:00:00Z"},
    )
    assert wide == everything and everything[2] > 50
