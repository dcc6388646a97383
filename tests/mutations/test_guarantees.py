"""What the write API promises as a whole: atomicity, no lost updates, disjoint training exports,
a lossless export/import round trip, invariants after a random edit session, and no 500s."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tests.conftest import asyncpg_dsn
from tests.mutations import documents
from tests.mutations.invariants import violations
from tests.mutations.support import append, new_conversation, new_node, payload


async def counts(database, conversation_id: str) -> dict[str, int]:
    key = uuid.UUID(conversation_id)
    return {
        table: await database.fetchval(
            f"SELECT count(*) FROM {table} WHERE conversation_id = $1", key
        )
        for table in ("utterances", "nodes", "relationships", "clusters", "edits_log")
    }


async def test_failure_part_way_through_an_import_changes_nothing(gql, database) -> None:
    """The duplicate relationship is only caught by PostgreSQL's UNIQUE constraint, after the
    conversation, its utterances and nodes were inserted in the same transaction."""
    before = await database.fetchval("SELECT count(*) FROM conversations")
    nodes_before = await database.fetchval("SELECT count(*) FROM nodes")
    document = {
        "conversation": {
            "conversationName": "pipeline run",
            "conversationType": "transcript",
            "sourceType": "pipeline",
            "startedAt": "2026-11-01T10:00:00+00:00",
        },
        "utterances": [
            {"id": "u1", "sequenceNumber": 1, "text": "hi", "speakerId": "a"},
            {"id": "u2", "sequenceNumber": 2, "text": "there", "speakerId": "b"},
        ],
        "nodes": [
            {"id": "n1", "nodeName": "one", "summary": "s", "utteranceIds": ["u1"]},
            {
                "id": "n2",
                "nodeName": "two",
                "summary": "s",
                "parentId": "n1",
                "predecessorId": "n1",
            },
        ],
        "relationships": [
            {"id": "r1", "fromNodeId": "n1", "toNodeId": "n2", "relationshipType": "supports"},
            {"id": "r2", "fromNodeId": "n1", "toNodeId": "n2", "relationshipType": "supports"},
        ],
    }
    result = payload(
        await gql(documents.IMPORT_CONVERSATION, document=document), "importConversation"
    )
    assert (result["__typename"], result["code"]) == ("ValidationError", "DUPLICATE")
    assert (
        "relationships" not in result["message"].lower() or "duplicate key" not in result["message"]
    )
    assert await database.fetchval("SELECT count(*) FROM conversations") == before
    assert await database.fetchval("SELECT count(*) FROM nodes") == nodes_before
    document["relationships"].pop()
    imported = payload(
        await gql(documents.IMPORT_CONVERSATION, document=document), "importConversation"
    )
    assert imported["conversation"]["totalNodes"] == 2
    assert imported["conversation"]["totalWords"] == 2
    assert set(imported["idMap"]) == {"u1", "u2", "n1", "n2", "r1"}
    assert await violations(database, [imported["conversation"]["id"]]) == []


FAIL_ON = """
CREATE OR REPLACE FUNCTION lct_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'injected failure' USING ERRCODE = TG_ARGV[0];
END
$$;
CREATE TRIGGER lct_test_fail_delete BEFORE DELETE ON nodes
    FOR EACH ROW WHEN (OLD.node_name = 'explode on delete')
    EXECUTE FUNCTION lct_test_fail('check_violation');
CREATE TRIGGER lct_test_fail_update BEFORE UPDATE ON nodes
    FOR EACH ROW WHEN (NEW.canvas_x = 666)
    EXECUTE FUNCTION lct_test_fail('XX000');
