"""Node, relationship and cluster mutations over HTTP: success, each error type, the edits log."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.mutations import documents
from tests.mutations.conftest import VIEWER
from tests.mutations.invariants import violations
from tests.mutations.support import append, new_conversation, new_node, payload, refused_by_schema


async def node_row(database, node_id: str):
    return await database.fetchrow("SELECT * FROM nodes WHERE id = $1", uuid.UUID(node_id))


async def test_create_node_links_parent_and_timeline(gql, database) -> None:
    conversation = await new_conversation(gql)
    root = await new_node(gql, conversation["id"], "root")
    first = await new_node(gql, conversation["id"], "first", parentId=root["id"])
    third = await new_node(
        gql, conversation["id"], "third", parentId=root["id"], predecessorId=first["id"]
    )
    second = await new_node(
        gql, conversation["id"], "second", parentId=root["id"], predecessorId=first["id"]
    )
    assert second["predecessorId"] == first["id"]
    assert second["successorId"] == third["id"]
    assert (await node_row(database, root["id"]))["children_ids"] == [
        uuid.UUID(first["id"]),
        uuid.UUID(third["id"]),
        uuid.UUID(second["id"]),
    ]
    assert (await node_row(database, first["id"]))["successor_id"] == uuid.UUID(second["id"])
    assert (await node_row(database, third["id"]))["predecessor_id"] == uuid.UUID(second["id"])
    log = await database.fetch(
        "SELECT edit_type, field_name, user_id FROM edits_log WHERE target_id = $1",
        uuid.UUID(second["id"]),
    )
    assert [tuple(row) for row in log] == [("addition", "node", VIEWER)]
    assert await violations(database, [conversation["id"]]) == []


@pytest.mark.parametrize(
    ("fields", "typename", "field", "code"),
    [
        ({"nodeName": ""}, "ValidationError", "nodeName", "REQUIRED"),
        ({"canvasWidth": 0}, "ValidationError", "canvasWidth", "OUT_OF_RANGE"),
        ({"confidenceScore": 3.0}, "ValidationError", "confidenceScore", "OUT_OF_RANGE"),
        ({"isBookmark": None}, "ValidationError", "isBookmark", "REQUIRED"),
        ({"canvasHeight": None}, "ValidationError", "canvasHeight", "REQUIRED"),
        ({"parentId": str(uuid.uuid4())}, "NotFoundError", "parentId", "NOT_FOUND"),
        ({"predecessorId": "nope"}, "ValidationError", "predecessorId", "INVALID"),
        ({"utteranceIds": [str(uuid.uuid4())]}, "NotFoundError", "utteranceIds[0]", "NOT_FOUND"),
        ({"conversationId": str(uuid.uuid4())}, "NotFoundError", "conversationId", "NOT_FOUND"),
    ],
)
async def test_create_node_errors(gql, fields, typename, field, code) -> None:
    conversation = await new_conversation(gql)
    result = payload(
        await gql(
            documents.CREATE_NODE,
            input={"conversationId": conversation["id"], "nodeName": "n", "summary": "s", **fields},
        ),
        "createNode",
    )
    assert (result["__typename"], result["field"], result["code"]) == (typename, field, code)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"dialogueType": "multi-party"}, ".dialogueType"),  # the stored text, not the enum
        ({"dialogueType": "CHORUS"}, ".dialogueType"),
        ({"chunkIds": ["not-a-uuid"]}, ".chunkIds[0]"),
        ({"claimIds": ["0f8fad5bd9cb469fa16570867728950e"]}, ".claimIds[0]"),  # not RFC 4122 text
        ({"speakerInfo": {"primary_speaker": "a"}}, ".speakerInfo"),  # JSONB keys are not fields
        ({"speakerInfo": {"secondarySpeakers": [{"share": 3}]}}, ".speakerInfo.secondarySpeakers"),
    ],
)
async def test_create_node_refused_by_the_schema(gql, database, fields, path) -> None:
    conversation = await new_conversation(gql)
    body = await gql(
        documents.CREATE_NODE,
        input={"conversationId": conversation["id"], "nodeName": "n", "summary": "s", **fields},
    )
    refused_by_schema(body, path)
    count = "SELECT count(*) FROM nodes WHERE conversation_id = $1"
    assert await database.fetchval(count, uuid.UUID(conversation["id"])) == 0


ROUND_TRIP_FIELDS = """
  id updatedAt nodeType level isBookmark isContextualProgress isTangent isCrux chunkIds claimIds
  dialogueType canvasX canvasY canvasWidth canvasHeight zoomLevelVisible clusterInfo
  speakerInfo { primarySpeaker speakerName contributionPercentage
                secondarySpeakers { speakerId percentage } }
  speakerTransitions { fromSpeaker toSpeaker utteranceIndex transitionType contextSnippet }
