"""`search` against independent SQL over the generated corpus: the same hits in the same order,
with the same ranks, page after page; filters; headlines; errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.search.conftest import VIEWER, Corpus

SEARCH = """
query($query: String!, $first: Int, $after: String, $kinds: [SearchKind!],
      $conversationIds: [ID!], $speaker: String, $timeFrom: Float, $timeTo: Float,
      $startedAfter: DateTime, $startedBefore: DateTime) {
  search(query: $query, first: $first, after: $after, kinds: $kinds,
         conversationIds: $conversationIds, speaker: $speaker, timeFrom: $timeFrom,
         timeTo: $timeTo, startedAfter: $startedAfter, startedBefore: $startedBefore) {
    __typename
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      kind rank headline conversationId
      hit { __typename ... on Conversation { id } ... on Utterance { id text }
            ... on ThreadNode { id } }
    } }
  }
}"""

# Written apart from graph/search_sql.py: what each kind matches, its rank, its kind order.
EXPECTED = """
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
readable AS (SELECT id FROM conversations WHERE owner_id = $2 AND deleted_at IS NULL
             AND ($3::uuid[] IS NULL OR id = ANY($3))
             AND ($7::timestamptz IS NULL OR started_at >= $7)
             AND ($8::timestamptz IS NULL OR started_at < $8)),