"""


async def graph_rows(database, conversation_id: str) -> dict[str, list[dict[str, Any]]]:
    key = uuid.UUID(conversation_id)
    return {
        table: [
            dict(row)
            for row in await database.fetch(
                f"SELECT * FROM {table} WHERE conversation_id = $1 ORDER BY id", key
            )
        ]
        for table in ("utterances", "nodes", "relationships", "clusters", "edits_log")
    } | {
        "conversation": [
            dict(row)
            for row in await database.fetch("SELECT * FROM conversations WHERE id = $1", key)
        ]
    }


async def test_failure_part_way_through_merge_and_move_changes_nothing(gql, database) -> None:
    """A trigger (test only) makes the last step of a merge (deleting the absorbed node) and the
    second row of a move fail, after the earlier steps were written in the same transaction."""
    conversation = await new_conversation(gql)
    utterances = await append(gql, conversation["id"], "a", "b")
    kept = await new_node(gql, conversation["id"], "kept", utteranceIds=[utterances[0]["id"]])
    absorbed = await new_node(
        gql,
        conversation["id"],
        "explode on delete",
        predecessorId=kept["id"],
        utteranceIds=[utterances[1]["id"]],
    )
    child = await new_node(gql, conversation["id"], "child", parentId=absorbed["id"])
    payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "c",
                "nodeIds": [absorbed["id"]],
            },
        ),
        "createCluster",
    )
    payload(
        await gql(
            documents.CREATE_RELATIONSHIP,
            input={"fromNodeId": child["id"], "toNodeId": absorbed["id"], "relationshipType": "x"},
        ),
        "createRelationship",
    )
    await database.execute(FAIL_ON)
    try:
        before = await graph_rows(database, conversation["id"])
        merged = payload(
            await gql(
                documents.MERGE_NODES,
                input={"keptNodeId": kept["id"], "absorbedNodeId": absorbed["id"]},
            ),
            "mergeNodes",
        )
        assert merged["__typename"] == "ValidationError"
        assert "injected" not in merged["message"]
        assert await graph_rows(database, conversation["id"]) == before

        moved = await gql(
            documents.MOVE_NODES,
            moves=[{"id": kept["id"], "canvasX": 1}, {"id": child["id"], "canvasX": 666}],
        )
        assert moved["data"] is None or moved["data"]["moveNodes"] is None
        assert all("injected" not in error["message"] for error in moved["errors"])
        assert await graph_rows(database, conversation["id"]) == before
    finally:
        await database.execute(
            "DROP TRIGGER lct_test_fail_delete ON nodes; "
            "DROP TRIGGER lct_test_fail_update ON nodes; DROP FUNCTION lct_test_fail()"
        )


async def test_two_editors_at_once(live_server_url, gql) -> None:
    """Both editors saw the same version; exactly one write lands, the other gets the winner's
    values back in a ConflictError."""
    conversation = await new_conversation(gql)
    node = await new_node(gql, conversation["id"], "original")

    async def edit(name: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=live_server_url, timeout=30) as client:
            response = await client.post(
                "/graphql",
                json={
                    "query": documents.UPDATE_NODE,
                    "variables": {
                        "input": {
                            "id": node["id"],
                            "expectedUpdatedAt": node["updatedAt"],
                            "nodeName": name,
                        }
                    },
                },
            )
            assert response.status_code == 200
            return response.json()["data"]["updateNode"]

    results = await asyncio.gather(*(edit(f"editor {index}") for index in range(2)))
    kinds = sorted(result["__typename"] for result in results)
    assert kinds == ["ConflictError", "NodePayload"]
    winner = next(result for result in results if result["__typename"] == "NodePayload")
    loser = next(result for result in results if result["__typename"] == "ConflictError")
    assert loser["current"]["nodeName"] == winner["node"]["nodeName"]
    assert loser["currentUpdatedAt"] == winner["node"]["updatedAt"]


async def test_two_editors_merge_or_split_and_rename_at_once(live_server_url, gql) -> None:
    """A merge or split that renames the node it keeps races a plain rename of that node, both
    from the same version: exactly one lands, the other is a ConflictError showing the winner."""
    conversation = await new_conversation(gql)
    utterances = await append(gql, conversation["id"], "one", "two")

    async def send(query: str, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=live_server_url, timeout=30) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
            assert response.status_code == 200
            return response.json()["data"][name]

    for operation in ("merge", "split"):
        absorbed = await new_node(gql, conversation["id"], f"absorbed by {operation}")
        node = await new_node(
            gql, conversation["id"], operation, utteranceIds=[row["id"] for row in utterances]
        )
        version = {"expectedUpdatedAt": node["updatedAt"]}
        if operation == "merge":
            structural = send(
                documents.MERGE_NODES,
                "mergeNodes",
                {
                    "input": {
                        "keptNodeId": node["id"],
                        "absorbedNodeId": absorbed["id"],
                        "nodeName": "merged",
                        **version,
                    }
                },
            )
        else:
            structural = send(
                documents.SPLIT_NODE,
                "splitNode",
                {
                    "input": {
                        "id": node["id"],
                        "utteranceIds": [utterances[1]["id"]],
                        "nodeName": "split off",
                        "summary": "s",
                        "keptNodeName": "split",
                        **version,
                    }
                },
            )
        rename = send(
            documents.UPDATE_NODE,
            "updateNode",
            {"input": {"id": node["id"], "nodeName": "renamed", **version}},
        )
        results = await asyncio.gather(structural, rename)
        kinds = [result["__typename"] for result in results]
        assert kinds.count("ConflictError") == 1, (operation, results)
        winner = next(result for result in results if result["__typename"] != "ConflictError")
        loser = next(result for result in results if result["__typename"] == "ConflictError")
        assert loser["current"]["nodeName"] == winner["node"]["nodeName"], operation
        assert loser["currentUpdatedAt"] == winner["node"]["updatedAt"], operation


async def test_concurrent_training_exports_never_overlap(live_server_url, gql, database) -> None:
    conversation = await new_conversation(gql)
    for index in range(30):
        await new_node(gql, conversation["id"], f"node {index}")
    await database.execute(
        "UPDATE edits_log SET exported_for_training = true WHERE conversation_id <> $1 "
        "AND exported_for_training = false",
        uuid.UUID(conversation["id"]),
    )

    async def export(dataset: str) -> list[str]:
        async with httpx.AsyncClient(base_url=live_server_url, timeout=30) as client:
            response = await client.post(
                "/graphql",
                json={
                    "query": documents.EXPORT_TRAINING,
                    "variables": {"datasetId": dataset, "limit": 4},
                },
            )
            result = response.json()["data"]["exportTrainingEdits"]
            assert result["__typename"] == "TrainingExportPayload", result
            return [edit["id"] for edit in result["edits"]]

    batches = await asyncio.gather(*(export(f"dataset-{index}") for index in range(10)))
    exported = [edit for batch in batches for edit in batch]
    assert len(exported) == len(set(exported)) == 30
    assert (
        await database.fetchval(
            "SELECT count(*) FROM edits_log WHERE conversation_id = $1 "
            "AND exported_for_training = false",
            uuid.UUID(conversation["id"]),
        )
        == 0
    )
    for index, batch in enumerate(batches):
        if batch:
            datasets = await database.fetch(
                "SELECT DISTINCT training_dataset_id FROM edits_log WHERE id = ANY($1::uuid[])",
                [uuid.UUID(item) for item in batch],
            )
            assert [row[0] for row in datasets] == [f"dataset-{index}"]
    for limit, field in ((0, "limit"), (100_000, "limit")):
        refused = payload(
            await gql(documents.EXPORT_TRAINING, datasetId="d", limit=limit), "exportTrainingEdits"
        )
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
    blank = payload(
        await gql(documents.EXPORT_TRAINING, datasetId=" ", limit=1), "exportTrainingEdits"
    )
    assert (blank["__typename"], blank["field"]) == ("ValidationError", "datasetId")


async def test_canvas_moves_are_not_training_data(gql, database) -> None:
    conversation = await new_conversation(gql)
    node = await new_node(gql, conversation["id"])
    await database.execute("UPDATE edits_log SET exported_for_training = true")
    payload(await gql(documents.MOVE_NODES, moves=[{"id": node["id"], "canvasX": 3}]), "moveNodes")
    exported = payload(
        await gql(documents.EXPORT_TRAINING, datasetId="d", limit=10), "exportTrainingEdits"
    )
    assert exported["edits"] == []


async def test_record_api_call(gql, database) -> None:
    conversation = await new_conversation(gql)
    call = {
        "conversationId": conversation["id"],
        "endpoint": "/v1/chat",
        "feature": "node_extraction",
        "provider": "openai",
        "model": "gpt-4o",
        "promptTokens": 100,
        "completionTokens": 20,
        "promptCost": 0.01,
        "completionCost": 0.02,
        "status": "success",
        "latencyMs": 850,
    }
    recorded = payload(await gql(documents.RECORD_API_CALL, input=call), "recordApiCall")
    assert recorded["apiCall"]["totalTokens"] == 120
    for change, typename, field in (
        ({"promptTokens": -1}, "ValidationError", "promptTokens"),
        ({"model": ""}, "ValidationError", "model"),
        ({"conversationId": str(uuid.uuid4())}, "NotFoundError", "conversationId"),
        (
            {"startedAt": "2026-01-02T00:00:00+00:00", "completedAt": "2026-01-01T00:00:00+00:00"},
            "ValidationError",
            "completedAt",
        ),
    ):
        refused = payload(
            await gql(documents.RECORD_API_CALL, input={**call, **change}), "recordApiCall"
        )
        assert (refused["__typename"], refused["field"]) == (typename, field), change


def _canonical(document: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The document with stored ids replaced by the original document's references."""

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list):
            return [rename(item) for item in value]
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        return value

    canonical = rename(document)
    for section in ("utterances", "nodes", "relationships", "clusters", "edits"):
        canonical[section] = sorted(canonical[section], key=lambda row: row["id"])
    for edit in canonical["edits"]:  # an imported edit counts as exported (it is history)
        edit.pop("exportedForTraining")
        edit.pop("trainingDatasetId")
    return canonical


