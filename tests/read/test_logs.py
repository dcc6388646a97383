"""The edits log and the API call log, read back field by field and compared with their tables.

`conversation.edits` and `conversation.apiCalls` are served by PostgreSQL (graph/rendering) by
default, and by the resolvers on a server started with `LCT_RENDER_IN_DATABASE=false`; both are
checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

EDIT_FIELDS = """
  __typename id conversationId targetType targetId fieldName oldValue newValue editType
  userComment userId userConfidence exportedForTraining trainingDatasetId createdAt
"""
API_CALL_FIELDS = """
  __typename id conversationId endpoint feature provider model promptTokens completionTokens
  totalTokens promptCost completionCost totalCost latencyMs status errorMessage startedAt
  completedAt requestId
"""

EDITS = """
query ($id: ID!) {
  conversation(id: $id) {
    __typename id
    edits(first: 1000) { __typename totalCount nodes { ITEMS } }
  }
}
"""

API_CALLS = """
query ($id: ID!) {
  conversation(id: $id) {
    __typename id
    apiCalls(first: 1000) { __typename totalCount nodes { ITEMS } }
  }
}
"""

SERVED = ("rendered", "resolved")

ENUM_COLUMNS = ("target_type", "edit_type")
DATETIME_COLUMNS = ("created_at", "started_at", "completed_at")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def as_served(row: Any) -> dict[str, Any]:
    """A table row as the API serves it: camelCase keys, ids as text, enums by name."""
    item: dict[str, Any] = {}
    for column, value in dict(row).items():
        if column in ENUM_COLUMNS:
            value = value.upper()
        elif column in ("id", "conversation_id", "target_id") and value is not None:
            value = str(value)
        item[_camel(column)] = value
    return item


def as_read(item: dict[str, Any]) -> dict[str, Any]:
    """A served item with its dates parsed, without the fields that are not columns."""
    read = {key: value for key, value in item.items() if key not in ("__typename", "conversation")}
    for column in DATETIME_COLUMNS:
        key = _camel(column)
        if read.get(key) is not None:
            read[key] = datetime.fromisoformat(read[key])
    return read


@pytest.mark.parametrize("served", SERVED)
@pytest.mark.parametrize("which", ["small", "large"])
async def test_edits_are_the_rows_of_the_log(
    graphql, graphql_resolved, conversations, db, served, which
):
    conversation_id = getattr(conversations, which)
    document = EDITS.replace("ITEMS", EDIT_FIELDS + "conversation { id }")
    post = graphql if served == "rendered" else graphql_resolved
    response = await post(document, id=str(conversation_id))
    assert not response.errors, response.errors
    assert (response.body["extensions"]["renderedLists"] > 0) is (served == "rendered")
    rows = await db.fetch(
        "SELECT id, conversation_id, target_type, target_id, field_name, old_value, new_value,"
        " edit_type, user_comment, user_id, user_confidence, exported_for_training,"
        " training_dataset_id, created_at FROM edits_log WHERE conversation_id = $1"
        " ORDER BY created_at DESC NULLS FIRST, id DESC",
        conversation_id,
    )
    edits = response.data["conversation"]["edits"]
    assert edits["totalCount"] == len(rows) > 0
    assert [as_read(item) for item in edits["nodes"]] == [as_served(row) for row in rows]
    assert {item["__typename"] for item in edits["nodes"]} == {"Edit"}
    assert {item["conversation"]["id"] for item in edits["nodes"]} == {str(conversation_id)}


@pytest.mark.parametrize("served", SERVED)
@pytest.mark.parametrize("which", ["small", "large"])
async def test_api_calls_are_the_rows_of_the_log(
    graphql, graphql_resolved, conversations, db, served, which
):
    conversation_id = getattr(conversations, which)
    document = API_CALLS.replace("ITEMS", API_CALL_FIELDS + "conversation { id }")
    post = graphql if served == "rendered" else graphql_resolved
    response = await post(document, id=str(conversation_id))
    assert not response.errors, response.errors
    assert (response.body["extensions"]["renderedLists"] > 0) is (served == "rendered")
    rows = await db.fetch(
        "SELECT id, conversation_id, endpoint, feature, provider, model, prompt_tokens,"
        " completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost, latency_ms,"
        " status, error_message, started_at, completed_at, request_id FROM api_calls_log"
        " WHERE conversation_id = $1 ORDER BY started_at DESC, id DESC",
        conversation_id,
    )
    calls = response.data["conversation"]["apiCalls"]
    assert calls["totalCount"] == len(rows) > 0
    assert [as_read(item) for item in calls["nodes"]] == [as_served(row) for row in rows]
    assert {item["__typename"] for item in calls["nodes"]} == {"ApiCall"}
    assert {item["conversation"]["id"] for item in calls["nodes"]} == {str(conversation_id)}


async def test_the_logs_of_an_invisible_conversation_are_not_reached(graphql, conversations):
    for document in (EDITS, API_CALLS):
        response = await graphql(document.replace("ITEMS", "id"), id=str(conversations.foreign))
        assert not response.errors, response.errors
        assert response.data == {"conversation": None}
