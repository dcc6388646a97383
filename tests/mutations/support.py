"""Helpers shared by the mutation tests."""

from __future__ import annotations

from typing import Any

from tests.mutations import documents


async def new_conversation(gql, **overrides: Any) -> dict[str, Any]:
    body = await gql(
        documents.CREATE_CONVERSATION,
        input={
            "conversationName": "Planning",
            "conversationType": "TRANSCRIPT",
            "sourceType": "upload",
            **overrides,
        },
    )
    result = body["data"]["createConversation"]
    assert result["__typename"] == "ConversationPayload", result
    return result["conversation"]


def refused_by_schema(body: dict[str, Any], path: str) -> None:
    """The value at `path` of a variable was refused when the variables were coerced to the
    schema's input types: no resolver ran, so nothing was written."""
    assert body.get("data") is None, body
    messages = [error["message"] for error in body["errors"]]
    assert any(f"invalid value at {path}" in message for message in messages), messages


async def append(gql, conversation_id: str, *texts: str, start: int = 0) -> list[dict[str, Any]]:
    body = await gql(
        documents.APPEND_UTTERANCES,
        conversationId=conversation_id,
        utterances=[
            {
                "sequenceNumber": start + index,
                "text": text,
                "speakerId": f"speaker-{index % 2}",
                "timestampStart": float(index),
                "timestampEnd": float(index) + 0.5,
            }
            for index, text in enumerate(texts)
        ],
    )
    result = body["data"]["appendUtterances"]
    assert result["__typename"] == "AppendUtterancesPayload", result
    return result["utterances"]


async def new_node(gql, conversation_id: str, name: str = "Topic", **fields: Any) -> dict[str, Any]:
    body = await gql(
        documents.CREATE_NODE,
        input={"conversationId": conversation_id, "nodeName": name, "summary": "s", **fields},
    )
    result = body["data"]["createNode"]
    assert result["__typename"] == "NodePayload", result
    return result["node"]


def payload(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    return body["data"][name]
