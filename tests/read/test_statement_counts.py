"""How many SQL statements a query costs depends on its shape, never on how many rows it returns.

Each representative query runs on the 10-node and on the 1,000-node conversation; both must cost
exactly the expected number of statements (`extensions.sqlStatements`, counted by the engine's
`before_cursor_execute`). Loaders are per field (`Loaders.at`), so the count is at most one
statement per list or reference field and argument set; a list or connection PostgreSQL renders
whole (graph/rendering) is one statement with everything under it.
"""

from __future__ import annotations

import uuid

import pytest

from tests.read import documents

COUNTS = {
    # conversation; the nodes connection, rendered whole by PostgreSQL (graph/rendering): the
    # page with each node's outgoing relationships, and totalCount
    "canvas": (documents.CANVAS, 1 + 1),
    # conversation; rootNodes, rendered with the whole hierarchy below them and every
    # traversal at the bottom (conversation, parent, neighbours, ancestors, clusters, ...)
    "deep": (documents.DEEP, 1 + 1),
    # conversation; then one each for utterances, relationships, edits and apiCalls (each
    # connection rendered whole: page, traversals and count) and for clusters
    "lists": (documents.LISTS, 1 + 4 + 1),
    # conversation; nodes (relationships in both directions rendered with them), bookmarks and
    # utterances by speaker, each connection one statement
    "filtered": (documents.FILTERED, 1 + 3),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
async def test_statement_count_does_not_depend_on_size(graphql, conversations, name):
    """The executor's path costs the counts above; asked again, the server answers with the
    one statement it compiled from the first answer (graph/operations.py), at any size."""
    document, expected = COUNTS[name]
    counts = []
    for conversation_id in (conversations.small, conversations.large):
        new = f"# {uuid.uuid4()}\n{document}"  # a text the server has not seen
        first = await graphql(new, id=str(conversation_id))
        again = await graphql(new, id=str(conversation_id))
        assert not first.errors and not again.errors, (first.errors, again.errors)
        assert again.body["extensions"]["compiled"] is True
        assert again.data == first.data
        counts.append((first.statements, again.statements))
    assert counts == [(expected, 1), (expected, 1)]


async def _one_of_each(db, conversation_id: uuid.UUID) -> list[str]:
    ids = [conversation_id]
    for table in ("nodes", "relationships", "clusters", "utterances", "edits_log", "api_calls_log"):
        ids += await db.fetchval(
            f"SELECT array_agg(id) FROM (SELECT id FROM {table} WHERE conversation_id = $1"
            " ORDER BY id LIMIT 3) AS picked",
            conversation_id,
        )
    return [str(value) for value in ids] + [str(uuid.uuid4())]


async def test_refetch_costs_one_statement_for_any_mix_of_types(graphql, conversations, db):
    results = []
    for conversation_id in (conversations.small, conversations.large):
        ids = await _one_of_each(db, conversation_id)
        response = await graphql(documents.REFETCH, ids=ids)
        assert not response.errors, response.errors
        found = response.data["nodes"]
        assert [item and item["id"] for item in found] == [*ids[:-1], None]
        assert {item["__typename"] for item in found if item} == {
            "Conversation",
            "ThreadNode",
            "Relationship",
            "Cluster",
            "Utterance",
            "Edit",
            "ApiCall",
        }
        results.append(response.statements)
    # the UNION ALL lookup; then: `conversation` (of nodes and of API calls: one field of the
    # response, one batch), relationship fromNode, cluster nodes, utterance node, edit target
    assert results == [1 + 5, 1 + 5]


async def test_conversations_list_costs_the_same_for_any_page_size(graphql, conversations):
    counts = []
    for first in (1, 3, 50):
        response = await graphql(documents.CONVERSATIONS, first=first)
        assert not response.errors, response.errors
        assert len(response.data["conversations"]["nodes"]) == min(
            first, response.data["conversations"]["totalCount"]
        )
        counts.append(response.statements)
    # the conversations connection rendered whole: page, count, each one's nodes page and count
    assert counts == [1, 1, 1]