async def test_export_import_round_trip(gql, database) -> None:
    conversation = await new_conversation(
        gql, participants=[{"id": "a", "name": "Ann"}], goals=[{"goalType": "decide"}]
    )
    utterances = await append(
        gql, conversation["id"], "we should ship", "not before tests", "agreed"
    )
    ids = [row["id"] for row in utterances]
    root = await new_node(gql, conversation["id"], "root", keyPoints=["ship"], canvasX=1, canvasY=2)
    first = await new_node(
        gql,
        conversation["id"],
        "first",
        parentId=root["id"],
        utteranceIds=ids[:2],
        speakerInfo={"primarySpeaker": "a"},
        zoomLevelVisible=[1, 2],
    )
    second = await new_node(
        gql,
        conversation["id"],
        "second",
        parentId=root["id"],
        predecessorId=first["id"],
        utteranceIds=ids[2:],
        dialogueType="DIALOGUE",
    )
    payload(
        await gql(
            documents.CREATE_RELATIONSHIP,
            input={
                "fromNodeId": first["id"],
                "toNodeId": second["id"],
                "relationshipType": "leads_to",
                "supportingUtteranceIds": ids[1:2],
                "strength": 0.4,
            },
        ),
        "createRelationship",
    )
    top = payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "top",
                "nodeIds": [root["id"]],
            },
        ),
        "createCluster",
    )
    payload(
        await gql(
            documents.CREATE_CLUSTER,
            input={
                "conversationId": conversation["id"],
                "clusterName": "inner",
                "parentClusterId": top["cluster"]["id"],
                "nodeIds": [first["id"], second["id"]],
            },
        ),
        "createCluster",
    )
    payload(
        await gql(
            documents.UPDATE_NODE,
            input={
                "id": second["id"],
                "expectedUpdatedAt": second["updatedAt"],
                "summary": "corrected",
            },
            comment="clearer",
        ),
        "updateNode",
    )

    exported = payload(
        await gql(documents.EXPORT_CONVERSATION, id=conversation["id"]), "conversationExport"
    )
    document = exported["document"]
    imported = payload(
        await gql(documents.IMPORT_CONVERSATION, document=document), "importConversation"
    )
    assert imported["__typename"] == "ImportConversationPayload", imported
    copy_id = imported["conversation"]["id"]
    assert copy_id != conversation["id"]
    again = payload(await gql(documents.EXPORT_CONVERSATION, id=copy_id), "conversationExport")[
        "document"
    ]
    back = {stored: reference for reference, stored in imported["idMap"].items()}
    assert _canonical(again, back) == _canonical(document, {})
    assert {edit["exportedForTraining"] for edit in again["edits"]} == {True}
    assert {edit["exportedForTraining"] for edit in document["edits"]} == {False}
    assert await violations(database, [conversation["id"], copy_id]) == []
    original_counts = await counts(database, conversation["id"])
    assert await counts(database, copy_id) == original_counts

    # preserveIds restores a purged conversation under its own ids.
    payload(await gql(documents.PURGE_CONVERSATION, id=conversation["id"]), "purgeConversation")
    restored = payload(
        await gql(
            documents.IMPORT_CONVERSATION,
            document={
                **document,
                "conversation": {**document["conversation"], "id": conversation["id"]},
            },
            preserveIds=True,
        ),
        "importConversation",
    )
    assert restored["conversation"]["id"] == conversation["id"]
    assert _canonical(
        payload(
            await gql(documents.EXPORT_CONVERSATION, id=conversation["id"]), "conversationExport"
        )["document"],
        {},
    ) == _canonical(document, {})
    clash = payload(
        await gql(documents.IMPORT_CONVERSATION, document=document, preserveIds=True),
        "importConversation",
    )
    assert (clash["__typename"], clash["code"]) == ("ValidationError", "DUPLICATE")


