"""Every traversal returns what the rows say, compared with the database."""

from __future__ import annotations

import json
import uuid

import pytest

TRAVERSE_NODES = """
query ($id: ID!) {
  conversation(id: $id) {
    __typename
    rootNodes { id parentId }
    nodes(first: 1000) { nodes {
      __typename id parentId predecessorId successorId childrenIds utteranceIds
      conversation { id }
      parent { id } predecessor { id } successor { id }
      children { id }
      ancestors { id level }
      clusters { id }
      utterances { id sequenceNumber }
      edits { id targetId }
      incoming { id toNodeId }
      outgoing { id fromNodeId }
      relationships(direction: BOTH) { id }
    } }
  }
}
"""

TRAVERSE_OTHERS = """
query ($id: ID!) {
  conversation(id: $id) {
    __typename
    relationships(first: 1000) { nodes {
      __typename id fromNodeId toNodeId supportingUtteranceIds
      conversation { id } fromNode { id } toNode { id } supportingUtterances { id }
    } }
    clusters { __typename id parentClusterId childClusterIds nodeIds
      conversation { id } parent { id } children { id } nodes { id } }
    utterances(first: 1000) { nodes { __typename id nodeId conversation { id } node { id } } }
    edits(first: 1000) { nodes {
      __typename id targetType targetId conversation { id }
      target {
        __typename
        ... on ThreadNode { id } ... on Relationship { id }
        ... on Cluster { id } ... on Utterance { id }
      }
    } }
    apiCalls(first: 1000) { nodes { __typename id conversation { id } } }
  }
}
"""


def ids(items):
    return [item["id"] for item in items]


async def test_node_traversals(graphql, conversations, db):
    conversation_id = conversations.large
    response = await graphql(TRAVERSE_NODES, id=str(conversation_id))
    assert not response.errors, response.errors
    data = response.data["conversation"]
    rows = {
        row["id"]: row
        for row in await db.fetch("SELECT * FROM nodes WHERE conversation_id = $1", conversation_id)
    }
    text = {str(key): row for key, row in rows.items()}

    assert sorted(ids(data["rootNodes"])) == sorted(
        str(key) for key, row in rows.items() if row["parent_id"] is None
    )
    relationships = await db.fetch(
        "SELECT * FROM relationships WHERE conversation_id = $1", conversation_id
    )
    clusters = await db.fetch("SELECT * FROM clusters WHERE conversation_id = $1", conversation_id)
    utterances = await db.fetch(
        "SELECT id, node_id, sequence_number FROM utterances WHERE conversation_id = $1"
        " ORDER BY sequence_number",
        conversation_id,
    )
    edits = await db.fetch(
        "SELECT id, target_id FROM edits_log WHERE conversation_id = $1 AND target_type = 'node'",
        conversation_id,
    )
    clusters_of: dict[uuid.UUID, list[str]] = {key: [] for key in rows}
    for cluster in clusters:
        for member in cluster["node_ids"]:
            clusters_of[member].append(str(cluster["id"]))
    utterances_of: dict[uuid.UUID, list[str]] = {key: [] for key in rows}
    for utterance in utterances:
        if utterance["node_id"] is not None:
            utterances_of[utterance["node_id"]].append(str(utterance["id"]))
    edits_of: dict[uuid.UUID, list[str]] = {key: [] for key in rows}
    for edit in edits:
        if edit["target_id"] in edits_of:
            edits_of[edit["target_id"]].append(str(edit["id"]))
    outgoing_of: dict[uuid.UUID, list[str]] = {key: [] for key in rows}
    incoming_of: dict[uuid.UUID, list[str]] = {key: [] for key in rows}
    for relationship in relationships:
        outgoing_of[relationship["from_node_id"]].append(str(relationship["id"]))
        incoming_of[relationship["to_node_id"]].append(str(relationship["id"]))
    deepest = 0
    for node in data["nodes"]["nodes"]:
        row = text[node["id"]]
        assert node["__typename"] == "ThreadNode"
        assert node["conversation"] == {"id": str(conversation_id)}
        for field, column in (
            ("parent", "parent_id"),
            ("predecessor", "predecessor_id"),
            ("successor", "successor_id"),
        ):
            expected = None if row[column] is None else {"id": str(row[column])}
            assert node[field] == expected
        assert ids(node["children"]) == [str(child) for child in row["children_ids"] or []]
        assert node["childrenIds"] == [str(child) for child in row["children_ids"] or []]

        chain, current = [], row
        while current["parent_id"] is not None:
            current = rows[current["parent_id"]]
            chain.append({"id": str(current["id"]), "level": current["level"]})
        assert node["ancestors"] == chain
        deepest = max(deepest, len(chain))

        assert sorted(ids(node["clusters"])) == sorted(clusters_of[row["id"]])
        assert ids(node["utterances"]) == utterances_of[row["id"]]
        assert sorted(ids(node["edits"])) == sorted(edits_of[row["id"]])
        assert sorted(ids(node["outgoing"])) == sorted(outgoing_of[row["id"]])
        assert sorted(ids(node["incoming"])) == sorted(incoming_of[row["id"]])
        assert ids(node["relationships"]) == ids(node["outgoing"]) + ids(node["incoming"])
    assert deepest == 4  # five levels
    assert any(node["clusters"] for node in data["nodes"]["nodes"])
    assert any(node["edits"] for node in data["nodes"]["nodes"])


