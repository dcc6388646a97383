"""Every mutation over real HTTP against the running server: success and each of its errors."""

from __future__ import annotations

import uuid

import pytest

from tests.mutations import documents
from tests.mutations.conftest import VIEWER
from tests.mutations.support import (
    append,
    new_conversation,
    new_node,
    payload,
    refused_by_schema,
)

# Conversations ----------------------------------------------------------------------------------


async def test_conversation_lifecycle(gql, database) -> None:
    conversation = await new_conversation(gql)
    updated = payload(
        await gql(
            documents.UPDATE_CONVERSATION,
            input={
                "id": conversation["id"],
                "expectedUpdatedAt": conversation["updatedAt"],
                "conversationName": "Renamed",
            },
        ),
        "updateConversation",
    )
    assert updated["conversation"]["conversationName"] == "Renamed"
    stale = payload(
        await gql(
            documents.UPDATE_CONVERSATION,
            input={
                "id": conversation["id"],
                "expectedUpdatedAt": conversation["updatedAt"],
                "conversationName": "Lost",
            },
        ),
        "updateConversation",
    )
    assert stale["__typename"] == "ConflictError"
    assert stale["current"]["conversationName"] == "Renamed"

    deleted = payload(
        await gql(documents.DELETE_CONVERSATION, id=conversation["id"]), "deleteConversation"
    )
    assert deleted["conversation"]["deletedAt"] is not None
    refused = payload(
        await gql(
            documents.CREATE_NODE,
            input={"conversationId": conversation["id"], "nodeName": "n", "summary": "s"},
        ),
        "createNode",
    )
    assert refused["__typename"] == "NotFoundError"
    assert refused["field"] == "conversationId"
    restored = payload(
        await gql(documents.RESTORE_CONVERSATION, id=conversation["id"]), "restoreConversation"
    )
    assert restored["conversation"]["deletedAt"] is None

    node = await new_node(gql, conversation["id"])
    purged = payload(
        await gql(documents.PURGE_CONVERSATION, id=conversation["id"]), "purgeConversation"
    )
    assert purged["purgedId"] == conversation["id"]
    assert (
        await database.fetchval("SELECT count(*) FROM nodes WHERE id = $1", uuid.UUID(node["id"]))
        == 0
    )
    assert (
        await database.fetchval(
            "SELECT count(*) FROM conversations WHERE id = $1", uuid.UUID(conversation["id"])
        )
        == 0
    )
    gone = payload(
        await gql(documents.RESTORE_CONVERSATION, id=conversation["id"]), "restoreConversation"
    )
    assert gone["__typename"] == "NotFoundError"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"conversationName": "  "}, "conversationName", "REQUIRED"),
        ({"participantCount": -1}, "participantCount", "OUT_OF_RANGE"),
        ({"visibility": None}, "visibility", "REQUIRED"),
    ],
)
async def test_create_conversation_validation(gql, overrides, field, code) -> None:
    body = await gql(
        documents.CREATE_CONVERSATION,
        input={
            "conversationName": "x",
            "conversationType": "CHAT",
            "sourceType": "upload",
            **overrides,
        },
    )
    result = payload(body, "createConversation")
    assert result["__typename"] == "ValidationError"
    assert (result["field"], result["code"]) == (field, code)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"conversationType": "chat"}, ".conversationType"),  # the stored text, not the enum
        ({"conversationType": "PODCAST"}, ".conversationType"),
        ({"visibility": "public"}, ".visibility"),
        ({"participants": [{"name": "Ann", "nickname": "A"}]}, ".participants[0]"),
        ({"goals": [{"goal": "decide"}]}, ".goals[0]"),
        ({"startedAt": "2026-01-01T00:00:00"}, ".startedAt"),  # no UTC offset
        ({"startedAt": "2026-01-01"}, ".startedAt"),
    ],
)
async def test_create_conversation_refused_by_the_schema(gql, database, overrides, path) -> None:
    before = await database.fetchval("SELECT count(*) FROM conversations")
    body = await gql(
        documents.CREATE_CONVERSATION,
        input={"conversationName": "x", "conversationType": "CHAT", "sourceType": "upload"}
        | overrides,
    )
    refused_by_schema(body, path)
    assert await database.fetchval("SELECT count(*) FROM conversations") == before


