"""`editsLog`, the mutations' reading of the edits log: its `targetType` filter takes the
`TargetType` enum that `Edit.targetType` returns, as `Conversation.edits` does."""

from __future__ import annotations

import pytest

EDITS_LOG = """
query ($id: ID!, $targetType: TargetType, $targetId: ID) {
  editsLog(conversationId: $id, targetType: $targetType, targetId: $targetId, first: 1000) {
    __typename
    ... on EditsPage { edits { __typename id targetType targetId } }
    ... on UserError { message code }
  }
}
"""


@pytest.mark.parametrize("target_type", ["NODE", "UTTERANCE", "SPEAKER_ATTRIBUTION", "CLAIM"])
async def test_edits_log_filters_by_the_target_type_enum(graphql, conversations, db, target_type):
    conversation_id = conversations.large
    response = await graphql(EDITS_LOG, id=str(conversation_id), targetType=target_type)
    assert not response.errors, response.errors
    page = response.data["editsLog"]
    assert page["__typename"] == "EditsPage", page
    rows = await db.fetch(
        "SELECT id FROM edits_log WHERE conversation_id = $1 AND target_type = $2"
        " ORDER BY created_at DESC, id DESC",
        conversation_id,
        target_type.lower(),
    )
    assert [item["id"] for item in page["edits"]] == [str(row["id"]) for row in rows]
    assert {item["targetType"] for item in page["edits"]} <= {target_type}
    if target_type != "CLAIM":  # the generated data has no edits of claims
        assert rows


async def test_edits_log_narrows_to_one_target_of_a_type(graphql, conversations, db):
    conversation_id = conversations.large
    target_type, target_id = await db.fetchrow(
        "SELECT target_type, target_id FROM edits_log WHERE conversation_id = $1"
        " AND target_type = 'node' ORDER BY id LIMIT 1",
        conversation_id,
    )
    response = await graphql(
        EDITS_LOG, id=str(conversation_id), targetType="NODE", targetId=str(target_id)
    )
    assert not response.errors, response.errors
    rows = await db.fetch(
        "SELECT id FROM edits_log WHERE target_id = $1 AND target_type = $2"
        " ORDER BY created_at DESC, id DESC",
        target_id,
        target_type,
    )
    assert [item["id"] for item in response.data["editsLog"]["edits"]] == [
        str(row["id"]) for row in rows
    ]
    other = await graphql(
        EDITS_LOG, id=str(conversation_id), targetType="CLUSTER", targetId=str(target_id)
    )
    assert other.data["editsLog"] == {"__typename": "EditsPage", "edits": []}


async def test_edits_log_refuses_a_raw_target_type(graphql, conversations):
    """The stored lowercase text is not a value of the enum (it once matched nothing, silently)."""
    response = await graphql(EDITS_LOG, id=str(conversations.large), targetType="node")
    assert response.data is None
    (error,) = response.errors
    assert "Value 'node' does not exist in 'TargetType' enum" in error["message"], error
