"""A write inside the caller's own conversation that names a row of a conversation the caller
cannot read (as a parent, an end of a relationship, a cluster member, an utterance to move, ...)
answers exactly as when it names an id that exists nowhere, and changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.mutations import documents
from tests.security.conftest import Ask, World, owner_holds_locks, promptly
from tests.security.test_import_ids import document, fresh_ids
from tests.security.test_mutation_matrix import fingerprint, strings

# Writes a conversation of its own, so kept out of the read matrix's users.
WRITER = "frank"
INVISIBLE = ("private", "shared", "deleted")  # to frank, alice's conversations but the public one

UPDATED_AT = """
query($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on ThreadNode { updatedAt }
    ... on Relationship { updatedAt }
    ... on Cluster { updatedAt }
  }
}"""

# Not NotFoundError, for a missing id just the same: splitNode takes only the node's own
# utterances, and removing a node that is not a member of a cluster is a no-op.
ANSWERS = {"splitNode": "ValidationError"}
Own = dict[str, Any]  # kind -> id, and "<kind>UpdatedAt" -> the row's updatedAt
Foreign = dict[str, Any]  # kind -> id of a row the writer cannot read (or of no row at all)
Case = tuple[str, str, Callable[[Own, Foreign], dict[str, Any]]]

CASES: list[Case] = [
    (
        "createNode",
        documents.CREATE_NODE,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "nodeName": "x",
                "summary": "s",
                "parentId": foreign["ThreadNode"],
            }
        },
    ),
    (
        "createNode",
        documents.CREATE_NODE,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "nodeName": "x",
                "summary": "s",
                "predecessorId": foreign["ThreadNode"],
            }
        },
    ),
    (
        "createNode",
        documents.CREATE_NODE,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "nodeName": "x",
                "summary": "s",
                "successorId": foreign["ThreadNode"],
            }
        },
    ),
    (
        "createNode",
        documents.CREATE_NODE,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "nodeName": "x",
                "summary": "s",
                "utteranceIds": [foreign["Utterance"]],
            }
        },
    ),
    (
        "updateNode",
        documents.UPDATE_NODE,
        lambda own, foreign: {
            "input": {
                "id": own["ThreadNode"],
                "expectedUpdatedAt": own["ThreadNodeUpdatedAt"],
                "parentId": foreign["ThreadNode"],
            }
        },
    ),
    (
        "updateNode",
        documents.UPDATE_NODE,
        lambda own, foreign: {
            "input": {
                "id": own["ThreadNode"],
                "expectedUpdatedAt": own["ThreadNodeUpdatedAt"],
                "utteranceIds": [own["Utterance"], foreign["Utterance"]],
            }
        },
    ),
    (
        "moveNodes",
        documents.MOVE_NODES,
        lambda own, foreign: {
            "moves": [
                {"id": own["ThreadNode"], "canvasX": 7},
                {"id": foreign["ThreadNode"], "canvasX": 7},
            ]
        },
    ),
    (
        "mergeNodes",
        documents.MERGE_NODES,
        lambda own, foreign: {
            "input": {"keptNodeId": own["ThreadNode"], "absorbedNodeId": foreign["ThreadNode"]}
        },
    ),
    (
        "mergeNodes",
        documents.MERGE_NODES,
        lambda own, foreign: {
            "input": {"keptNodeId": foreign["ThreadNode"], "absorbedNodeId": own["ThreadNode"]}
        },
    ),
    (
        "splitNode",
        documents.SPLIT_NODE,
        lambda own, foreign: {
            "input": {
                "id": own["ThreadNode"],
                "utteranceIds": [foreign["Utterance"]],
                "nodeName": "x",
                "summary": "s",
            }
        },
    ),
    (
        "createRelationship",
        documents.CREATE_RELATIONSHIP,
        lambda own, foreign: {
            "input": {
                "fromNodeId": own["ThreadNode"],
                "toNodeId": foreign["ThreadNode"],
                "relationshipType": "cross",
            }
        },
    ),
    (
        "createRelationship",
        documents.CREATE_RELATIONSHIP,
        lambda own, foreign: {
            "input": {
                "fromNodeId": foreign["ThreadNode"],
                "toNodeId": own["ThreadNode"],
                "relationshipType": "cross",
            }
        },
    ),
    (
        "createRelationship",
        documents.CREATE_RELATIONSHIP,
        lambda own, foreign: {
            "input": {
                "fromNodeId": own["ThreadNode"],
                "toNodeId": own["ThreadNode2"],
                "relationshipType": "cross",
                "supportingUtteranceIds": [foreign["Utterance"]],
            }
        },
    ),
    (
        "updateRelationship",
        documents.UPDATE_RELATIONSHIP,
        lambda own, foreign: {
            "input": {
                "id": own["Relationship"],
                "expectedUpdatedAt": own["RelationshipUpdatedAt"],
                "supportingUtteranceIds": [foreign["Utterance"]],
            }
        },
    ),
    (
        "createCluster",
        documents.CREATE_CLUSTER,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "clusterName": "x",
                "nodeIds": [own["ThreadNode"], foreign["ThreadNode"]],
            }
        },
    ),
    (
        "createCluster",
        documents.CREATE_CLUSTER,
        lambda own, foreign: {
            "input": {
                "conversationId": own["Conversation"],
                "clusterName": "x",
                "parentClusterId": foreign["Cluster"],
            }
        },
    ),
    (
        "updateCluster",
        documents.UPDATE_CLUSTER,
        lambda own, foreign: {
            "input": {
                "id": own["Cluster"],
                "expectedUpdatedAt": own["ClusterUpdatedAt"],
                "parentClusterId": foreign["Cluster"],
            }
        },
    ),
    (
        "changeClusterMembership",
        documents.CHANGE_MEMBERSHIP,
        lambda own, foreign: {"clusterId": own["Cluster"], "add": [foreign["ThreadNode"]]},
    ),
    (
        "changeClusterMembership",
        documents.CHANGE_MEMBERSHIP,
        lambda own, foreign: {"clusterId": own["Cluster"], "remove": [foreign["ThreadNode"]]},
    ),
]


@pytest.fixture(scope="module")
async def own(ask: Ask) -> Own:
    """A conversation of the writer's with a row of every kind, and the rows' updatedAt."""
    ids = fresh_ids()
    imported = await ask(
        documents.IMPORT_CONVERSATION,
        as_=WRITER,
        document=document(ids, user=WRITER),
        preserveIds=True,
    )
    result = imported.data["importConversation"]
    assert result["__typename"] == "ImportConversationPayload", imported.body
    rows = (await ask(UPDATED_AT, as_=WRITER, ids=strings(list(ids.values())))).data["nodes"]
    found: Own = dict(ids)
    for row in rows:
        if row and "updatedAt" in row:
            kind = next(kind for kind, value in ids.items() if str(value) == row["id"])
            found[f"{kind}UpdatedAt"] = row["updatedAt"]
    return found


async def answers(
    ask: Ask, own: Own, foreign: Foreign
) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Per case: its name, and the replies (status and body) to the case aimed at `foreign`'s
    rows, to the same case aimed at ids that exist nowhere, and its variables."""
    replies = []
    for name, mutation, variables in CASES:
        aimed = strings(variables(own, foreign))
        invisible = await ask(mutation, as_=WRITER, **aimed)
        missing_ids = {kind: uuid.uuid4() for kind in foreign}
        missing = await ask(mutation, as_=WRITER, **strings(variables(own, missing_ids)))
        replies.append(
            (
                name,
                {"status": invisible.status, **invisible.body},
                # The missing ids written as the invisible ones, so that only the answers differ.
                _replace({"status": missing.status, **missing.body}, missing_ids, foreign),
                aimed,
            )
        )
    return replies