SHAPED = """
  id updatedAt conversationType visibility startedAt
  participants { id name role email avatarUrl platformId metadata }
  goals { goalType description targetMetric targetValue weight }
"""
CREATE_SHAPED = f"""
mutation($input: CreateConversationInput!) {{
  createConversation(input: $input) {{
    __typename
    ... on ConversationPayload {{ conversation {{ {SHAPED} }} }}
    ... on UserError {{ message code }}
  }}
}}"""
UPDATE_SHAPED = f"""
mutation($input: UpdateConversationInput!) {{
  updateConversation(input: $input) {{
    __typename
    ... on ConversationPayload {{ conversation {{ {SHAPED} }} }}
    ... on UserError {{ message code }}
  }}
}}"""


async def test_typed_inputs_are_stored_as_their_outputs_read_them(gql) -> None:
    created = payload(
        await gql(
            CREATE_SHAPED,
            input={
                "conversationName": "Shaped",
                "conversationType": "LIVE_AUDIO",
                "sourceType": "upload",
                "visibility": "SHARED",
                "startedAt": "2026-01-01T09:30:00Z",
                "participants": [
                    {"id": "a", "name": "Ann", "role": "facilitator", "metadata": {"k": 1}}
                ],
                "goals": [{"goalType": "decide", "weight": 0.5, "targetValue": [1, 2]}],
            },
        ),
        "createConversation",
    )
    assert created["__typename"] == "ConversationPayload", created
    conversation = created["conversation"]
    assert conversation["conversationType"] == "LIVE_AUDIO"
    assert conversation["visibility"] == "SHARED"
    assert conversation["startedAt"] == "2026-01-01T09:30:00+00:00"
    assert conversation["participants"] == [
        {
            "id": "a",
            "name": "Ann",
            "role": "facilitator",
            "email": None,
            "avatarUrl": None,
            "platformId": None,
            "metadata": {"k": 1},
        }
    ]
    assert conversation["goals"] == [
        {
            "goalType": "decide",
            "description": None,
            "targetMetric": None,
            "targetValue": [1, 2],
            "weight": 0.5,
        }
    ]
    # What was read goes back unchanged: the same enum values, the same typed objects.
    echoed = payload(
        await gql(
            UPDATE_SHAPED,
            input={
                "id": conversation["id"],
                "expectedUpdatedAt": conversation["updatedAt"],
                "conversationType": conversation["conversationType"],
                "visibility": conversation["visibility"],
                "participants": conversation["participants"],
                "goals": conversation["goals"],
            },
        ),
        "updateConversation",
    )
    assert echoed["__typename"] == "ConversationPayload", echoed
    for key in ("conversationType", "visibility", "participants", "goals"):
        assert echoed["conversation"][key] == conversation[key]


async def test_update_conversation_not_found_and_bad_id(gql) -> None:
    missing = payload(
        await gql(
            documents.UPDATE_CONVERSATION,
            input={"id": str(uuid.uuid4()), "expectedUpdatedAt": "2026-01-01T00:00:00+00:00"},
        ),
        "updateConversation",
    )
    assert missing["__typename"] == "NotFoundError"
    malformed = payload(
        await gql(
            documents.UPDATE_CONVERSATION,
            input={"id": "not-a-uuid", "expectedUpdatedAt": "2026-01-01T00:00:00+00:00"},
        ),
        "updateConversation",
    )
    assert (malformed["__typename"], malformed["field"]) == ("ValidationError", "id")


