"""`importConversation(preserveIds: true)` must not tell a caller whose ids exist: an id already
stored anywhere (in any table, in anyone's conversation, visible to the caller or not) is refused
with one answer, before anything is written, in the same number of SQL statements."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.mutations import documents
from tests.security.conftest import Ask, World
from tests.security.test_mutation_matrix import fingerprint, strings

# Imports into conversations of its own, so kept out of the read matrix's users.
IMPORTER = "erin"
SECTIONS = {
    "Conversation": "conversation",
    "Utterance": "utterances",
    "ThreadNode": "nodes",
    "Relationship": "relationships",
    "Cluster": "clusters",
    "Edit": "edits",
}


def document(ids: dict[str, Any], user: str = IMPORTER) -> dict[str, Any]:
    """A small conversation of `user`'s with one row of every imported kind, under `ids`
    (kind -> id)."""
    node, other_node = ids["ThreadNode"], ids["ThreadNode2"]
    return strings(
        {
            "conversation": {
                "id": ids["Conversation"],
                "conversationName": f"{user}'s",
                "conversationType": "chat",
                "sourceType": "app",
                "startedAt": "2026-01-01T00:00:00+00:00",
                "visibility": "private",
            },
            "utterances": [
                {"id": ids["Utterance"], "sequenceNumber": 1, "text": "hi", "speakerId": "s"}
            ],
            "nodes": [
                {"id": node, "nodeName": "a", "summary": "s", "utteranceIds": [ids["Utterance"]]},
                {"id": other_node, "nodeName": "b", "summary": "s"},
            ],
            "relationships": [
                {
                    "id": ids["Relationship"],
                    "fromNodeId": node,
                    "toNodeId": other_node,
                    "relationshipType": "supports",
                }
            ],
            "clusters": [{"id": ids["Cluster"], "clusterName": "c", "level": 1, "nodeIds": [node]}],
            "edits": [
                {
                    "id": ids["Edit"],
                    "targetType": "node",
                    "targetId": node,
                    "fieldName": "node_name",
                    "oldValue": "x",
                    "newValue": "a",
                    "editType": "correction",
                    "userId": user,
                }
            ],
        }
    )


def fresh_ids() -> dict[str, Any]:
    return {kind: uuid.uuid4() for kind in (*SECTIONS, "ThreadNode2")}


@pytest.fixture(scope="module")
async def own_ids(ask: Ask) -> dict[str, Any]:
    """The ids of a conversation the importer owns, and of an API call recorded in it."""
    ids = fresh_ids()
    reply = await ask(
        documents.IMPORT_CONVERSATION, as_=IMPORTER, document=document(ids), preserveIds=True
    )
    assert reply.data["importConversation"]["__typename"] == "ImportConversationPayload", reply.body
    call = await ask(
        documents.RECORD_API_CALL,
        as_=IMPORTER,
        input={
            "conversationId": str(ids["Conversation"]),
            **{"endpoint": "e", "feature": "f", "provider": "p", "model": "m", "status": "ok"},
            **{"promptTokens": 1, "completionTokens": 1, "promptCost": 0, "completionCost": 0},
        },
    )
    return {**ids, "ApiCall": call.data["recordApiCall"]["apiCall"]["id"]}


@pytest.mark.parametrize("kind", [*SECTIONS, "ApiCall"])
@pytest.mark.parametrize("conversation", ["private", "shared", "deleted"])
async def test_a_taken_id_answers_the_same_whoever_owns_it(
    ask: Ask,
    world: World,
    security_database: URL,
    own_ids: dict[str, Any],
    kind: str,
    conversation: str,
) -> None:
    before = await fingerprint(security_database)
    theirs = world.rows[conversation][kind]
    # The same id in every section the document has, so a taken id clashes across tables too.
    answers = []
    for section_kind in SECTIONS:
        for taken in (theirs, own_ids[kind]):
            ids = {**fresh_ids(), section_kind: taken}
            answers.append(
                await ask(
                    documents.IMPORT_CONVERSATION,
                    as_=IMPORTER,
                    document=document(ids),
                    preserveIds=True,
                )
            )
    first = answers[0]
    result = first.data["importConversation"]
    assert result == {
        "__typename": "ValidationError",
        "message": "An id in this document is already in use. Import it without preserveIds"
        " to store it under fresh ids.",
        "code": "DUPLICATE",
        "field": "document",
    }, first.body
    # One statement, the check: nothing was written.
    assert first.body["extensions"]["sqlStatements"] == 1, first.body
    for answer in answers:
        assert (answer.status, answer.body) == (first.status, first.body)
    assert await fingerprint(security_database) == before


async def test_fresh_ids_are_kept(ask: Ask) -> None:
    ids = fresh_ids()
    reply = await ask(
        documents.IMPORT_CONVERSATION, as_=IMPORTER, document=document(ids), preserveIds=True
    )
    result = reply.data["importConversation"]
    assert result["__typename"] == "ImportConversationPayload", reply.body
    assert result["conversation"]["id"] == str(ids["Conversation"])
    rows = {str(value) for kind, value in ids.items() if kind != "Conversation"}
    assert set(result["idMap"].values()) == rows
