"""A mutation argument no column can hold (a NUL character, an unpaired surrogate) is a malformed
request: refused before any resolver runs with a top-level BAD_USER_INPUT naming where it was, as
for queries, whether it came as a variable or a literal, in an input field, a list or a JSON value
(key or value). Nothing is written. (GraphQL's syntax itself refuses a surrogate escape in a
literal.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.mutations import documents

CONVERSATION = {"conversationName": "x", "conversationType": "CHAT", "sourceType": "upload"}
NUL = "a NUL character (U+0000)"
SURROGATE = "an unpaired surrogate (U+D800)"


async def post(live_server: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    # ASCII-escaped JSON: a lone surrogate has no UTF-8 form, so it travels as `\ud800`.
    content = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        response = await client.post(
            "/graphql", content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text
    return response.json()


def refused(body: dict[str, Any]) -> list[tuple[str, str]]:
    assert body.get("data") is None, body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"BAD_USER_INPUT"}, body
    return [
        (error["extensions"]["argument"], error["message"].split(" holds ")[1].split(",")[0])
        for error in body["errors"]
    ]


async def counts(database) -> tuple[int, ...]:
    return tuple(
        await database.fetchrow(
            "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM nodes),"
            " (SELECT count(*) FROM utterances), (SELECT count(*) FROM edits_log)"
        )
    )


async def conversation_id(gql) -> str:
    body = await gql(documents.CREATE_CONVERSATION, input=CONVERSATION)
    return body["data"]["createConversation"]["conversation"]["id"]


@pytest.mark.parametrize(
    ("input", "where", "what"),
    [
        ({"conversationName": "a\x00b"}, "$input.conversationName", NUL),
        ({"conversationName": "\ud800"}, "$input.conversationName", SURROGATE),
        ({"sourceMetadata": {"tool": "x\x00"}}, "$input.sourceMetadata.tool", NUL),
        (
            {"participants": [{"name": "Ann"}, {"metadata": {"name\x00": "Bo"}}]},
            "$input.participants[1].metadata (a key)",
            NUL,
        ),
        ({"goals": [{"targetValue": ["ok", "\x00"]}]}, "$input.goals[0].targetValue[1]", NUL),
    ],
)
async def test_create_conversation_variables(live_server, database, input, where, what) -> None:
    before = await counts(database)
    body = await post(
        live_server, documents.CREATE_CONVERSATION, {"input": {**CONVERSATION, **input}}
    )
    assert refused(body) == [(where, what)]
    assert await counts(database) == before


async def test_create_node_input_fields_json_values_and_arguments(
    live_server, gql, database
) -> None:
    conversation = await conversation_id(gql)
    before = await counts(database)
    body = await post(
        live_server,
        documents.CREATE_NODE,
        {
            "input": {
                "conversationId": conversation,
                "nodeName": "n",
                "summary": "s\x00",
                "keyPoints": ["fine", "\udfff"],
                "speakerInfo": {
                    "speakerName": "b\x00",
                    "secondarySpeakers": [{"speakerId": "\x00"}],
                },
                "displayPreferences": {"\x00": 1},
            },
            "comment": "why\x00",
        },
    )
    assert refused(body) == [
        ("$input.summary", NUL),
        ("$input.keyPoints[1]", "an unpaired surrogate (U+DFFF)"),
        ("$input.speakerInfo.speakerName", NUL),
        ("$input.speakerInfo.secondarySpeakers[0].speakerId", NUL),
        ("$input.displayPreferences (a key)", NUL),
        ("$comment", NUL),
    ]
    assert await counts(database) == before


async def test_append_utterances_list_items(live_server, gql, database) -> None:
    conversation = await conversation_id(gql)
    before = await counts(database)
    body = await post(
        live_server,
        documents.APPEND_UTTERANCES,
        {
            "conversationId": conversation,
            "utterances": [
                {"sequenceNumber": 1, "text": "a", "speakerId": "s"},
                {
                    "sequenceNumber": 2,
                    "text": "b",
                    "speakerId": "s",
                    "platformMetadata": {"raw": ["ok", "nul \x00"]},
                },
            ],
        },
    )
    assert refused(body) == [("$utterances[1].platformMetadata.raw[1]", NUL)]
    assert await counts(database) == before


async def test_import_document_json(live_server, database) -> None:
    before = await counts(database)
    document = {
        "format": "lct-graph.conversation",
        "conversation": {**CONVERSATION},
        "nodes": [{"id": "n1", "nodeName": "n", "summary": "s", "speakerInfo": {"a": "b\x00c"}}],
    }
    body = await post(live_server, documents.IMPORT_CONVERSATION, {"document": document})
    assert refused(body) == [("$document.nodes[0].speakerInfo.a", NUL)]
    assert await counts(database) == before


LITERAL_CREATE = """
mutation {
  createConversation(input: {conversationName: "a\\u0000b", conversationType: CHAT,
                             sourceType: "upload", sourceMetadata: {tool: ["x", "\\u0000"]}}) {
    __typename
  }
}"""

LITERAL_UPDATE_NODE = """
mutation($id: ID!, $at: DateTime!) {
  updateNode(input: {id: $id, expectedUpdatedAt: $at, keyPoints: ["ok", "\\u0000"],
                     speakerInfo: {primarySpeaker: "p\\u0000"}}, comment: "c\\u0000") {
    __typename
  }
}"""


async def test_literal_arguments(live_server, gql, database) -> None:
    before = await counts(database)
    assert refused(await post(live_server, LITERAL_CREATE, {})) == [
        ("createConversation(input.conversationName)", NUL),
        ("createConversation(input.sourceMetadata.tool[1])", NUL),
    ]
    assert await counts(database) == before

    conversation = await conversation_id(gql)
    node = (
        await gql(
            documents.CREATE_NODE,
            input={"conversationId": conversation, "nodeName": "n", "summary": "s"},
        )
    )["data"]["createNode"]["node"]
    before = await counts(database)
    body = await post(live_server, LITERAL_UPDATE_NODE, {"id": node["id"], "at": node["updatedAt"]})
    assert refused(body) == [
        ("updateNode(input.keyPoints[1])", NUL),
        ("updateNode(input.speakerInfo.primarySpeaker)", NUL),
        ("updateNode(comment)", NUL),
    ]
    assert await counts(database) == before
    stored = await database.fetchval("SELECT key_points FROM nodes WHERE id = $1::uuid", node["id"])
    assert stored in (None, [])