@pytest.mark.parametrize("conversation", INVISIBLE)
async def test_a_reference_into_an_invisible_conversation_is_a_missing_id(
    ask: Ask, world: World, security_database: URL, own: Own, conversation: str
) -> None:
    before = await fingerprint(security_database)
    for name, invisible, missing, variables in await answers(ask, own, world.rows[conversation]):
        result = invisible["data"][name]
        expected = "ClusterPayload" if "remove" in variables else ANSWERS.get(name, "NotFoundError")
        assert result["__typename"] == expected, (name, variables, result)
        assert (invisible["status"], invisible["data"]) == (missing["status"], missing["data"]), (
            name,
            variables,
        )
    assert await fingerprint(security_database) == before


async def test_a_reference_into_an_invisible_conversation_costs_what_a_missing_id_costs(
    ask: Ask, world: World, own: Own
) -> None:
    replies = await answers(ask, own, world.rows["private"])
    counts = {
        (name, json.dumps(variables)): (
            invisible["extensions"]["sqlStatements"],
            missing["extensions"]["sqlStatements"],
        )
        for name, invisible, missing, variables in replies
    }
    assert {key: pair for key, pair in counts.items() if pair[0] != pair[1]} == {}


async def test_a_reference_to_a_row_the_owner_has_locked_does_not_wait(
    ask: Ask, world: World, security_database: URL, own: Own
) -> None:
    """The writer's own conversation is free, the referenced rows are held by their owner's write
    in progress: each reference is refused at once, since nothing of the owner's is locked."""
    foreign = world.rows["private"]
    async with owner_holds_locks(security_database, foreign) as owner_write:
        for name, mutation, variables in CASES:
            aimed = strings(variables(own, foreign))
            reply = await promptly(ask(mutation, as_=WRITER, **aimed), (name, aimed))
            result = reply.data[name]
            expected = "ClusterPayload" if "remove" in aimed else ANSWERS.get(name, "NotFoundError")
            assert result["__typename"] == expected, (name, aimed, result)
        assert await owner_write.waiting() == 0


def _replace(value: Any, old: dict[str, Any], new: dict[str, Any]) -> Any:
    """`value` with every id of `old` written as the same kind's id of `new`."""
    text = json.dumps(value)
    for kind, old_id in old.items():
        text = text.replace(str(old_id), str(new[kind]))
    return json.loads(text)