async def test_import_validation(gql) -> None:
    base = {
        "conversation": {
            "conversationName": "x",
            "conversationType": "chat",
            "sourceType": "p",
            "startedAt": "2026-01-01T00:00:00+00:00",
        },
        "nodes": [
            {"id": "a", "nodeName": "a", "summary": "s"},
            {"id": "b", "nodeName": "b", "summary": "s"},
        ],
    }
    cases = [
        (
            {
                "nodes": [
                    {"id": "a", "nodeName": "a", "summary": "s", "parentId": "b"},
                    {"id": "b", "nodeName": "b", "summary": "s", "parentId": "a"},
                ]
            },
            "nodes[0].parentId",
            "CYCLE",
        ),
        (
            {"nodes": [{"id": "a", "nodeName": "a", "summary": "s", "parentId": "zzz"}]},
            "nodes[0].parentId",
            "NOT_FOUND",
        ),
        (
            {
                "nodes": [
                    {"id": "a", "nodeName": "a", "summary": "s"},
                    {"id": "a", "nodeName": "b", "summary": "s"},
                ]
            },
            "nodes[1].id",
            "DUPLICATE",
        ),
        (
            {"nodes": [{"id": "a", "nodeName": "a", "summary": "s", "level": "high"}]},
            "nodes[0].level",
            "INVALID",
        ),
        (
            {"nodes": [{"id": "a", "nodeName": "a", "summary": "s", "bogus": 1}]},
            "nodes[0].bogus",
            "INVALID",
        ),
        (
            {"conversation": {**base["conversation"], "conversationType": "radio"}},
            "conversation.conversationType",
            "INVALID",
        ),
        (
            {
                "utterances": [
                    {
                        "id": "u",
                        "sequenceNumber": 1,
                        "text": "t",
                        "speakerId": "s",
                        "timestampStart": 2,
                        "timestampEnd": 1,
                    }
                ]
            },
            "utterances[0].timestampEnd",
            "INVALID",
        ),
        (
            {
                "relationships": [
                    {"id": "r", "fromNodeId": "a", "toNodeId": "a", "relationshipType": "x"}
                ]
            },
            "relationships[0].toNodeId",
            "INVALID",
        ),
        ({"clusters": [{"id": "c", "clusterName": "no level"}]}, "clusters[0].level", "REQUIRED"),
    ]
    for change, field, code in cases:
        result = payload(
            await gql(documents.IMPORT_CONVERSATION, document={**base, **change}),
            "importConversation",
        )
        assert (result["__typename"], result["field"], result["code"]) == (
            "ValidationError",
            field,
            code,
        ), change
    not_object = payload(
        await gql(documents.IMPORT_CONVERSATION, document=[1, 2]), "importConversation"
    )
    assert (not_object["__typename"], not_object["field"]) == ("ValidationError", "document")