async def test_relationship_cluster_utterance_edit_and_api_call_traversals(
    graphql, conversations, db
):
    conversation_id = conversations.large
    response = await graphql(TRAVERSE_OTHERS, id=str(conversation_id))
    assert not response.errors, response.errors
    data = response.data["conversation"]
    owner = {"id": str(conversation_id)}

    for relationship in data["relationships"]["nodes"]:
        assert relationship["conversation"] == owner
        assert relationship["fromNode"] == {"id": relationship["fromNodeId"]}
        assert relationship["toNode"] == {"id": relationship["toNodeId"]}
        assert ids(relationship["supportingUtterances"]) == (
            relationship["supportingUtteranceIds"] or []
        )
    assert any(r["supportingUtterances"] for r in data["relationships"]["nodes"])

    clusters = {cluster["id"]: cluster for cluster in data["clusters"]}
    assert len(clusters) == await db.fetchval(
        "SELECT count(*) FROM clusters WHERE conversation_id = $1", conversation_id
    )
    for cluster in data["clusters"]:
        assert cluster["conversation"] == owner
        parent = cluster["parentClusterId"]
        assert cluster["parent"] == (None if parent is None else {"id": parent})
        assert ids(cluster["children"]) == (cluster["childClusterIds"] or [])
        assert ids(cluster["nodes"]) == cluster["nodeIds"]
    assert any(cluster["children"] for cluster in data["clusters"])  # nested clusters

    for utterance in data["utterances"]["nodes"]:
        assert utterance["conversation"] == owner
        node = utterance["nodeId"]
        assert utterance["node"] == (None if node is None else {"id": node})

    kinds = {
        "NODE": "ThreadNode",
        "RELATIONSHIP": "Relationship",
        "CLUSTER": "Cluster",
        "UTTERANCE": "Utterance",
        "SPEAKER_ATTRIBUTION": "Utterance",
    }
    seen = set()
    existing = {
        str(row["id"])
        for table in ("nodes", "relationships", "clusters", "utterances")
        for row in await db.fetch(
            f"SELECT id FROM {table} WHERE conversation_id = $1", conversation_id
        )
    }
    for edit in data["edits"]["nodes"]:
        assert edit["__typename"] == "Edit"
        assert edit["conversation"] == owner
        if edit["targetId"] in existing and edit["targetType"] in kinds:
            target_type = edit["targetType"]
            assert edit["target"] == {"__typename": kinds[target_type], "id": edit["targetId"]}
            seen.add(edit["target"]["__typename"])
        else:
            assert edit["target"] is None
    assert len(seen) >= 2

    assert data["apiCalls"]["nodes"]
    for call in data["apiCalls"]["nodes"]:
        assert call["conversation"] == owner


TYPED = """
query ($id: ID!) {
  conversation(id: $id) {
    conversationType visibility participantCount
    participants { id name role email avatarUrl platformId metadata }
    goals { goalType description targetMetric targetValue weight }
    goalProgress sourceMetadata
    nodes(first: 1000) { nodes {
      id dialogueType chunkIds claimIds keyPoints
      speakerInfo { primarySpeaker speakerName contributionPercentage
                    secondarySpeakers { speakerId percentage } }
      speakerTransitions { fromSpeaker toSpeaker utteranceIndex transitionType contextSnippet }
    } }
    edits(first: 5) { nodes { editType targetType } }
  }
}
"""


