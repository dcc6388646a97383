"""Every mutation aimed at alice's conversations by the shared user, another user and anonymous:
anonymous gets 401; a conversation the caller cannot read answers exactly like a missing id; one
the caller reads but does not own answers forbidden; nothing changes. The acting user of a write is
always the token's subject."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tests.conftest import asyncpg_dsn
from tests.mutations import documents
from tests.security.conftest import (
    OTHER,
    OWNER,
    PROMPTLY_SECONDS,
    SHARED,
    Ask,
    World,
    can_read,
    owner_holds_locks,
    promptly,
)

STALE = "2001-01-01T00:00:00+00:00"
# Writes their own conversations, so kept out of the read matrix's users.
NEWCOMER = "dave"
Rows = dict[str, uuid.UUID]
Case = tuple[str, str, Callable[[Rows], dict[str, Any]]]

CASES: list[Case] = [
    (
        "updateConversation",
        documents.UPDATE_CONVERSATION,
        lambda r: {
            "input": {"id": r["Conversation"], "expectedUpdatedAt": STALE, "conversationName": "x"}
        },
    ),
    ("deleteConversation", documents.DELETE_CONVERSATION, lambda r: {"id": r["Conversation"]}),
    ("restoreConversation", documents.RESTORE_CONVERSATION, lambda r: {"id": r["Conversation"]}),
    ("purgeConversation", documents.PURGE_CONVERSATION, lambda r: {"id": r["Conversation"]}),
    (
        "appendUtterances",
        documents.APPEND_UTTERANCES,
        lambda r: {
            "conversationId": r["Conversation"],
            "utterances": [{"sequenceNumber": 99999, "text": "x", "speakerId": "s"}],
        },
    ),
    (
        "updateUtterance",
        documents.UPDATE_UTTERANCE,
        lambda r: {"input": {"id": r["Utterance"], "expectedUpdatedAt": STALE, "text": "x"}},
    ),
    (
        "createNode",
        documents.CREATE_NODE,
        lambda r: {"input": {"conversationId": r["Conversation"], "nodeName": "x", "summary": "s"}},
    ),
    (
        "updateNode",
        documents.UPDATE_NODE,
        lambda r: {"input": {"id": r["ThreadNode"], "expectedUpdatedAt": STALE, "nodeName": "x"}},
    ),
    ("deleteNode", documents.DELETE_NODE, lambda r: {"id": r["ThreadNode"]}),
    (
        "moveNodes",
        documents.MOVE_NODES,
        lambda r: {"moves": [{"id": r["ThreadNode"], "canvasX": 1}]},
    ),
    (
        "mergeNodes",
        documents.MERGE_NODES,
        lambda r: {"input": {"keptNodeId": r["ThreadNode"], "absorbedNodeId": r["ThreadNode2"]}},
    ),
    (
        "splitNode",
        documents.SPLIT_NODE,
        lambda r: {
            "input": {"id": r["ThreadNode"], "utteranceIds": [], "nodeName": "x", "summary": "s"}
        },
    ),
    (
        "createRelationship",
        documents.CREATE_RELATIONSHIP,
        lambda r: {
            "input": {
                "fromNodeId": r["ThreadNode"],
                "toNodeId": r["ThreadNode2"],
                "relationshipType": "x",
            }
        },
    ),
    (
        "updateRelationship",
        documents.UPDATE_RELATIONSHIP,
        lambda r: {"input": {"id": r["Relationship"], "expectedUpdatedAt": STALE, "strength": 0.5}},
    ),
    ("deleteRelationship", documents.DELETE_RELATIONSHIP, lambda r: {"id": r["Relationship"]}),
    (
        "createCluster",
        documents.CREATE_CLUSTER,
        lambda r: {"input": {"conversationId": r["Conversation"], "clusterName": "x"}},
    ),
    (
        "updateCluster",
        documents.UPDATE_CLUSTER,
        lambda r: {"input": {"id": r["Cluster"], "expectedUpdatedAt": STALE, "clusterName": "x"}},
    ),
    (
        "changeClusterMembership",
        documents.CHANGE_MEMBERSHIP,
        lambda r: {"clusterId": r["Cluster"], "add": [r["ThreadNode2"]]},
    ),
    ("deleteCluster", documents.DELETE_CLUSTER, lambda r: {"id": r["Cluster"]}),
    (
        "recordApiCall",
        documents.RECORD_API_CALL,
        lambda r: {
            "input": {
                "conversationId": r["Conversation"],
                "endpoint": "e",
                "feature": "f",
                "provider": "p",
                "model": "m",
                "promptTokens": 1,
                "completionTokens": 1,
                "promptCost": 0.0,
                "completionCost": 0.0,
                "status": "ok",
            }
        },
    ),
]


def strings(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [strings(item) for item in value]
    return value


async def fingerprint(url: URL) -> str:
    """Every row of every table, hashed: any write shows."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        digest = hashlib.sha256()
        for table in (
            "conversations",
            "utterances",
            "nodes",
            "relationships",
            "clusters",
            "edits_log",
            "api_calls_log",
        ):
            rows = await connection.fetch(f"SELECT t::text AS row FROM {table} t ORDER BY id")
            for row in rows:
                digest.update(row["row"].encode())
        return digest.hexdigest()
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("viewer", "conversation"),
    list(itertools.product((SHARED, OTHER, None), ("private", "shared", "public", "deleted"))),
)
async def test_nobody_but_the_owner_writes(
    ask: Ask, world: World, security_database: URL, viewer: str | None, conversation: str
) -> None:
    before = await fingerprint(security_database)
    rows = world.rows[conversation]
    for name, document, variables in CASES:
        reply = await ask(document, as_=viewer, **strings(variables(rows)))
        if viewer is None:
            assert reply.status == 401 and reply.codes == ["UNAUTHENTICATED"], (name, reply.body)
            continue
        assert reply.status == 200 and not reply.errors, (name, reply.body)
        result = reply.data[name]
        if can_read(viewer, conversation):
            assert result["__typename"] == "ForbiddenError", (name, result)
            continue
        # Invisible: byte for byte what the same mutation on ids that exist nowhere gets, SQL
        # statement count included.
        fresh = {key: uuid.uuid4() for key in rows}
        missing = await ask(document, as_=viewer, **strings(variables(fresh)))
        assert result["__typename"] == "NotFoundError", (name, result)
        assert reply.body == missing.body, (name, reply.body, missing.body)
    assert await fingerprint(security_database) == before