async def test_hostile_inputs_never_yield_500(live_server_url) -> None:
    bad_requests = [
        {
            "query": documents.CREATE_NODE,
            "variables": {
                "input": {"conversationId": "x" * 10_000, "nodeName": "n", "summary": "s"}
            },
        },
        {
            "query": documents.MOVE_NODES,
            "variables": {"moves": [{"id": str(uuid.uuid4()), "canvasX": 2**40}]},
        },
        {
            "query": documents.IMPORT_CONVERSATION,
            "variables": {"document": {"conversation": "nope"}},
        },
        {
            "query": documents.IMPORT_CONVERSATION,
            "variables": {"document": {"conversation": {"startedAt": "yesterday"}}},
        },
        {
            "query": documents.APPEND_UTTERANCES,
            "variables": {
                "conversationId": str(uuid.uuid4()),
                "utterances": [{"sequenceNumber": 2**31, "text": "t", "speakerId": "s"}],
            },
        },
        {
            "query": documents.UPDATE_NODE,
            "variables": {"input": {"id": str(uuid.uuid4()), "expectedUpdatedAt": "not a date"}},
        },
        {"query": "mutation { deleteNode(id: 5) { __typename } }"},
    ]
    async with httpx.AsyncClient(base_url=live_server_url, timeout=30) as client:
        for request in bad_requests:
            response = await client.post("/graphql", json=request)
            assert response.status_code in (200, 400), (request, response.status_code)
            body = response.json()
            for error in body.get("errors") or []:
                assert "asyncpg" not in error["message"] and "SQL" not in error["message"], error