hits AS (
  SELECT 'conversation' AS kind, 0 AS k, c.id, ts_rank_cd(c.tsv_search, q.q, 33)::float8 AS rank
  FROM conversations c, q WHERE c.id IN (SELECT id FROM readable) AND c.tsv_search @@ q.q
    AND $4::text IS NULL AND $5::float8 IS NULL AND $6::float8 IS NULL
  UNION ALL
  SELECT 'utterance', 1, u.id, ts_rank_cd(to_tsvector('english', u.text), q.q, 33)
  FROM utterances u, q WHERE u.conversation_id IN (SELECT id FROM readable)
    AND to_tsvector('english', u.text) @@ q.q
    AND ($4 IS NULL OR u.speaker_id = $4 OR u.speaker_name = $4)
    AND ($5 IS NULL OR coalesce(u.timestamp_end, u.timestamp_start) >= $5)
    AND ($6 IS NULL OR u.timestamp_start <= $6)
  UNION ALL
  SELECT 'node', 2, n.id, ts_rank_cd(
      setweight(to_tsvector('english', n.node_name), 'A')
      || setweight(to_tsvector('english', n.summary), 'B')
      || setweight(to_tsvector('english', coalesce(array_to_string(n.key_points, ' '), '')), 'C'),
      q.q, 33)
  FROM nodes n, q WHERE n.conversation_id IN (SELECT id FROM readable)
    AND (setweight(to_tsvector('english', n.node_name), 'A')
      || setweight(to_tsvector('english', n.summary), 'B')
      || setweight(to_tsvector('english', coalesce(array_to_string(n.key_points, ' '), '')), 'C'))
      @@ q.q
    AND ($4 IS NULL OR n.speaker_info->>'primary_speaker' = $4)
    AND ($5 IS NULL OR coalesce(n.timestamp_end, n.timestamp_start) >= $5)
    AND ($6 IS NULL OR n.timestamp_start <= $6)
)
SELECT kind, id::text, rank FROM hits ORDER BY rank DESC, k, id"""


async def all_pages(graphql, size: int, **variables) -> tuple[list[dict], int]:
    found: list[dict] = []
    after = None
    total = None
    while True:
        reply = await graphql(SEARCH, first=size, after=after, **variables)
        assert not reply.errors, reply.errors
        page = reply.data["search"]
        total = page["totalCount"]
        found += [edge["node"] for edge in page["edges"]]
        assert len(page["edges"]) <= size
        if not page["pageInfo"]["hasNextPage"]:
            return found, total
        after = page["pageInfo"]["endCursor"]


async def expected(
    db,
    query: str,
    conversations=None,
    speaker=None,
    time_from=None,
    time_to=None,
    started_after=None,
    started_before=None,
):
    rows = await db.fetch(
        EXPECTED,
        query,
        VIEWER,
        conversations,
        speaker,
        time_from,
        time_to,
        started_after,
        started_before,
    )
    return [(row["kind"], row["id"], row["rank"]) for row in rows]


@pytest.mark.parametrize(
    "query", ["apple", "budget cloud", '"forest garden"', "engine or harbor", "deadline -apple"]
)
async def test_every_page_matches_independent_sql(graphql, corpus: Corpus, corpus_db, query):
    want = await expected(corpus_db, query)
    assert len(want) > 7, "the query should find more than a page"
    ranks = [rank for _kind, _id, rank in want]
    if query == "apple":
        assert len(set(ranks)) < len(ranks), "the corpus should produce tied ranks"
    got, total = await all_pages(graphql, 7, query=query)
    assert total == len(want)
    assert [(hit["kind"].lower(), hit["hit"]["id"]) for hit in got] == [
        (kind, row_id) for kind, row_id, _rank in want
    ]
    assert [hit["rank"] for hit in got] == pytest.approx(ranks, abs=1e-6)
    assert {hit["conversationId"] for hit in got} <= {str(item) for item in corpus.mine}
    for hit in got:
        assert "<mark>" in hit["headline"], hit


async def test_filters_match_independent_sql(graphql, corpus: Corpus, corpus_db):
    conversation = corpus.mine[1]
    cases = [
        {"conversations": [conversation]},
        {"speaker": "s1"},
        {"speaker": "Speaker 2"},
        {"time_from": 100.0, "time_to": 200.0},
        {"started_after": datetime(2026, 3, 28, 12, tzinfo=UTC)},
        {
            "started_after": datetime(2026, 3, 28, 12, tzinfo=UTC),
            "started_before": datetime(2026, 3, 29, 12, tzinfo=UTC),
        },
    ]
    for case in cases:
        want = await expected(corpus_db, "apple or budget", **case)
        variables = {
            "conversationIds": [str(item) for item in case.get("conversations") or []] or None,
            "speaker": case.get("speaker"),
            "timeFrom": case.get("time_from"),
            "timeTo": case.get("time_to"),
            "startedAfter": _iso(case.get("started_after")),
            "startedBefore": _iso(case.get("started_before")),
        }
        got, total = await all_pages(graphql, 50, query="apple or budget", **variables)
        assert [(hit["kind"].lower(), hit["hit"]["id"]) for hit in got] == [
            (kind, row_id) for kind, row_id, _ in want
        ], case
        assert total == len(want)
        assert want, case


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def test_kinds_and_ordinary_types(graphql, corpus: Corpus):
    reply = await graphql(SEARCH, query="apple", first=5, kinds=["UTTERANCE"])
    hits = [edge["node"] for edge in reply.data["search"]["edges"]]
    assert hits and {hit["hit"]["__typename"] for hit in hits} == {"Utterance"}
    for hit in hits:
        assert "apple" in hit["hit"]["text"]
        assert hit["headline"].count("<mark>") >= 1
    reply = await graphql(SEARCH, query="meeting", first=50, kinds=["CONVERSATION"])
    names = {edge["node"]["hit"]["id"] for edge in reply.data["search"]["edges"]}
    assert names == {str(item) for item in corpus.mine}


async def test_transcript_is_searchable_through_the_conversation(graphql, corpus, corpus_db):
    """tsv_search holds the transcript, kept current as utterances are added and edited."""
    conversation = corpus.mine[2]
    reply = await graphql(SEARCH, query="xylophone", kinds=["CONVERSATION"], first=5)
    assert reply.errors == [] and reply.data["search"]["edges"] == []
    utterance = await corpus_db.fetchval(
        "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)"
        " VALUES ($1, 'a xylophone solo', 's9', 1000) RETURNING id",
        conversation,
    )
    try:
        reply = await graphql(SEARCH, query="xylophone", kinds=["CONVERSATION"], first=5)
        assert [e["node"]["hit"]["id"] for e in reply.data["search"]["edges"]] == [
            str(conversation)
        ]
        assert "<mark>xylophone</mark>" in reply.data["search"]["edges"][0]["node"]["headline"]
        await corpus_db.execute(
            "UPDATE utterances SET text = 'a flute solo' WHERE id = $1", utterance
        )
        reply = await graphql(SEARCH, query="xylophone", first=5)
        assert reply.data["search"]["edges"] == []
    finally:
        await corpus_db.execute("DELETE FROM utterances WHERE id = $1", utterance)
    reply = await graphql(SEARCH, query="flute", first=5)
    assert reply.data["search"]["edges"] == []


@pytest.mark.parametrize(
    ("query", "after"),
    [
        ("", None),
        ("   ", None),
        ("the", None),
        ("!!!", None),
        ("a" * 1001, None),
        ("apple", "not-a-cursor"),
        ("apple\x00", None),
    ],
)
async def test_bad_queries_are_bad_user_input(graphql, corpus, query, after):
    reply = await graphql(SEARCH, query=query, after=after, first=5)
    assert reply.status == 200
    assert reply.data is None or reply.data.get("search") is None
    assert [error["extensions"]["code"] for error in reply.errors] == ["BAD_USER_INPUT"], reply.body


async def test_statement_count(graphql, corpus):
    """The page with headlines and hits is one statement; totalCount one more."""
    document = (
        'query { search(query: "apple", first: 10) { nodes { headline hit { __typename } } } }'
    )
    reply = await graphql(document)
    assert not reply.errors and reply.statements == 1
    document = 'query { search(query: "apple", first: 10) { totalCount nodes { rank } } }'
    reply = await graphql(document)
    assert not reply.errors and reply.statements == 2


WALK = """
query { search(query: "apple", first: 3, kinds: [NODE]) { nodes {
  hit { __typename ... on ThreadNode { id nodeName conversation { id } utterances { id } } }
} } }"""


async def test_hits_are_ordinary_objects_to_walk_on_from(graphql, corpus: Corpus):
    reply = await graphql(WALK)
    assert not reply.errors, reply.errors
    hits = reply.data["search"]["nodes"]
    assert len(hits) == 3
    for item in hits:
        assert item["hit"]["__typename"] == "ThreadNode"
        assert item["hit"]["conversation"]["id"] in {str(c) for c in corpus.mine}


async def test_the_query_cost_limit_counts_search_pages(graphql, corpus):
    """A search page multiplies what is below it, like any connection (graph/limits.py)."""
    document = """query { search(query: "apple", first: 1000) { nodes { hit {
      ... on Conversation { nodes(first: 1000) { nodes { id } } } } } } }"""
    reply = await graphql(document)
    assert [e["extensions"]["code"] for e in reply.errors] == ["QUERY_TOO_COMPLEX"], reply.body


async def test_words_that_leave_the_vector_unchanged_leave_updated_at_alone(corpus_db):
    """tsv_search is derived: an utterance added, rewritten or removed changes the conversation
    only in its vector, so updated_at stays; an utterance of stop words does not even write it."""
    stamped = "2020-01-01T00:00:00+00:00"
    conversation = await corpus_db.fetchval(
        "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
        " started_at, owner_id, visibility, updated_at) VALUES ('quiet vectors', 'transcript',"
        " 'test', now(), 'trigger-owner', 'private', $1) RETURNING id",
        datetime.fromisoformat(stamped),
    )
    state = "SELECT tsv_search::text AS vector, updated_at FROM conversations WHERE id = $1"
    try:
        before = await corpus_db.fetchrow(state, conversation)
        writes = (
            "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)"
            " VALUES ($1, 'the and of', 's1', 1)",
            "UPDATE utterances SET text = 'it was the' WHERE conversation_id = $1",
            "DELETE FROM utterances WHERE conversation_id = $1",
        )
        for write in writes:
            await corpus_db.execute(write, conversation)
            assert await corpus_db.fetchrow(state, conversation) == before, write
        await corpus_db.execute(
            "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)"
            " VALUES ($1, 'a harbor crane', 's1', 1)",
            conversation,
        )
        after = await corpus_db.fetchrow(state, conversation)
        assert "harbor" in after["vector"] and after["updated_at"] == before["updated_at"]
        await corpus_db.execute(
            "UPDATE conversations SET conversation_name = 'renamed' WHERE id = $1", conversation
        )
        renamed = await corpus_db.fetchrow(state, conversation)
        assert renamed["updated_at"] > before["updated_at"]
    finally:
        await corpus_db.execute("DELETE FROM utterances WHERE conversation_id = $1", conversation)
        await corpus_db.execute("DELETE FROM conversations WHERE id = $1", conversation)


def test_statements_are_built_once_per_shape_and_keyed_by_what_changes_the_sql():
    """A statement built for one search serves every viewer and every value of the same shape;
    the text-search configuration, visibility (anonymous or a viewer), kinds and the filters
    given each make another statement."""
    from sqlalchemy.dialects import postgresql

    from graph.search_sql import Search, SearchRequest

    def sql(search: Search) -> str:
        return str(search.page(10, None)[0].compile(dialect=postgresql.dialect()))

    alice = Search(SearchRequest("apple"), "alice", "english")
    assert alice.statements is Search(SearchRequest("budget"), "bob", "english").statements
    assert alice.page(10, None)[1]["viewer_id"] == "alice"
    anonymous = Search(SearchRequest("apple"), None, "english")
    assert anonymous.statements is not alice.statements
    assert "viewer_id" not in sql(anonymous) and "viewer_id" in sql(alice)
    simple = Search(SearchRequest("apple"), "alice", "simple")
    assert "'simple'::regconfig" in sql(simple) and "'english'" not in sql(simple)
    for request in (
        SearchRequest("apple", kinds=("utterance",)),
        SearchRequest("apple", speaker="s1"),
        SearchRequest("apple", time_from=1.0),
        SearchRequest("apple", started_before=datetime(2026, 1, 1)),
    ):
        assert Search(request, "alice", "english").statements is not alice.statements, request