async def test_update_conversation_validates_values(gql, database) -> None:
    conversation = await new_conversation(gql)
    version = {"id": conversation["id"], "expectedUpdatedAt": conversation["updatedAt"]}
    cases = [
        ({"conversationName": "  "}, "conversationName", "REQUIRED"),
        ({"conversationName": None}, "conversationName", "REQUIRED"),
        ({"conversationType": None}, "conversationType", "REQUIRED"),
        ({"visibility": None}, "visibility", "REQUIRED"),
        ({"durationSeconds": -1}, "durationSeconds", "OUT_OF_RANGE"),
    ]
    for fields, field, code in cases:
        result = payload(
            await gql(documents.UPDATE_CONVERSATION, input={**version, **fields}),
            "updateConversation",
        )
        assert (result["__typename"], result["field"], result["code"]) == (
            "ValidationError",
            field,
            code,
        ), fields
    assert (
        await database.fetchval(
            "SELECT conversation_name FROM conversations WHERE id = $1",
            uuid.UUID(conversation["id"]),
        )
        == "Planning"
    )


@pytest.mark.parametrize(
    ("document", "name"),
    [
        (documents.DELETE_CONVERSATION, "deleteConversation"),
        (documents.RESTORE_CONVERSATION, "restoreConversation"),
        (documents.PURGE_CONVERSATION, "purgeConversation"),
    ],
)
async def test_malformed_conversation_ids_are_validation_errors(gql, document, name) -> None:
    result = payload(await gql(document, id="not-a-uuid"), name)
    assert (result["__typename"], result["field"], result["code"]) == (
        "ValidationError",
        "id",
        "INVALID",
    )


async def someone_elses(database, visibility: str, shared_with: list[str] | None = None) -> str:
    conversation_id = uuid.uuid4()
    await database.execute(
        "INSERT INTO conversations (id, conversation_name, conversation_type, source_type, "
        "started_at, owner_id, visibility, shared_with) VALUES ($1, 'theirs', 'chat', 'x', now(), "
        "'someone-else', $2, $3)",
        conversation_id,
        visibility,
        shared_with,
    )
    return str(conversation_id)


async def test_foreign_conversations_are_forbidden_or_hidden(gql, database) -> None:
    """Readable but not the viewer's: ForbiddenError; not even readable: NotFoundError."""
    public = await someone_elses(database, "public")
    shared = await someone_elses(database, "shared", [VIEWER])
    private = await someone_elses(database, "private")
    cases = ((public, "ForbiddenError"), (shared, "ForbiddenError"), (private, "NotFoundError"))
    for conversation_id, expected in cases:
        node = payload(
            await gql(
                documents.CREATE_NODE,
                input={"conversationId": conversation_id, "nodeName": "n", "summary": "s"},
            ),
            "createNode",
        )
        assert node["__typename"] == expected
        purge = payload(
            await gql(documents.PURGE_CONVERSATION, id=conversation_id), "purgeConversation"
        )
        assert purge["__typename"] == expected
    remaining = await database.fetchval(
        "SELECT count(*) FROM conversations WHERE id = ANY($1::uuid[])",
        [uuid.UUID(item) for item in (public, shared, private)],
    )
    assert remaining == 3


# Utterances -------------------------------------------------------------------------------------


async def test_append_utterances_is_idempotent(gql, database) -> None:
    conversation = await new_conversation(gql)
    first = await append(gql, conversation["id"], "hello there", "three more words")
    assert [row["sequenceNumber"] for row in first] == [0, 1]
    retry = payload(
        await gql(
            documents.APPEND_UTTERANCES,
            conversationId=conversation["id"],
            utterances=[
                {"sequenceNumber": 1, "text": "three more words", "speakerId": "a"},
                {"sequenceNumber": 2, "text": "new", "speakerId": "a"},
            ],
        ),
        "appendUtterances",
    )
    assert retry["skippedSequenceNumbers"] == [1]
    assert [row["sequenceNumber"] for row in retry["utterances"]] == [2]
    assert retry["conversation"]["totalUtterances"] == 3
    assert retry["conversation"]["totalWords"] == 6
    assert (
        await database.fetchval(
            "SELECT count(*) FROM utterances WHERE conversation_id = $1",
            uuid.UUID(conversation["id"]),
        )
        == 3
    )