async def test_invariants_hold_after_a_random_edit_session(gql, database) -> None:
    """A seeded random mix of a few hundred mutations, then every consistency rule is audited."""
    generator = random.Random(20261124)
    conversation = await new_conversation(gql)
    conversation_id = conversation["id"]
    await append(
        gql,
        conversation_id,
        *(f"utterance number {index} " * (index % 3 + 1) for index in range(40)),
    )
    sequence = 40
    outcomes: dict[str, int] = {}

    async def state() -> dict[str, list[Any]]:
        key = uuid.UUID(conversation_id)
        return {
            "nodes": await database.fetch(
                "SELECT id, updated_at, utterance_ids FROM nodes WHERE conversation_id = $1 "
                "ORDER BY created_at, node_name",
                key,
            ),
            "relationships": await database.fetch(
                "SELECT id, updated_at FROM relationships WHERE conversation_id = $1 "
                "ORDER BY created_at",
                key,
            ),
            "clusters": await database.fetch(
                "SELECT id, updated_at, node_ids FROM clusters WHERE conversation_id = $1 "
                "ORDER BY created_at",
                key,
            ),
            "utterances": await database.fetch(
                "SELECT id, updated_at FROM utterances WHERE conversation_id = $1 "
                "ORDER BY sequence_number",
                key,
            ),
        }

    def pick(rows: list[Any]) -> Any:
        return generator.choice(rows) if rows else None

    started = time.perf_counter()
    for _step in range(300):
        current = await state()
        node, other = pick(current["nodes"]), pick(current["nodes"])
        cluster, relationship = pick(current["clusters"]), pick(current["relationships"])
        operation = generator.choice(
            [
                "create",
                "create",
                "create",
                "update",
                "reparent",
                "delete",
                "move",
                "merge",
                "split",
                "relate",
                "unrelate",
                "relate_update",
                "cluster",
                "cluster_parent",
                "membership",
                "uncluster",
                "append",
                "utterance",
            ]
        )
        if operation == "create" or node is None:
            fields: dict[str, Any] = {
                "conversationId": conversation_id,
                "nodeName": f"n{_step}",
                "summary": "s",
            }
            if node is not None and generator.random() < 0.6:
                fields["parentId"] = str(node["id"])
            if other is not None and generator.random() < 0.6:
                fields["predecessorId" if generator.random() < 0.5 else "successorId"] = str(
                    other["id"]
                )
            chosen = generator.sample([row["id"] for row in current["utterances"]], k=2)
            fields["utteranceIds"] = [str(item) for item in chosen]
            name, body = "createNode", await gql(documents.CREATE_NODE, input=fields)
        elif operation == "update":
            name, body = (
                "updateNode",
                await gql(
                    documents.UPDATE_NODE,
                    input={
                        "id": str(node["id"]),
                        "expectedUpdatedAt": node["updated_at"].isoformat(),
                        "nodeName": f"renamed {_step}",
                        "isCrux": generator.random() < 0.5,
                    },
                ),
            )
        elif operation == "reparent":
            name, body = (
                "updateNode",
                await gql(
                    documents.UPDATE_NODE,
                    input={
                        "id": str(node["id"]),
                        "expectedUpdatedAt": node["updated_at"].isoformat(),
                        "parentId": None if generator.random() < 0.2 else str(other["id"]),
                    },
                ),
            )
        elif operation == "delete":
            name, body = "deleteNode", await gql(documents.DELETE_NODE, id=str(node["id"]))
        elif operation == "move":
            chosen_nodes = generator.sample(current["nodes"], k=min(3, len(current["nodes"])))
            name, body = (
                "moveNodes",
                await gql(
                    documents.MOVE_NODES,
                    moves=[
                        {
                            "id": str(row["id"]),
                            "canvasX": generator.randint(-500, 500),
                            "canvasY": generator.randint(-500, 500),
                        }
                        for row in chosen_nodes
                    ],
                ),
            )
        elif operation == "merge":
            name, body = (
                "mergeNodes",
                await gql(
                    documents.MERGE_NODES,
                    input={"keptNodeId": str(node["id"]), "absorbedNodeId": str(other["id"])},
                ),
            )
        elif operation == "split":
            own = node["utterance_ids"] or []
            name, body = (
                "splitNode",
                await gql(
                    documents.SPLIT_NODE,
                    input={
                        "id": str(node["id"]),
                        "utteranceIds": [str(item) for item in own[: len(own) // 2]],
                        "nodeName": f"split {_step}",
                        "summary": "s",
                    },
                ),
            )
        elif operation == "relate":
            name, body = (
                "createRelationship",
                await gql(
                    documents.CREATE_RELATIONSHIP,
                    input={
                        "fromNodeId": str(node["id"]),
                        "toNodeId": str(other["id"]),
                        "relationshipType": generator.choice(["supports", "contradicts"]),
                    },
                ),
            )
        elif operation == "unrelate" and relationship is not None:
            name, body = (
                "deleteRelationship",
                await gql(documents.DELETE_RELATIONSHIP, id=str(relationship["id"])),
            )
        elif operation == "relate_update" and relationship is not None:
            name, body = (
                "updateRelationship",
                await gql(
                    documents.UPDATE_RELATIONSHIP,
                    input={
                        "id": str(relationship["id"]),
                        "expectedUpdatedAt": relationship["updated_at"].isoformat(),
                        "strength": generator.random(),
                    },
                ),
            )
        elif operation == "cluster" or cluster is None:
            members = generator.sample(current["nodes"], k=min(2, len(current["nodes"])))
            fields = {
                "conversationId": conversation_id,
                "clusterName": f"c{_step}",
                "nodeIds": [str(row["id"]) for row in members],
            }
            if cluster is not None and generator.random() < 0.5:
                fields["parentClusterId"] = str(cluster["id"])
            name, body = "createCluster", await gql(documents.CREATE_CLUSTER, input=fields)
        elif operation == "cluster_parent":
            target = pick(current["clusters"])
            name, body = (
                "updateCluster",
                await gql(
                    documents.UPDATE_CLUSTER,
                    input={
                        "id": str(cluster["id"]),
                        "expectedUpdatedAt": cluster["updated_at"].isoformat(),
                        "parentClusterId": str(target["id"]) if generator.random() < 0.8 else None,
                    },
                ),
            )
        elif operation == "membership":
            name, body = (
                "changeClusterMembership",
                await gql(
                    documents.CHANGE_MEMBERSHIP,
                    clusterId=str(cluster["id"]),
                    add=[str(node["id"])],
                    remove=[
                        str(item) for item in (cluster["node_ids"] or [])[:1] if item != node["id"]
                    ],
                ),
            )
        elif operation == "uncluster":
            name, body = "deleteCluster", await gql(documents.DELETE_CLUSTER, id=str(cluster["id"]))
        elif operation == "append":
            size = generator.randint(1, 4)
            start = sequence - generator.randint(0, 2)  # overlaps: a retried batch
            name, body = (
                "appendUtterances",
                await gql(
                    documents.APPEND_UTTERANCES,
                    conversationId=conversation_id,
                    utterances=[
                        {
                            "sequenceNumber": start + index,
                            "text": "word " * generator.randint(1, 5),
                            "speakerId": "s",
                        }
                        for index in range(size)
                    ],
                ),
            )
            sequence = max(sequence, start + size)
        else:
            utterance = pick(current["utterances"])
            name, body = (
                "updateUtterance",
                await gql(
                    documents.UPDATE_UTTERANCE,
                    input={
                        "id": str(utterance["id"]),
                        "expectedUpdatedAt": utterance["updated_at"].isoformat(),
                        "text": "changed " * generator.randint(1, 4),
                        "speakerId": generator.choice(["a", "b"]),
                    },
                ),
            )
        assert "errors" not in body, (operation, body)
        typename = body["data"][name]["__typename"]
        outcomes[f"{name}:{typename}"] = outcomes.get(f"{name}:{typename}", 0) + 1
        assert typename != "ConflictError", (operation, body)  # every edit sent a fresh version

    elapsed = time.perf_counter() - started
    print(f"300 mutations (plus 300 state reads) in {elapsed:.2f} s")
    print("outcomes:", dict(sorted(outcomes.items())))
    assert sum(count for key, count in outcomes.items() if "Payload" in key) > 150
    assert await violations(database, [conversation_id]) == []


async def test_the_audit_can_fail(gql, database) -> None:
    """The invariant audit above is not vacuous: a child missing from its parent's array, a
    wrong counter and an utterance whose node does not list it are all reported."""
    conversation = await new_conversation(gql)
    (utterance,) = await append(gql, conversation["id"], "said")
    parent = await new_node(gql, conversation["id"], "parent", utteranceIds=[utterance["id"]])
    child = await new_node(gql, conversation["id"], "child", parentId=parent["id"])
    assert await violations(database, [conversation["id"]]) == []
    await database.execute(
        "UPDATE nodes SET children_ids = '{}', utterance_ids = '{}' WHERE id = $1",
        uuid.UUID(parent["id"]),
    )
    await database.execute(
        "UPDATE conversations SET total_nodes = 7 WHERE id = $1", uuid.UUID(conversation["id"])
    )
    problems = await violations(database, [conversation["id"]])
    assert any(
        child["id"] in problem and "missing from its parent" in problem for problem in problems
    )
    assert any("total_nodes is 7" in problem for problem in problems)
    assert any(
        utterance["id"] in problem and "utterance_ids lacks it" in problem for problem in problems
    )
    await database.execute(
        "UPDATE utterances SET node_id = NULL WHERE id = $1", uuid.UUID(utterance["id"])
    )
    await database.execute(
        "UPDATE nodes SET utterance_ids = $2 WHERE id = $1",
        uuid.UUID(child["id"]),
        [uuid.UUID(utterance["id"])],
    )
    problems = await violations(database, [conversation["id"]])
    assert any(
        child["id"] in problem and "whose node_id is None" in problem for problem in problems
    )


async def test_concurrent_writers_keep_the_invariants(
    live_server_url, gql, database, database_url
) -> None:
    """Five clients edit one conversation at the same time (retried appends included): no
    deadlock, no error, no duplicate utterance, and every rule holds afterwards."""
    conversation = await new_conversation(gql)
    conversation_id = conversation["id"]
    seeds = [await new_node(gql, conversation_id, f"seed {index}") for index in range(5)]
    attempted: set[int] = set()

    async def writer(number: int) -> list[str]:
        generator = random.Random(number)
        kinds = []
        reader = await asyncpg.connect(asyncpg_dsn(database_url))
        async with httpx.AsyncClient(base_url=live_server_url, timeout=60) as client:

            async def call(query: str, name: str, **variables: Any) -> dict[str, Any]:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"][name]

            for step in range(25):
                ids = [
                    str(row["id"])
                    for row in await reader.fetch(
                        "SELECT id FROM nodes WHERE conversation_id = $1",
                        uuid.UUID(conversation_id),
                    )
                ] or [seeds[0]["id"]]
                choice = generator.random()
                if choice < 0.3:
                    result = await call(
                        documents.CREATE_NODE,
                        "createNode",
                        input={
                            "conversationId": conversation_id,
                            "nodeName": f"w{number}-{step}",
                            "summary": "s",
                            "parentId": generator.choice(ids),
                            "predecessorId": generator.choice(ids),
                        },
                    )
                elif choice < 0.45:
                    result = await call(
                        documents.DELETE_NODE, "deleteNode", id=generator.choice(ids)
                    )
                elif choice < 0.6:
                    result = await call(
                        documents.MERGE_NODES,
                        "mergeNodes",
                        input={
                            "keptNodeId": generator.choice(ids),
                            "absorbedNodeId": generator.choice(ids),
                        },
                    )
                elif choice < 0.8:
                    attempted.update({step * 2, step * 2 + 1})
                    result = await call(
                        documents.APPEND_UTTERANCES,
                        "appendUtterances",
                        conversationId=conversation_id,
                        utterances=[
                            {
                                "sequenceNumber": step * 2 + offset,
                                "text": "same batch",
                                "speakerId": "s",
                            }
                            for offset in range(2)
                        ],
                    )
                else:
                    result = await call(
                        documents.MOVE_NODES,
                        "moveNodes",
                        moves=[
                            {"id": item, "canvasX": step}
                            for item in set(generator.sample(ids, k=min(3, len(ids))))
                        ],
                    )
                kinds.append(result["__typename"])
        await reader.close()
        return kinds

    results = await asyncio.gather(*(writer(number) for number in range(5)))
    kinds = [kind for batch in results for kind in batch]
    assert "ConflictError" not in kinds
    assert sum(kind.endswith("Payload") for kind in kinds) > 60
    stored = await database.fetchval(
        "SELECT array_agg(sequence_number ORDER BY sequence_number) FROM utterances "
        "WHERE conversation_id = $1",
        uuid.UUID(conversation_id),
    )
    assert stored == sorted(attempted)
    assert await violations(database, [conversation_id]) == []