"""
CREATE_ROUND_TRIP = f"""
mutation($input: CreateNodeInput!) {{
  createNode(input: $input) {{
    __typename ... on NodePayload {{ node {{ {ROUND_TRIP_FIELDS} }} }}
    ... on UserError {{ message code }}
  }}
}}"""
UPDATE_ROUND_TRIP = f"""
mutation($input: UpdateNodeInput!) {{
  updateNode(input: $input) {{
    __typename ... on NodePayload {{ node {{ {ROUND_TRIP_FIELDS} }} }}
    ... on UserError {{ message code }}
  }}
}}"""


async def test_every_node_value_read_can_be_sent_back(gql, database) -> None:
    conversation = await new_conversation(gql)
    chunk = str(uuid.uuid4())
    created = payload(
        await gql(
            CREATE_ROUND_TRIP,
            input={
                "conversationId": conversation["id"],
                "nodeName": "n",
                "summary": "s",
                "chunkIds": [chunk],
                "claimIds": [chunk.upper()],
                "dialogueType": "MULTI_PARTY",
                "speakerInfo": {
                    "primarySpeaker": "ann",
                    "contributionPercentage": 60,
                    "secondarySpeakers": [{"speakerId": "bob", "percentage": 40}],
                },
                "speakerTransitions": [{"fromSpeaker": "ann", "toSpeaker": "bob"}],
                "clusterInfo": {"cluster_id": "c1"},
            },
        ),
        "createNode",
    )
    assert created["__typename"] == "NodePayload", created
    node = created["node"]
    assert node["dialogueType"] == "MULTI_PARTY"
    assert node["chunkIds"] == [chunk] and node["claimIds"] == [chunk]
    assert node["speakerInfo"] == {
        "primarySpeaker": "ann",
        "speakerName": None,
        "contributionPercentage": 60.0,
        "secondarySpeakers": [{"speakerId": "bob", "percentage": 40.0}],
    }
    # The defaults the database fills are values, never null.
    assert (node["nodeType"], node["level"], node["isBookmark"], node["canvasWidth"]) == (
        "conversational_thread",
        1,
        False,
        350,
    )
    stored = await database.fetchrow(
        "SELECT dialogue_type, speaker_info FROM nodes WHERE id = $1", uuid.UUID(node["id"])
    )
    assert stored["dialogue_type"] == "multi-party"
    assert json.loads(stored["speaker_info"]) == {
        "primary_speaker": "ann",
        "contribution_percentage": 60.0,
        "secondary_speakers": [{"speaker_id": "bob", "percentage": 40.0}],
    }
    echoed = payload(
        await gql(
            UPDATE_ROUND_TRIP,
            input={
                **{key: value for key, value in node.items() if key != "updatedAt"},
                "expectedUpdatedAt": node["updatedAt"],
            },
        ),
        "updateNode",
    )
    assert echoed["__typename"] == "NodePayload", echoed
    assert {key: value for key, value in echoed["node"].items() if key != "updatedAt"} == {
        key: value for key, value in node.items() if key != "updatedAt"
    }


async def test_node_in_another_conversation_is_refused(gql) -> None:
    one, other = await new_conversation(gql), await new_conversation(gql)
    foreign = await new_node(gql, other["id"])
    result = payload(
        await gql(
            documents.CREATE_NODE,
            input={
                "conversationId": one["id"],
                "nodeName": "n",
                "summary": "s",
                "parentId": foreign["id"],
            },
        ),
        "createNode",
    )
    assert (result["__typename"], result["code"]) == ("ValidationError", "WRONG_CONVERSATION")


async def test_update_node_logs_fields_and_refuses_cycles(gql, database) -> None:
    conversation = await new_conversation(gql)
    top = await new_node(gql, conversation["id"], "top")
    middle = await new_node(gql, conversation["id"], "middle", parentId=top["id"])
    bottom = await new_node(gql, conversation["id"], "bottom", parentId=middle["id"])
    top = dict(await node_row(database, top["id"]))
    cycle = payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": str(top["id"]),
                "expectedUpdatedAt": top["updated_at"].isoformat(),
                "parentId": bottom["id"],
            },
        ),
        "updateNode",
    )
    assert (cycle["__typename"], cycle["field"], cycle["code"]) == (
        "ValidationError",
        "parentId",
        "CYCLE",
    )
    renamed = payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": bottom["id"],
                "expectedUpdatedAt": bottom["updatedAt"],
                "nodeName": "Bottom line",
                "parentId": str(top["id"]),
                "keyPoints": ["a", "b"],
            },
            comment="belongs to the top topic",
            confidence=0.9,
        ),
        "updateNode",
    )
    assert renamed["node"]["parentId"] == str(top["id"])
    rows = await database.fetch(
        "SELECT field_name, old_value, new_value, user_comment, user_confidence FROM edits_log "
        "WHERE target_id = $1 AND edit_type = 'correction' ORDER BY field_name",
        uuid.UUID(bottom["id"]),
    )
    assert [tuple(row) for row in rows] == [
        ("key_points", None, '["a", "b"]', "belongs to the top topic", 0.9),
        ("node_name", "bottom", "Bottom line", "belongs to the top topic", 0.9),
        ("parent_id", f'"{middle["id"]}"', f'"{top["id"]}"', "belongs to the top topic", 0.9),
    ]
    assert await violations(database, [conversation["id"]]) == []
    stale = payload(
        await gql(
            documents.UPDATE_NODE,
            input={"id": bottom["id"], "expectedUpdatedAt": bottom["updatedAt"], "nodeName": "x"},
        ),
        "updateNode",
    )
    assert stale["__typename"] == "ConflictError"
    assert stale["current"]["nodeName"] == "Bottom line"
    assert stale["currentUpdatedAt"] == renamed["node"]["updatedAt"]
    cleared = payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": bottom["id"],
                "expectedUpdatedAt": renamed["node"]["updatedAt"],
                "summary": None,
            },
        ),
        "updateNode",
    )
    assert (cleared["__typename"], cleared["field"]) == ("ValidationError", "summary")


async def test_delete_node_removes_every_reference(gql, database) -> None:
    conversation = await new_conversation(gql)
    utterances = await append(gql, conversation["id"], "one", "two")
    parent = await new_node(gql, conversation["id"], "parent")
    before = await new_node(gql, conversation["id"], "before", parentId=parent["id"])
    doomed = await new_node(
        gql,
        conversation["id"],
        "doomed",
        parentId=parent["id"],
        predecessorId=before["id"],
        utteranceIds=[row["id"] for row in utterances],
    )
    after = await new_node(
        gql, conversation["id"], "after", parentId=parent["id"], predecessorId=doomed["id"]
    )
    child = await new_node(gql, conversation["id"], "child", parentId=doomed["id"])
    relationship = payload(
        await gql(
            documents.CREATE_RELATIONSHIP,
            input={
                "fromNodeId": before["id"],
                "toNodeId": doomed["id"],
                "relationshipType": "supports",
            },
        ),
        "createRelationship",
    )["relationship"]
    cluster = payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "c",
                "nodeIds": [doomed["id"], after["id"]],
            },
        ),
        "createCluster",
    )["cluster"]
    result = payload(await gql(documents.DELETE_NODE, id=doomed["id"]), "deleteNode")
    assert result["deletedId"] == doomed["id"]
    ids = {
        name: uuid.UUID(node["id"])
        for name, node in (
            ("parent", parent),
            ("before", before),
            ("after", after),
            ("child", child),
        )
    }
    assert (await node_row(database, parent["id"]))["children_ids"] == [
        ids["before"],
        ids["child"],
        ids["after"],
    ]
    assert (await node_row(database, child["id"]))["parent_id"] == ids["parent"]
    assert (await node_row(database, before["id"]))["successor_id"] == ids["after"]
    assert (await node_row(database, after["id"]))["predecessor_id"] == ids["before"]
    assert await database.fetchval(
        "SELECT node_ids FROM clusters WHERE id = $1", uuid.UUID(cluster["id"])
    ) == [ids["after"]]
    assert (
        await database.fetchval(
            "SELECT count(*) FROM utterances WHERE node_id = $1", uuid.UUID(doomed["id"])
        )
        == 0
    )
    assert (
        await database.fetchval(
            "SELECT count(*) FROM relationships WHERE id = $1", uuid.UUID(relationship["id"])
        )
        == 0
    )
    logged = await database.fetch(
        "SELECT target_type, edit_type, new_value FROM edits_log WHERE target_id = ANY($1::uuid[]) "
        "AND edit_type = 'deletion' ORDER BY target_type",
        [uuid.UUID(doomed["id"]), uuid.UUID(relationship["id"])],
    )
    assert [tuple(row) for row in logged] == [
        ("node", "deletion", None),
        ("relationship", "deletion", None),
    ]
    assert (
        await database.fetchval(
            "SELECT total_nodes FROM conversations WHERE id = $1", uuid.UUID(conversation["id"])
        )
        == 4
    )
    assert await violations(database, [conversation["id"]]) == []
    again = payload(await gql(documents.DELETE_NODE, id=doomed["id"]), "deleteNode")
    assert again["__typename"] == "NotFoundError"


async def test_move_nodes_is_all_or_nothing_and_logged_once_per_node(gql, database) -> None:
    conversation = await new_conversation(gql)
    first = await new_node(gql, conversation["id"], "a", canvasX=0, canvasY=0)
    second = await new_node(gql, conversation["id"], "b", canvasX=0, canvasY=0)
    missing = str(uuid.uuid4())
    failed = payload(
        await gql(
            documents.MOVE_NODES,
            moves=[
                {"id": first["id"], "canvasX": 10, "canvasY": 20},
                {"id": missing, "canvasX": 5},
            ],
        ),
        "moveNodes",
    )
    assert (failed["__typename"], failed["field"]) == ("NotFoundError", "moves[1].id")
    assert (await node_row(database, first["id"]))["canvas_x"] == 0
    bad = payload(
        await gql(documents.MOVE_NODES, moves=[{"id": first["id"], "canvasWidth": -5}]), "moveNodes"
    )
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "moves[0].canvasWidth")
    moved = payload(
        await gql(
            documents.MOVE_NODES,
            moves=[
                {"id": first["id"], "canvasX": 10, "canvasY": 20},
                {"id": second["id"], "canvasWidth": 500, "canvasHeight": 300},
            ],
        ),
        "moveNodes",
    )
    assert [(node["canvasX"], node["canvasWidth"]) for node in moved["nodes"]] == [
        (10, 350),
        (0, 500),
    ]
    rows = await database.fetch(
        "SELECT old_value, new_value FROM edits_log WHERE field_name = 'canvas' AND target_id = $1",
        uuid.UUID(first["id"]),
    )
    assert [tuple(row) for row in rows] == [
        ('{"canvasX": 0, "canvasY": 0}', '{"canvasX": 10, "canvasY": 20}')
    ]
    other = await new_conversation(gql)
    foreign = await new_node(gql, other["id"])
    mixed = payload(
        await gql(
            documents.MOVE_NODES,
            moves=[{"id": first["id"], "canvasX": 1}, {"id": foreign["id"], "canvasX": 1}],
        ),
        "moveNodes",
    )
    assert (mixed["__typename"], mixed["code"]) == ("ValidationError", "WRONG_CONVERSATION")
    twice = payload(
        await gql(
            documents.MOVE_NODES,
            moves=[{"id": first["id"], "canvasX": 1}, {"id": first["id"], "canvasX": 2}],
        ),
        "moveNodes",
    )
    assert (twice["__typename"], twice["field"]) == ("ValidationError", "moves[1].id")


async def test_merge_and_split(gql, database) -> None:
    conversation = await new_conversation(gql)
    utterances = await append(gql, conversation["id"], "a b", "c d", "e f", "g h")
    ids = [row["id"] for row in utterances]
    kept = await new_node(gql, conversation["id"], "kept", utteranceIds=ids[:2])
    absorbed = await new_node(
        gql, conversation["id"], "absorbed", predecessorId=kept["id"], utteranceIds=ids[2:]
    )
    child = await new_node(gql, conversation["id"], "child", parentId=absorbed["id"])
    third = await new_node(gql, conversation["id"], "third", predecessorId=absorbed["id"])
    payload(
        await gql(
            documents.CREATE_RELATIONSHIP,
            input={
                "fromNodeId": third["id"],
                "toNodeId": absorbed["id"],
                "relationshipType": "follows",
            },
        ),
        "createRelationship",
    )
    renaming = {"keptNodeId": kept["id"], "absorbedNodeId": absorbed["id"], "nodeName": "both"}
    unversioned = payload(await gql(documents.MERGE_NODES, input=renaming), "mergeNodes")
    assert (unversioned["__typename"], unversioned["field"], unversioned["code"]) == (
        "ValidationError",
        "expectedUpdatedAt",
        "REQUIRED",
    )
    stale = payload(
        await gql(
            documents.MERGE_NODES,
            input={**renaming, "expectedUpdatedAt": kept["updatedAt"]},  # linked since: stale
        ),
        "mergeNodes",
    )
    assert (stale["__typename"], stale["current"]["nodeName"]) == ("ConflictError", "kept")
    assert await node_row(database, absorbed["id"]) is not None
    kept_now = (await node_row(database, kept["id"]))["updated_at"].isoformat()
    merged = payload(
        await gql(documents.MERGE_NODES, input={**renaming, "expectedUpdatedAt": kept_now}),
        "mergeNodes",
    )["node"]
    assert merged["nodeName"] == "both"
    assert merged["utteranceIds"] == ids
    assert merged["childrenIds"] == [child["id"]]
    assert merged["successorId"] == third["id"]
    assert await database.fetchval(
        "SELECT to_node_id FROM relationships WHERE from_node_id = $1", uuid.UUID(third["id"])
    ) == uuid.UUID(kept["id"])
    merge_rows = await database.fetchval(
        "SELECT count(*) FROM edits_log WHERE edit_type = 'merge' AND target_id = ANY($1::uuid[])",
        [uuid.UUID(kept["id"]), uuid.UUID(absorbed["id"])],
    )
    assert merge_rows == 2
    assert await violations(database, [conversation["id"]]) == []

    split = payload(
        await gql(
            documents.SPLIT_NODE,
            input={
                "id": kept["id"],
                "utteranceIds": ids[2:],
                "nodeName": "second half",
                "summary": "s",
            },
        ),
        "splitNode",
    )
    assert split["node"]["utteranceIds"] == ids[:2]
    assert split["newNode"]["utteranceIds"] == ids[2:]
    assert split["node"]["successorId"] == split["newNode"]["id"]
    assert split["newNode"]["successorId"] == third["id"]
    assert (
        await database.fetchval(
            "SELECT count(*) FROM utterances WHERE node_id = $1", uuid.UUID(split["newNode"]["id"])
        )
        == 2
    )
    assert (
        await database.fetchval(
            "SELECT count(*) FROM edits_log WHERE edit_type = 'split' "
            "AND target_id = ANY($1::uuid[])",
            [uuid.UUID(kept["id"]), uuid.UUID(split["newNode"]["id"])],
        )
        == 2
    )
    assert await violations(database, [conversation["id"]]) == []

    errors = [
        (
            documents.MERGE_NODES,
            "mergeNodes",
            {"keptNodeId": kept["id"], "absorbedNodeId": kept["id"]},
            "ValidationError",
            "absorbedNodeId",
        ),
        (
            documents.MERGE_NODES,
            "mergeNodes",
            {"keptNodeId": kept["id"], "absorbedNodeId": str(uuid.uuid4())},
            "NotFoundError",
            "absorbedNodeId",
        ),
        (
            documents.MERGE_NODES,
            "mergeNodes",
            {"keptNodeId": child["id"], "absorbedNodeId": kept["id"]},
            "ValidationError",
            "absorbedNodeId",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {"id": kept["id"], "utteranceIds": [ids[3]], "nodeName": "x", "summary": "s"},
            "ValidationError",
            "utteranceIds[0]",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {"id": str(uuid.uuid4()), "utteranceIds": [], "nodeName": "x", "summary": "s"},
            "NotFoundError",
            "id",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {"id": kept["id"], "utteranceIds": [], "nodeName": " ", "summary": "s"},
            "ValidationError",
            "nodeName",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {
                "id": kept["id"],
                "utteranceIds": [],
                "nodeName": "x",
                "summary": "s",
                "keptNodeName": " ",
                "expectedUpdatedAt": split["node"]["updatedAt"],
            },
            "ValidationError",
            "keptNodeName",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {
                "id": kept["id"],
                "utteranceIds": [],
                "nodeName": "x",
                "summary": "s",
                "keptSummary": "shorter",
            },
            "ValidationError",
            "expectedUpdatedAt",
        ),
        (
            documents.SPLIT_NODE,
            "splitNode",
            {
                "id": kept["id"],
                "utteranceIds": [],
                "nodeName": "x",
                "summary": "s",
                "keptSummary": "shorter",
                "expectedUpdatedAt": merged["updatedAt"],
            },
            "ConflictError",
            "expectedUpdatedAt",
        ),
    ]
    for document, name, variables, typename, field in errors:
        result = payload(await gql(document, input=variables), name)
        assert (result["__typename"], result["field"]) == (typename, field), (
            name,
            variables,
            result,
        )


async def test_claiming_an_utterance_takes_it_from_its_node(gql, database) -> None:
    """An utterance belongs to one node: `nodes.utterance_ids` and `utterances.node_id` agree
    after createNode and updateNode take it from the node that had it."""
    conversation = await new_conversation(gql)
    ids = [row["id"] for row in await append(gql, conversation["id"], "a", "b", "c")]
    first = await new_node(gql, conversation["id"], "first", utteranceIds=ids)
    second = await new_node(gql, conversation["id"], "second", utteranceIds=ids[1:2])
    assert (await node_row(database, first["id"]))["utterance_ids"] == [
        uuid.UUID(ids[0]),
        uuid.UUID(ids[2]),
    ]
    assert await database.fetchval(
        "SELECT node_id FROM utterances WHERE id = $1", uuid.UUID(ids[1])
    ) == uuid.UUID(second["id"])
    logged = await database.fetchrow(
        "SELECT field_name, user_id FROM edits_log WHERE target_id = $1 "
        "AND edit_type = 'correction'",
        uuid.UUID(first["id"]),
    )
    assert tuple(logged) == ("utterance_ids", VIEWER)
    assert await violations(database, [conversation["id"]]) == []
    now = await node_row(database, first["id"])
    back = payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": first["id"],
                "expectedUpdatedAt": now["updated_at"].isoformat(),
                "utteranceIds": ids,
            },
        ),
        "updateNode",
    )
    assert back["node"]["utteranceIds"] == ids
    assert (await node_row(database, second["id"]))["utterance_ids"] == []
    assert await violations(database, [conversation["id"]]) == []


async def test_relationships(gql, database) -> None:
    conversation = await new_conversation(gql)
    one = await new_node(gql, conversation["id"], "one")
    two = await new_node(gql, conversation["id"], "two")
    created = payload(
        await gql(
            documents.CREATE_RELATIONSHIP,
            input={
                "fromNodeId": one["id"],
                "toNodeId": two["id"],
                "relationshipType": "supports",
                "strength": 0.5,
            },
        ),
        "createRelationship",
    )["relationship"]
    assert created["strength"] == 0.5
    foreign = await new_node(gql, (await new_conversation(gql))["id"])
    cases = [
        (
            {"fromNodeId": one["id"], "toNodeId": two["id"], "relationshipType": "supports"},
            "ValidationError",
            "relationshipType",
            "DUPLICATE",
        ),
        (
            {"fromNodeId": one["id"], "toNodeId": one["id"], "relationshipType": "x"},
            "ValidationError",
            "toNodeId",
            "INVALID",
        ),
        (
            {"fromNodeId": one["id"], "toNodeId": foreign["id"], "relationshipType": "x"},
            "ValidationError",
            "toNodeId",
            "WRONG_CONVERSATION",
        ),
        (
            {"fromNodeId": one["id"], "toNodeId": str(uuid.uuid4()), "relationshipType": "x"},
            "NotFoundError",
            "toNodeId",
            "NOT_FOUND",
        ),
        (
            {
                "fromNodeId": one["id"],
                "toNodeId": two["id"],
                "relationshipType": "x",
                "confidence": -1.0,
            },
            "ValidationError",
            "confidence",
            "OUT_OF_RANGE",
        ),
    ]
    for variables, typename, field, code in cases:
        result = payload(
            await gql(documents.CREATE_RELATIONSHIP, input=variables), "createRelationship"
        )
        assert (result["__typename"], result["field"], result["code"]) == (typename, field, code), (
            variables
        )
    updated = payload(
        await gql(
            documents.UPDATE_RELATIONSHIP,
            input={"id": created["id"], "expectedUpdatedAt": created["updatedAt"], "strength": 0.9},
        ),
        "updateRelationship",
    )["relationship"]
    assert updated["strength"] == 0.9
    assert (
        await database.fetchval(
            "SELECT new_value FROM edits_log WHERE target_id = $1 AND field_name = 'strength'",
            uuid.UUID(created["id"]),
        )
        == "0.9"
    )
    stale = payload(
        await gql(
            documents.UPDATE_RELATIONSHIP,
            input={"id": created["id"], "expectedUpdatedAt": created["updatedAt"], "strength": 0.1},
        ),
        "updateRelationship",
    )
    assert (stale["__typename"], stale["current"]["strength"]) == ("ConflictError", 0.9)
    deleted = payload(
        await gql(documents.DELETE_RELATIONSHIP, id=created["id"]), "deleteRelationship"
    )
    assert deleted["deletedId"] == created["id"]
    again = payload(
        await gql(documents.DELETE_RELATIONSHIP, id=created["id"]), "deleteRelationship"
    )
    assert again["__typename"] == "NotFoundError"


async def test_clusters(gql, database) -> None:
    conversation = await new_conversation(gql)
    one = await new_node(gql, conversation["id"], "one")
    two = await new_node(gql, conversation["id"], "two")
    top = payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={"conversationId": conversation["id"], "clusterName": "top"},
        ),
        "createCluster",
    )["cluster"]
    middle = payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "middle",
                "parentClusterId": top["id"],
                "nodeIds": [one["id"]],
            },
        ),
        "createCluster",
    )["cluster"]
    leaf = payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "leaf",
                "parentClusterId": middle["id"],
            },
        ),
        "createCluster",
    )["cluster"]
    top_now = await database.fetchrow(
        "SELECT updated_at FROM clusters WHERE id = $1", uuid.UUID(top["id"])
    )
    cycle = payload(
        await gql(
            documents.UPDATE_CLUSTER,
            input={
                "id": top["id"],
                "expectedUpdatedAt": top_now["updated_at"].isoformat(),
                "parentClusterId": leaf["id"],
            },
        ),
        "updateCluster",
    )
    assert (cycle["__typename"], cycle["code"]) == ("ValidationError", "CYCLE")
    membership = payload(
        await gql(
            documents.CHANGE_MEMBERSHIP, clusterId=middle["id"], add=[two["id"]], remove=[one["id"]]
        ),
        "changeClusterMembership",
    )["cluster"]
    assert membership["nodeIds"] == [two["id"]]
    assert (
        await database.fetchval(
            "SELECT new_value FROM edits_log WHERE target_id = $1 AND field_name = 'node_ids'",
            uuid.UUID(middle["id"]),
        )
        == f'["{two["id"]}"]'
    )
    foreign = await new_node(gql, (await new_conversation(gql))["id"])
    wrong = payload(
        await gql(documents.CHANGE_MEMBERSHIP, clusterId=middle["id"], add=[foreign["id"]]),
        "changeClusterMembership",
    )
    assert (wrong["__typename"], wrong["code"]) == ("ValidationError", "WRONG_CONVERSATION")
    missing = payload(
        await gql(documents.CHANGE_MEMBERSHIP, clusterId=str(uuid.uuid4()), add=[]),
        "changeClusterMembership",
    )
    assert missing["__typename"] == "NotFoundError"
    renamed = payload(
        await gql(
            documents.UPDATE_CLUSTER,
            input={
                "id": leaf["id"],
                "expectedUpdatedAt": leaf["updatedAt"],
                "clusterName": "renamed",
            },
        ),
        "updateCluster",
    )["cluster"]
    assert renamed["clusterName"] == "renamed"
    stale = payload(
        await gql(
            documents.UPDATE_CLUSTER,
            input={"id": leaf["id"], "expectedUpdatedAt": leaf["updatedAt"], "clusterName": "x"},
        ),
        "updateCluster",
    )
    assert stale["__typename"] == "ConflictError"
    deleted = payload(await gql(documents.DELETE_CLUSTER, id=middle["id"]), "deleteCluster")
    assert deleted["deletedId"] == middle["id"]
    assert await database.fetchval(
        "SELECT parent_cluster_id FROM clusters WHERE id = $1", uuid.UUID(leaf["id"])
    ) == uuid.UUID(top["id"])
    assert await database.fetchval(
        "SELECT child_cluster_ids FROM clusters WHERE id = $1", uuid.UUID(top["id"])
    ) == [uuid.UUID(leaf["id"])]
    assert await violations(database, [conversation["id"]]) == []


async def test_create_cluster_errors(gql) -> None:
    conversation = await new_conversation(gql)
    one = await new_node(gql, conversation["id"], "one")
    other = await new_conversation(gql)
    foreign_node = await new_node(gql, other["id"], "elsewhere")
    foreign_cluster = payload(
        await gql(
            documents.CREATE_CLUSTER, input={"conversationId": other["id"], "clusterName": "there"}
        ),
        "createCluster",
    )["cluster"]
    cases = [
        ({"clusterName": " "}, "ValidationError", "clusterName", "REQUIRED"),
        ({"nodeIds": [one["id"], one["id"]]}, "ValidationError", "nodeIds", "DUPLICATE"),
        (
            {"nodeIds": [one["id"], foreign_node["id"]]},
            "ValidationError",
            "nodeIds[1]",
            "WRONG_CONVERSATION",
        ),
        ({"nodeIds": [str(uuid.uuid4())]}, "NotFoundError", "nodeIds[0]", "NOT_FOUND"),
        ({"nodeIds": ["nope"]}, "ValidationError", "nodeIds[0]", "INVALID"),
        (
            {"parentClusterId": foreign_cluster["id"]},
            "ValidationError",
            "parentClusterId",
            "WRONG_CONVERSATION",
        ),
        ({"parentClusterId": str(uuid.uuid4())}, "NotFoundError", "parentClusterId", "NOT_FOUND"),
    ]
    for fields, typename, field, code in cases:
        result = payload(
            await gql(
                documents.CREATE_CLUSTER,
                input={"conversationId": conversation["id"], "clusterName": "c", **fields},
            ),
            "createCluster",
        )
        assert (result["__typename"], result["field"], result["code"]) == (typename, field, code), (
            fields
        )


async def test_update_relationship_errors(gql, database) -> None:
    conversation = await new_conversation(gql)
    one = await new_node(gql, conversation["id"], "one")
    two = await new_node(gql, conversation["id"], "two")
    for kind in ("supports", "contradicts"):
        created = payload(
            await gql(
                documents.CREATE_RELATIONSHIP,
                input={"fromNodeId": one["id"], "toNodeId": two["id"], "relationshipType": kind},
            ),
            "createRelationship",
        )["relationship"]
    version = {"id": created["id"], "expectedUpdatedAt": created["updatedAt"]}
    cases = [
        ({"strength": 1.5}, "strength", "OUT_OF_RANGE"),
        ({"confidence": -0.1}, "confidence", "OUT_OF_RANGE"),
        ({"relationshipType": " "}, "relationshipType", "REQUIRED"),
        ({"relationshipType": "supports"}, "relationshipType", "DUPLICATE"),
    ]
    for fields, field, code in cases:
        result = payload(
            await gql(documents.UPDATE_RELATIONSHIP, input={**version, **fields}),
            "updateRelationship",
        )
        assert (result["__typename"], result["field"], result["code"]) == (
            "ValidationError",
            field,
            code,
        ), fields
    assert (
        await database.fetchval(
            "SELECT relationship_type FROM relationships WHERE id = $1", uuid.UUID(created["id"])
        )
        == "contradicts"
    )


@pytest.mark.parametrize(
    ("document", "name"),
    [
        (documents.DELETE_NODE, "deleteNode"),
        (documents.DELETE_RELATIONSHIP, "deleteRelationship"),
        (documents.DELETE_CLUSTER, "deleteCluster"),
    ],
)
async def test_malformed_ids_are_validation_errors(gql, document, name) -> None:
    result = payload(await gql(document, id="not-a-uuid"), name)
    assert (result["__typename"], result["field"], result["code"]) == (
        "ValidationError",
        "id",
        "INVALID",
    )


async def test_edits_log_per_conversation_and_target_newest_first(gql) -> None:
    conversation = await new_conversation(gql)
    node = await new_node(gql, conversation["id"], "first name")
    other = await new_node(gql, conversation["id"], "other")
    renamed = payload(
        await gql(
            documents.UPDATE_NODE,
            input={"id": node["id"], "expectedUpdatedAt": node["updatedAt"], "nodeName": "second"},
        ),
        "updateNode",
    )["node"]
    payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": node["id"],
                "expectedUpdatedAt": renamed["updatedAt"],
                "nodeName": "third",
            },
        ),
        "updateNode",
    )
    for_node = payload(
        await gql(documents.EDITS_LOG, conversationId=conversation["id"], targetId=node["id"]),
        "editsLog",
    )["edits"]
    assert [(edit["editType"], edit["newValue"]) for edit in for_node[:2]] == [
        ("CORRECTION", "third"),
        ("CORRECTION", "second"),
    ]
    assert for_node[2]["editType"] == "ADDITION"
    everything = payload(
        await gql(documents.EDITS_LOG, conversationId=conversation["id"]), "editsLog"
    )["edits"]
    assert {edit["targetId"] for edit in everything} == {node["id"], other["id"]}
    assert len(everything) == 4
    limited = payload(
        await gql(documents.EDITS_LOG, conversationId=conversation["id"], first=1), "editsLog"
    )["edits"]
    assert [edit["newValue"] for edit in limited] == ["third"]
    for variables, typename, field in (
        ({"conversationId": str(uuid.uuid4())}, "NotFoundError", "conversationId"),
        ({"conversationId": conversation["id"], "first": 0}, "ValidationError", "first"),
        ({"conversationId": conversation["id"], "targetId": "x"}, "ValidationError", "targetId"),
    ):
        result = payload(await gql(documents.EDITS_LOG, **variables), "editsLog")
        assert (result["__typename"], result["field"]) == (typename, field)
