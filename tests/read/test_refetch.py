"""Refetch by id with ids that cannot be objects: a malformed id answers at its own position.

`nodes(ids:)` is `[Node]!`: an error raised by the field itself would null the non-null list and
with it the whole `data`, sibling root fields included. A malformed id is null at its index with
an error whose path names that index, as `node(id:)` answers a malformed id: null and an error.
"""

from __future__ import annotations

import uuid

MODERN = "application/graphql-response+json"

REFETCH_MANY = """
query ($ids: [ID!]!, $conversation: ID!) {
  nodes(ids: $ids) { __typename id }
  conversation(id: $conversation) { __typename id }
}
"""

REFETCH_ONE = """
query ($id: ID!, $conversation: ID!) {
  node(id: $id) { __typename id }
  conversation(id: $conversation) { __typename id }
}
"""


async def test_a_malformed_id_is_null_at_its_index_and_the_rest_is_answered(
    graphql, conversations, db
):
    node_id = await db.fetchval(
        "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY id LIMIT 1", conversations.small
    )
    ids = [str(node_id), "not-a-uuid", str(uuid.uuid4()), str(conversations.small), "42"]
    response = await graphql(
        REFETCH_MANY,
        ids=ids,
        conversation=str(conversations.small),
        headers={"accept": MODERN},
    )
    assert response.status == 200, response.body
    assert response.data == {
        "nodes": [
            {"__typename": "ThreadNode", "id": str(node_id)},
            None,
            None,  # missing: null without an error
            {"__typename": "Conversation", "id": str(conversations.small)},
            None,
        ],
        "conversation": {"__typename": "Conversation", "id": str(conversations.small)},
    }
    assert [(error["path"], error["message"], error["extensions"]["code"])
            for error in response.errors] == [
        (["nodes", 1], "`ids[1]` is not a valid id: 'not-a-uuid' is not a UUID.", "BAD_USER_INPUT"),
        (["nodes", 4], "`ids[4]` is not a valid id: '42' is not a UUID.", "BAD_USER_INPUT"),
    ]  # fmt: skip


async def test_only_malformed_ids_still_leave_the_siblings(graphql, conversations):
    response = await graphql(REFETCH_MANY, ids=["x", ""], conversation=str(conversations.small))
    assert response.data == {
        "nodes": [None, None],
        "conversation": {"__typename": "Conversation", "id": str(conversations.small)},
    }
    assert [error["path"] for error in response.errors] == [["nodes", 0], ["nodes", 1]]


async def test_node_answers_a_malformed_id_the_same_way(graphql, conversations):
    response = await graphql(REFETCH_ONE, id="not-a-uuid", conversation=str(conversations.small))
    assert response.data == {
        "node": None,
        "conversation": {"__typename": "Conversation", "id": str(conversations.small)},
    }
    (error,) = response.errors
    assert error["path"] == ["node"]
    assert error["message"] == "`id` is not a valid id: 'not-a-uuid' is not a UUID."
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_too_many_ids_are_still_refused_as_a_whole(graphql, conversations):
    response = await graphql(REFETCH_MANY, ids=["x"] * 1001, conversation=str(conversations.small))
    assert response.data is None
    assert response.errors[0]["extensions"]["code"] in ("PAGE_SIZE_TOO_LARGE", "BAD_USER_INPUT")