async def test_typed_json_shapes_and_enums(graphql, conversations, db):
    conversation_id = conversations.large
    response = await graphql(TYPED, id=str(conversation_id))
    assert not response.errors, response.errors
    data = response.data["conversation"]
    row = await db.fetchrow("SELECT * FROM conversations WHERE id = $1", conversation_id)
    assert data["conversationType"] == row["conversation_type"].upper()
    assert data["visibility"] == "PRIVATE"
    participants = [json.loads(item) for item in row["participants"]]
    assert data["participants"] == [
        {
            "id": item.get("id"),
            "name": item.get("name"),
            "role": item.get("role"),
            "email": item.get("email"),
            "avatarUrl": item.get("avatar_url"),
            "platformId": item.get("platform_id"),
            "metadata": item.get("metadata"),
        }
        for item in participants
    ]
    goals = [json.loads(item) for item in row["goals"]]
    assert [goal["goalType"] for goal in data["goals"]] == [goal["goal_type"] for goal in goals]
    assert data["goalProgress"] == json.loads(row["goal_progress"])

    nodes = {
        str(row["id"]): row
        for row in await db.fetch("SELECT * FROM nodes WHERE conversation_id = $1", conversation_id)
    }
    transitions = 0
    for node in data["nodes"]["nodes"]:
        stored = nodes[node["id"]]
        assert node["dialogueType"] == (
            None
            if stored["dialogue_type"] is None
            else stored["dialogue_type"].upper().replace("-", "_")
        )
        assert node["chunkIds"] == [str(value) for value in stored["chunk_ids"]]
        info = json.loads(stored["speaker_info"])
        assert node["speakerInfo"]["primarySpeaker"] == info["primary_speaker"]
        assert node["speakerInfo"]["secondarySpeakers"] == (
            None
            if info.get("secondary_speakers") is None
            else [
                {"speakerId": item["speaker_id"], "percentage": float(item["percentage"])}
                for item in info["secondary_speakers"]
            ]
        )
        stored_transitions = [json.loads(item) for item in stored["speaker_transitions"] or []]
        assert [t["transitionType"] for t in node["speakerTransitions"] or []] == [
            t["transition_type"] for t in stored_transitions
        ]
        transitions += len(stored_transitions)
    assert transitions
    edit_types = {"CORRECTION", "ADDITION", "DELETION", "MERGE", "SPLIT"}
    assert all(edit["editType"] in edit_types for edit in data["edits"]["nodes"])


VISIBLE = """
query ($conversation: ID!, $node: ID!) {
  conversation(id: $conversation) { id }
  node(id: $node) { id }
  nodes(ids: [$conversation, $node]) { id }
  conversations(first: 1000) { nodes { id } }
}
"""


async def test_another_users_private_conversation_is_invisible(graphql, conversations, db):
    node_id = await db.fetchval(
        "SELECT id FROM nodes WHERE conversation_id = $1 LIMIT 1", conversations.foreign
    )
    response = await graphql(VISIBLE, conversation=str(conversations.foreign), node=str(node_id))
    assert not response.errors, response.errors
    assert response.data["conversation"] is None
    assert response.data["node"] is None
    assert response.data["nodes"] == [None, None]
    assert str(conversations.foreign) not in ids(response.data["conversations"]["nodes"])
    assert str(conversations.small) in ids(response.data["conversations"]["nodes"])


async def test_refetch_returns_each_kind(graphql, conversations, db):
    for table, typename in (
        ("conversations", "Conversation"),
        ("nodes", "ThreadNode"),
        ("relationships", "Relationship"),
        ("clusters", "Cluster"),
        ("utterances", "Utterance"),
        ("edits_log", "Edit"),
        ("api_calls_log", "ApiCall"),
    ):
        column = "id" if table == "conversations" else "conversation_id"
        object_id = await db.fetchval(
            f"SELECT id FROM {table} WHERE {column} = $1 LIMIT 1", conversations.small
        )
        response = await graphql(
            "query ($id: ID!) { node(id: $id) { __typename id } }", id=str(object_id)
        )
        assert response.data == {"node": {"__typename": typename, "id": str(object_id)}}
    missing = await graphql("query ($id: ID!) { node(id: $id) { id } }", id=str(uuid.uuid4()))
    assert missing.data == {"node": None} and not missing.errors


EDITS_OF_ROWS = """
query ($id: ID!) {
  conversation(id: $id) {
    relationships(first: 1000) { nodes { id edits { id targetId targetType } } }
    clusters { id edits { id targetId targetType } }
  }
}
"""


@pytest.mark.parametrize("served", ["rendered", "resolved"])
async def test_relationships_and_clusters_list_their_edits_newest_first(
    graphql, graphql_resolved, conversations, db, served
):
    conversation_id = conversations.large
    post = graphql if served == "rendered" else graphql_resolved
    response = await post(EDITS_OF_ROWS, id=str(conversation_id))
    assert not response.errors, response.errors
    data = response.data["conversation"]
    for field, target_type, items in (
        ("relationships", "relationship", data["relationships"]["nodes"]),
        ("clusters", "cluster", data["clusters"]),
    ):
        rows = await db.fetch(
            "SELECT id, target_id FROM edits_log WHERE conversation_id = $1"
            " AND target_type = $2 ORDER BY created_at DESC, id DESC",
            conversation_id,
            target_type,
        )
        expected: dict[str, list[str]] = {item["id"]: [] for item in items}
        for row in rows:
            if str(row["target_id"]) in expected:
                expected[str(row["target_id"])].append(str(row["id"]))
        assert any(expected.values()), f"no {field} edits in the demo data"
        assert {item["id"]: ids(item["edits"]) for item in items} == expected
        assert {edit["targetType"] for item in items for edit in item["edits"]} == {
            target_type.upper()
        }