@pytest.mark.parametrize(
    ("viewer", "conversation", "answer"),
    [(OTHER, "private", "NotFoundError"), (SHARED, "shared", "ForbiddenError")],
)
async def test_a_write_by_someone_else_never_waits_for_the_owners(
    ask: Ask,
    world: World,
    security_database: URL,
    viewer: str,
    conversation: str,
    answer: str,
) -> None:
    """While the owner's write holds the conversation and its rows, every mutation naming them by
    someone else answers at once, as it would otherwise: it locks nothing of the owner's, so it
    can neither wait for the owner nor make the owner wait. The owner's own write does wait."""
    rows = world.rows[conversation]
    before = await fingerprint(security_database)
    async with owner_holds_locks(security_database, rows) as owner_write:
        for name, document, variables in CASES:
            reply = await promptly(ask(document, as_=viewer, **strings(variables(rows))), name)
            assert reply.data[name]["__typename"] == answer, (name, reply.body)
        assert await owner_write.waiting() == 0
        # The positive control: the locks are real, and the owner's writes queue behind them.
        queued = asyncio.create_task(
            ask(
                RENAME,
                as_=OWNER,
                input={"id": str(rows["ThreadNode"]), "expectedUpdatedAt": STALE, "nodeName": "x"},
            )
        )
        for _ in range(int(PROMPTLY_SECONDS * 10)):
            if await owner_write.waiting():
                break
            await asyncio.sleep(0.1)
        assert await owner_write.waiting() == 1 and not queued.done()
    renamed = await promptly(queued, "the owner's rename once the locks are released")
    assert renamed.data["updateNode"]["__typename"] == "ConflictError", renamed.body
    assert await fingerprint(security_database) == before


CREATE = """
mutation($input: CreateConversationInput!) {
  createConversation(input: $input) {
    __typename ... on ConversationPayload { conversation { id ownerId } }
  }
}"""
IMPORT = """
mutation($document: JSON!) {
  importConversation(document: $document) {
    __typename ... on ImportConversationPayload { conversation { id ownerId } }
    ... on UserError { message }
  }
}"""
RENAME = """
mutation($input: UpdateNodeInput!) {
  updateNode(input: $input) { __typename ... on NodePayload { node { id updatedAt } } }
}"""
NODE = """
query($id: ID!) { node(id: $id) { ... on ThreadNode { id updatedAt edits { userId fieldName } } } }
"""
EXPORT_DOCUMENT = """
query($id: ID!) {
  conversationExport(id: $id) { __typename ... on ConversationExport { document } }
}"""


async def test_the_acting_user_is_the_token_subject(ask: Ask, world: World) -> None:
    created = await ask(
        CREATE,
        as_=NEWCOMER,
        input={"conversationName": "dave's", "conversationType": "CHAT", "sourceType": "app"},
    )
    assert created.data["createConversation"]["conversation"]["ownerId"] == NEWCOMER

    exported = await ask(
        EXPORT_DOCUMENT, as_=NEWCOMER, id=created.data["createConversation"]["conversation"]["id"]
    )
    document = exported.data["conversationExport"]["document"]
    document["conversation"]["ownerId"] = OWNER  # an attempt to plant it on alice
    document["conversation"]["owner_id"] = OWNER
    imported = await ask(IMPORT, as_=NEWCOMER, document=document)
    result = imported.data["importConversation"]
    assert result["__typename"] == "ImportConversationPayload", result
    assert result["conversation"]["ownerId"] == NEWCOMER

    node_id = str(world.rows["public"]["ThreadNode2"])
    node = (await ask(NODE, as_=OWNER, id=node_id)).data["node"]
    renamed = await ask(
        RENAME,
        as_=OWNER,
        input={"id": node_id, "expectedUpdatedAt": node["updatedAt"], "nodeName": "renamed"},
    )
    assert renamed.data["updateNode"]["__typename"] == "NodePayload", renamed.body
    edits = (await ask(NODE, as_=OWNER, id=node_id)).data["node"]["edits"]
    assert {"userId": OWNER, "fieldName": "node_name"} in edits, edits


EXPORT_TRAINING = """
mutation { exportTrainingEdits(datasetId: "stolen", limit: 1000) {
  __typename ... on TrainingExportPayload { edits { id } } ... on UserError { message }
} }"""


async def test_training_export_takes_only_the_callers_own_edits(ask: Ask, world: World) -> None:
    stolen = await ask(EXPORT_TRAINING, as_=SHARED)
    result = stolen.data["exportTrainingEdits"]
    assert result["__typename"] == "TrainingExportPayload", result
    alices = set().union(*world.all_ids.values())
    assert not {edit["id"] for edit in result["edits"]} & alices
