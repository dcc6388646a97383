"""Cursor connections: keyset pages, per-parent pages in nested lists, page-size limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db.demo import generate_conversation

UTTERANCE_PAGE = """
query ($id: ID!, $first: Int, $after: String, $direction: Direction) {
  conversation(id: $id) {
    utterances(first: $first, after: $after, direction: $direction) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id sequenceNumber } }
      nodes { id }
    }
  }
}
"""


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_walking_the_pages_visits_every_row_once_in_order(
    graphql, conversations, db, direction
):
    rows = await db.fetch(
        "SELECT id FROM utterances WHERE conversation_id = $1 ORDER BY sequence_number"
        + (" DESC" if direction == "DESC" else ""),
        conversations.small,
    )
    seen, after, pages = [], None, 0
    while True:
        response = await graphql(
            UTTERANCE_PAGE, id=str(conversations.small), first=7, after=after, direction=direction
        )
        assert not response.errors, response.errors
        page = response.data["conversation"]["utterances"]
        assert page["totalCount"] == len(rows)
        assert [edge["node"]["id"] for edge in page["edges"]] == [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if page["edges"]:
            assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        seen += [node["id"] for node in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["nodes"]) == 7
        after = page["pageInfo"]["endCursor"]
    assert seen == [str(row["id"]) for row in rows]
    assert pages == -(-len(rows) // 7)


NODES_BY = """
query ($id: ID!, $first: Int, $after: String, $orderBy: NodeOrderField, $direction: Direction) {
  conversation(id: $id) {
    nodes(first: $first, after: $after, orderBy: $orderBy, direction: $direction) {
      pageInfo { hasNextPage endCursor } nodes { id }
    }
  }
}
"""


@pytest.mark.parametrize(
    ("order", "sql"),
    [
        ("TIMESTAMP_START", "coalesce(timestamp_start, 'Infinity'), id"),
        ("LEVEL", "coalesce(level, 2147483647), id"),
        ("NODE_NAME", 'node_name COLLATE "C", id'),
    ],
)
async def test_every_order_pages_with_keyset_cursors(graphql, conversations, db, order, sql):
    rows = await db.fetch(
        f"SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY {sql}", conversations.large
    )
    seen, after = [], None
    while True:
        response = await graphql(
            NODES_BY, id=str(conversations.large), first=300, after=after, orderBy=order
        )
        assert not response.errors, response.errors
        page = response.data["conversation"]["nodes"]
        seen += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 1000
    if order != "NODE_NAME":  # text order follows the database collation
        assert seen == [str(row["id"]) for row in rows]


NESTED = """
query {
  conversations(first: 100, ownerId: "local-developer") {
    nodes { id nodes(first: 2, orderBy: TIMESTAMP_START) {
      totalCount pageInfo { hasNextPage } nodes { id }
    } }
  }
}
"""


async def test_nested_connection_gives_every_parent_its_own_page(graphql, conversations, db):
    response = await graphql(NESTED)
    assert not response.errors, response.errors
    listed = response.data["conversations"]["nodes"]
    assert len(listed) >= 2
    for conversation in listed:
        rows = await db.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1"
            " ORDER BY coalesce(timestamp_start, 'Infinity'), id",
            conversation["id"],
        )
        page = conversation["nodes"]
        assert [node["id"] for node in page["nodes"]] == [str(row["id"]) for row in rows[:2]]
        assert page["totalCount"] == len(rows)
        assert page["pageInfo"]["hasNextPage"] is (len(rows) > 2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: 1001", "maximum page size"),
        ("first: -1", "`first` must not be negative."),
        ('after: "bm90LWEtY3Vyc29y"', "`after` is not a cursor of this list"),
        ('after: "%%%"', "`after` is not a cursor of this list"),
        # a well-formed cursor whose sequence number no int4 column can hold
        (
            'orderBy: LEVEL, after: "WyJsZXZlbCIsIDk5OTk5OTk5OTk5OSwgIjAwMDAwMDAwLTAwMDAtMDAwMC0w'
            'MDAwLTAwMDAwMDAwMDAwMCJd"',
            "`after` is not a cursor of this list",
        ),
    ],
)
async def test_bad_page_arguments_are_clear_errors(graphql, conversations, arguments, message):
    document = "query ($id: ID!) { conversation(id: $id) { nodes(ARGUMENTS) { nodes { id } } } }"
    response = await graphql(document.replace("ARGUMENTS", arguments), id=str(conversations.small))
    assert response.status == 200
    assert response.errors and message in response.errors[0]["message"], response.body
    assert response.errors[0]["extensions"]["code"] in ("BAD_USER_INPUT", "PAGE_SIZE_TOO_LARGE")


async def test_cursor_of_another_order_is_refused(graphql, conversations):
    first = await graphql(NODES_BY, id=str(conversations.small), first=2, orderBy="LEVEL")
    cursor = first.data["conversation"]["nodes"]["pageInfo"]["endCursor"]
    response = await graphql(
        NODES_BY, id=str(conversations.small), first=2, after=cursor, orderBy="NODE_NAME"
    )
    assert "`after` is not a cursor of this list" in response.errors[0]["message"]


async def test_default_page_size_applies(graphql, conversations):
    response = await graphql(
        "query ($id: ID!) { conversation(id: $id) { utterances { totalCount nodes { id } } } }",
        id=str(conversations.large),
    )
    utterances = response.data["conversation"]["utterances"]
    assert utterances["totalCount"] == 5000
    assert len(utterances["nodes"]) == 100  # Settings.default_page_size


CONVERSATIONS = """
query ($owner: String, $type: [ConversationType!], $source: [String!],
       $after: DateTime, $before: DateTime) {
  conversations(first: 1000, ownerId: $owner, conversationType: $type, sourceType: $source,
                startedAfter: $after, startedBefore: $before, orderBy: STARTED_AT) {
    totalCount nodes { id ownerId conversationType sourceType startedAt deletedAt }
  }
}
"""


async def test_conversations_filters_hide_deleted_and_order(graphql, db):
    owner = "local-developer"
    started = datetime(2031, 3, 1, tzinfo=UTC)
    kept = await generate_conversation(
        db, nodes=3, seed=11, owner_id=owner, conversation_type="chat", started_at=started
    )
    deleted = await generate_conversation(
        db, nodes=3, seed=12, owner_id=owner, conversation_type="chat", started_at=started
    )
    await db.execute("UPDATE conversations SET deleted_at = now() WHERE id = $1", deleted)
    source = await db.fetchval("SELECT source_type FROM conversations WHERE id = $1", kept)

    response = await graphql(
        CONVERSATIONS,
        owner=owner,
        type=["CHAT"],
        source=[source],
        after="2031-02-28T00:00:00+00:00",
        before="2031-03-02T00:00:00+00:00",
    )
    assert not response.errors, response.errors
    listed = response.data["conversations"]
    assert [item["id"] for item in listed["nodes"]] == [str(kept)]
    assert listed["totalCount"] == 1

    everything = await graphql(CONVERSATIONS, owner=owner)
    rows = await db.fetch(
        "SELECT id FROM conversations WHERE owner_id = $1 AND deleted_at IS NULL"
        " ORDER BY started_at DESC, id DESC",
        owner,
    )
    listed_ids = [item["id"] for item in everything.data["conversations"]["nodes"]]
    assert str(deleted) not in listed_ids
    assert sorted(listed_ids) == sorted(str(row["id"]) for row in rows)
    starts = [item["startedAt"] for item in everything.data["conversations"]["nodes"]]
    assert starts == sorted(starts, reverse=True)  # newest first by default
    nobody = await graphql(CONVERSATIONS, owner="nobody-at-all")
    assert nobody.data["conversations"] == {"totalCount": 0, "nodes": []}
