"""Search, apiCallStats and conversationStatistics for the owner, the shared user, another user
and anonymous, against private, shared, public and soft-deleted conversations (the security
world): exactly the readable conversations count, and an invisible one answers like a missing one.
A call with no conversation is counted for nobody."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.conftest import asyncpg_dsn
from tests.security.conftest import CONVERSATIONS, VIEWERS, Ask, World, can_read

SEARCH = """
query($query: String!) {
  search(query: $query, first: 100) {
    totalCount edges { node { rank conversationId hit { __typename ... on Node { id } } } }
  }
}"""
STATS = """
query {
  apiCallStats(groupBy: [CONVERSATION], first: 100) {
    totalCount nodes { conversationId aggregate { count } }
    totals { count totalCost { sum } }
  }
}"""
STATISTICS = """
query($id: ID!) {
  conversationStatistics(conversationId: $id) {
    conversationId nodesByLevel { level count } speakers { speakerId utterances }
    relationshipsByType { type count } editsByType { key count } editsByUser { key count }
  }
}"""


@pytest.fixture(scope="module")
async def marked(security_database, world: World) -> World:
    """A word said in every conversation of the world, and a call with no conversation."""
    connection = await asyncpg.connect(asyncpg_dsn(security_database))
    try:
        for name, conversation_id in world.conversations.items():
            await connection.execute(
                "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number)"
                " VALUES ($1, $2, 'x', 100000)",
                conversation_id,
                f"the zanzibar plan for {name}",
            )
        await connection.execute(
            "INSERT INTO api_calls_log (endpoint, feature, provider, model, prompt_tokens,"
            " completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost, status,"
            " started_at) VALUES ('/x', 'orphan', 'p', 'm', 1, 1, 2, 100, 100, 200, 'success',"
            " now())"
        )
    finally:
        await connection.close()
    return world


def readable(viewer: str | None, world: World) -> set[str]:
    return {str(world.conversations[name]) for name in CONVERSATIONS if can_read(viewer, name)}


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_search_finds_only_what_the_viewer_reads(ask: Ask, marked: World, viewer):
    for query in ("zanzibar", "alice conversation"):
        reply = await ask(SEARCH, as_=viewer, query=query)
        assert not reply.errors, reply.errors
        hits = reply.data["search"]["edges"]
        found = {hit["node"]["conversationId"] for hit in hits}
        assert found == readable(viewer, marked), (viewer, query)
        assert reply.data["search"]["totalCount"] == len(hits)
        for hit in hits:
            owner = marked.owner_of(hit["node"]["hit"]["id"])
            # the marked utterances are not in the world's ids; their conversation is
            assert owner is None or can_read(viewer, owner)
    # Ranks depend on the hit's own document only: the same for everyone who sees it.
    mine = await ask(SEARCH, as_="alice", query="zanzibar")
    theirs = await ask(SEARCH, as_=viewer, query="zanzibar")
    ranks = {e["node"]["hit"]["id"]: e["node"]["rank"] for e in mine.data["search"]["edges"]}
    for edge in theirs.data["search"]["edges"]:
        assert edge["node"]["rank"] == ranks[edge["node"]["hit"]["id"]]


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_api_call_stats_count_only_readable_calls(
    ask: Ask, marked: World, security_database, viewer
):
    connection = await asyncpg.connect(asyncpg_dsn(security_database))
    try:
        ids = [uuid.UUID(item) for item in readable(viewer, marked)]
        expected = {
            str(row["conversation_id"]): row["count"]
            for row in await connection.fetch(
                "SELECT conversation_id, count(*) FROM api_calls_log"
                " WHERE conversation_id = ANY($1) GROUP BY 1",
                ids,
            )
        }
    finally:
        await connection.close()
    reply = await ask(STATS, as_=viewer)
    assert not reply.errors, reply.errors
    result = reply.data["apiCallStats"]
    got = {group["conversationId"]: group["aggregate"]["count"] for group in result["nodes"]}
    assert got == expected
    assert result["totalCount"] == len(expected)
    assert result["totals"]["count"] == sum(expected.values())
    # The orphan call (cost 200) is nobody's.
    assert float(result["totals"]["totalCost"]["sum"]) < 200


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("conversation", CONVERSATIONS)
async def test_statistics_like_missing_when_invisible(
    ask: Ask, marked: World, viewer, conversation
):
    missing = await ask(STATISTICS, as_=viewer, id=str(uuid.uuid4()))
    reply = await ask(STATISTICS, as_=viewer, id=str(marked.conversations[conversation]))
    if can_read(viewer, conversation):
        statistics = reply.data["conversationStatistics"]
        assert statistics["conversationId"] == str(marked.conversations[conversation])
        assert statistics["nodesByLevel"] and statistics["speakers"]
    else:
        assert reply.body == missing.body
