"""importConversation over HTTP: the checks of the mutations that create each kind of row, with the
document path in `field` (PostgreSQL's included), and imported edits as history, never training
data."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from tests.mutations import documents
from tests.mutations.conftest import VIEWER
from tests.mutations.invariants import violations
from tests.mutations.support import new_conversation, new_node, payload

DOCUMENT: dict[str, Any] = {
    "conversation": {
        "conversationName": "pipeline run",
        "conversationType": "transcript",
        "sourceType": "pipeline",
        "startedAt": "2026-11-01T10:00:00+00:00",
    },
    "utterances": [
        {"id": "u1", "sequenceNumber": 1, "text": "shall we ship", "speakerId": "ann"},
        {"id": "u2", "sequenceNumber": 2, "text": "not yet", "speakerId": "bob"},
    ],
    "nodes": [
        {"id": "n1", "nodeName": "Shipping", "summary": "s", "utteranceIds": ["u1"]},
        {"id": "n2", "nodeName": "Risks", "summary": "s", "parentId": "n1", "predecessorId": "n1"},
    ],
    "relationships": [
        {"id": "r1", "fromNodeId": "n1", "toNodeId": "n2", "relationshipType": "raises"},
    ],
    "clusters": [{"id": "c1", "clusterName": "Release", "level": 0, "nodeIds": ["n1", "n2"]}],
    "edits": [
        {
            "id": "e1",
            "targetType": "node",
            "targetId": "n1",
            "fieldName": "node_name",
            "oldValue": "Shiping",
            "newValue": "Shipping",
            "editType": "correction",
            "userId": VIEWER,
        }
    ],
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """DOCUMENT with the value at `path` (`nodes.1.nodeName`) replaced; `...` removes the key."""
    document = copy.deepcopy(DOCUMENT)
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


async def import_document(gql, document: Any, **variables: Any) -> dict[str, Any]:
    return payload(
        await gql(documents.IMPORT_CONVERSATION, document=document, **variables),
        "importConversation",
    )


@pytest.mark.parametrize(
    ("path", "value", "field", "code"),
    [
        # The service checks of createNode, appendUtterances, createRelationship, createCluster.
        ("nodes.1.nodeName", "", "nodes[1].nodeName", "REQUIRED"),
        ("nodes.0.canvasWidth", 0, "nodes[0].canvasWidth", "OUT_OF_RANGE"),
        ("nodes.1.level", -1, "nodes[1].level", "OUT_OF_RANGE"),
        ("nodes.0.confidenceScore", 3.0, "nodes[0].confidenceScore", "OUT_OF_RANGE"),
        ("nodes.0.dialogueType", "chorus", "nodes[0].dialogueType", "INVALID"),
        ("utterances.1.sequenceNumber", -5, "utterances[1].sequenceNumber", "OUT_OF_RANGE"),
        ("utterances.0.text", "", "utterances[0].text", "REQUIRED"),
        ("utterances.0.confidenceScore", 1.5, "utterances[0].confidenceScore", "OUT_OF_RANGE"),
        ("relationships.0.relationshipType", " ", "relationships[0].relationshipType", "REQUIRED"),
        ("relationships.0.strength", 2, "relationships[0].strength", "OUT_OF_RANGE"),
        ("clusters.0.clusterName", "", "clusters[0].clusterName", "REQUIRED"),
        ("clusters.0.level", -1, "clusters[0].level", "OUT_OF_RANGE"),
        ("edits.0.userId", " ", "edits[0].userId", "REQUIRED"),
        # What only PostgreSQL catches, attributed to the row it refused.
        ("utterances.1.sequenceNumber", 1, "utterances[1].sequenceNumber", "DUPLICATE"),
        ("nodes.1.summary", ..., "nodes[1].summary", "REQUIRED"),
        ("edits.0.editType", "rewrite", "edits[0].editType", "INVALID"),
        ("relationships.0.toNodeId", "n1", "relationships[0].toNodeId", "INVALID"),
        # One utterance, one node: nodes' utteranceIds and utterances' nodeId must agree.
        ("nodes.1.utteranceIds", ["u2", "u1"], "nodes[1].utteranceIds[1]", "DUPLICATE"),
        ("utterances.0.nodeId", "n2", "utterances[0].nodeId", "INVALID"),
    ],
)
async def test_import_applies_the_mutations_checks(gql, database, path, value, field, code) -> None:
    before = await database.fetchval("SELECT count(*) FROM conversations")
    result = await import_document(gql, changed(path, value))
    assert (result["__typename"], result["field"], result["code"]) == (
        "ValidationError",
        field,
        code,
    ), result
    assert await database.fetchval("SELECT count(*) FROM conversations") == before


async def test_a_duplicate_only_postgresql_sees_names_its_row(gql) -> None:
    document = copy.deepcopy(DOCUMENT)
    document["relationships"].append({**document["relationships"][0], "id": "r2"})
    result = await import_document(gql, document)
    assert (result["field"], result["code"]) == ("relationships[1].relationshipType", "DUPLICATE")


async def test_either_side_of_utterance_ownership_completes_the_other(gql, database) -> None:
    document = changed("utterances.1.nodeId", "n2")
    imported = await import_document(gql, document)
    assert imported["__typename"] == "ImportConversationPayload", imported
    ids = imported["idMap"]
    stored = await database.fetchval(
        "SELECT utterance_ids FROM nodes WHERE id = $1", uuid.UUID(ids["n2"])
    )
    assert stored == [uuid.UUID(ids["u2"])]
    owner = await database.fetchval(
        "SELECT node_id FROM utterances WHERE id = $1", uuid.UUID(ids["u1"])
    )
    assert owner == uuid.UUID(ids["n1"])
    assert await violations(database, [imported["conversation"]["id"]]) == []


async def exported_for_training(gql) -> set[str]:
    """Every edit the acting user can still export, exported now."""
    exported: set[str] = set()
    while True:
        result = payload(
            await gql(documents.EXPORT_TRAINING, datasetId="drain", limit=10_000),
            "exportTrainingEdits",
        )
        assert result["__typename"] == "TrainingExportPayload", result
        if not result["edits"]:
            return exported
        exported |= {edit["id"] for edit in result["edits"]}


async def test_imported_edits_cannot_forge_training_data(gql, database) -> None:
    """A document's edits can name any user and claim not to be exported yet; they are kept as
    history but never reach the training export."""
    document = copy.deepcopy(DOCUMENT)
    document["edits"] = [
        {**DOCUMENT["edits"][0], "id": "e1", "userId": "someone-else", "userComment": "forged"},
        {**DOCUMENT["edits"][0], "id": "e2", "exportedForTraining": False},
        {**DOCUMENT["edits"][0], "id": "e3", "exportedForTraining": True},
    ]
    await exported_for_training(gql)
    imported = await import_document(gql, document)
    assert imported["__typename"] == "ImportConversationPayload", imported
    edit_ids = {imported["idMap"][reference] for reference in ("e1", "e2", "e3")}
    assert not edit_ids & await exported_for_training(gql)
    rows = await database.fetch(
        "SELECT user_id, exported_for_training, training_dataset_id FROM edits_log "
        "WHERE conversation_id = $1 ORDER BY user_id",
        uuid.UUID(imported["conversation"]["id"]),
    )
    assert [tuple(row) for row in rows] == [
        (VIEWER, True, None),
        (VIEWER, True, None),
        ("someone-else", True, None),
    ]


async def test_an_edit_is_never_exported_twice_through_an_import(gql, database) -> None:
    """The same correction, exported once, comes back in an export document (as exported, or
    edited to look unexported): importing it never makes it exportable again."""
    conversation = await new_conversation(gql)
    await new_node(gql, conversation["id"], "a node")
    await exported_for_training(gql)
    document = payload(
        await gql(documents.EXPORT_CONVERSATION, id=conversation["id"]), "conversationExport"
    )["document"]
    assert [edit["exportedForTraining"] for edit in document["edits"]] == [True]
    reset = copy.deepcopy(document)
    for edit in reset["edits"]:
        edit.update(exportedForTraining=False, trainingDatasetId=None)
    copies = [await import_document(gql, item) for item in (document, reset)]
    assert not {
        stored for result in copies for stored in result["idMap"].values()
    } & await exported_for_training(gql)
    datasets = [
        await database.fetchval(
            "SELECT training_dataset_id FROM edits_log WHERE conversation_id = $1",
            uuid.UUID(result["conversation"]["id"]),
        )
        for result in copies
    ]
    assert datasets == ["drain", None]