@pytest.mark.parametrize(
    ("utterances", "typename", "field"),
    [
        (
            [{"sequenceNumber": 1, "text": "a", "speakerId": "s"}] * 2,
            "ValidationError",
            "utterances[1].sequenceNumber",
        ),
        (
            [
                {
                    "sequenceNumber": 1,
                    "text": "a",
                    "speakerId": "s",
                    "timestampStart": 5.0,
                    "timestampEnd": 1.0,
                }
            ],
            "ValidationError",
            "utterances[0].timestampEnd",
        ),
        (
            [{"sequenceNumber": -1, "text": "a", "speakerId": "s"}],
            "ValidationError",
            "utterances[0].sequenceNumber",
        ),
        (
            [{"sequenceNumber": 1, "text": "", "speakerId": "s"}],
            "ValidationError",
            "utterances[0].text",
        ),
        ([], "ValidationError", "utterances"),
    ],
)
async def test_append_utterances_validation(gql, utterances, typename, field) -> None:
    conversation = await new_conversation(gql)
    result = payload(
        await gql(
            documents.APPEND_UTTERANCES, conversationId=conversation["id"], utterances=utterances
        ),
        "appendUtterances",
    )
    assert (result["__typename"], result["field"]) == (typename, field)


async def test_append_to_missing_conversation(gql) -> None:
    result = payload(
        await gql(
            documents.APPEND_UTTERANCES,
            conversationId=str(uuid.uuid4()),
            utterances=[{"sequenceNumber": 1, "text": "a", "speakerId": "s"}],
        ),
        "appendUtterances",
    )
    assert result["__typename"] == "NotFoundError"


async def test_update_utterance_logs_text_and_speaker(gql, database) -> None:
    conversation = await new_conversation(gql)
    (utterance,) = await append(gql, conversation["id"], "helo world")
    result = payload(
        await gql(
            documents.UPDATE_UTTERANCE,
            input={
                "id": utterance["id"],
                "expectedUpdatedAt": utterance["updatedAt"],
                "text": "hello big world",
                "speakerId": "alice",
            },
            comment="typo and wrong speaker",
            confidence=0.8,
        ),
        "updateUtterance",
    )
    assert result["utterance"]["text"] == "hello big world"
    rows = await database.fetch(
        "SELECT target_type, field_name, old_value, new_value, user_comment, user_confidence, "
        "edit_type FROM edits_log WHERE target_id = $1 ORDER BY target_type",
        uuid.UUID(utterance["id"]),
    )
    assert [tuple(row) for row in rows] == [
        (
            "speaker_attribution",
            "speaker_id",
            "speaker-0",
            "alice",
            "typo and wrong speaker",
            0.8,
            "correction",
        ),
        (
            "utterance",
            "text",
            "helo world",
            "hello big world",
            "typo and wrong speaker",
            0.8,
            "correction",
        ),
    ]
    assert (
        await database.fetchval(
            "SELECT total_words FROM conversations WHERE id = $1", uuid.UUID(conversation["id"])
        )
        == 3
    )
    stale = payload(
        await gql(
            documents.UPDATE_UTTERANCE,
            input={"id": utterance["id"], "expectedUpdatedAt": utterance["updatedAt"], "text": "x"},
        ),
        "updateUtterance",
    )
    assert stale["__typename"] == "ConflictError"
    assert stale["current"]["text"] == "hello big world"
    missing = payload(
        await gql(
            documents.UPDATE_UTTERANCE,
            input={
                "id": str(uuid.uuid4()),
                "expectedUpdatedAt": utterance["updatedAt"],
                "text": "x",
            },
        ),
        "updateUtterance",
    )
    assert missing["__typename"] == "NotFoundError"
    bad_note = payload(
        await gql(
            documents.UPDATE_UTTERANCE,
            input={"id": utterance["id"], "expectedUpdatedAt": utterance["updatedAt"], "text": "x"},
            confidence=1.5,
        ),
        "updateUtterance",
    )
    assert (bad_note["__typename"], bad_note["field"]) == ("ValidationError", "confidence")
