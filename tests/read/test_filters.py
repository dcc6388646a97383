"""The canvas arguments select exactly the rows the equivalent SQL selects."""

from __future__ import annotations

import pytest

NODES = """
query ($id: ID!, $level: [Int!], $zoom: Int, $type: [String!], $bookmark: Boolean,
       $tangent: Boolean, $crux: Boolean, $progress: Boolean, $speaker: String,
       $from: Float, $to: Float) {
  conversation(id: $id) {
    nodes(first: 1000, level: $level, zoomLevelVisible: $zoom, nodeType: $type,
          isBookmark: $bookmark, isTangent: $tangent, isCrux: $crux,
          isContextualProgress: $progress, primarySpeaker: $speaker,
          timeFrom: $from, timeTo: $to) {
      totalCount nodes { id }
    }
  }
}
"""

NODE_CASES = [
    ({"level": [2]}, "level = 2"),
    ({"level": [1, 5]}, "level IN (1, 5)"),
    ({"zoom": 3}, "zoom_level_visible @> ARRAY[3]"),
    ({"bookmark": True}, "is_bookmark"),
    ({"tangent": True}, "is_tangent"),
    ({"crux": True}, "is_crux"),
    ({"progress": False}, "NOT coalesce(is_contextual_progress, false)"),
    ({"speaker": "spk_1"}, "speaker_info ->> 'primary_speaker' = 'spk_1'"),
    ({"from": 600.0, "to": 1200.0}, "coalesce(timestamp_end, timestamp_start) >= 600"
     " AND timestamp_start <= 1200"),
    ({"level": [3], "bookmark": False, "speaker": "spk_2"},
     "level = 3 AND NOT coalesce(is_bookmark, false)"
     " AND speaker_info ->> 'primary_speaker' = 'spk_2'"),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "condition"), NODE_CASES)
async def test_node_filters(graphql, conversations, db, arguments, condition):
    rows = await db.fetch(
        f"SELECT id FROM nodes WHERE conversation_id = $1 AND {condition}", conversations.large
    )
    response = await graphql(NODES, id=str(conversations.large), **arguments)
    assert not response.errors, response.errors
    nodes = response.data["conversation"]["nodes"]
    assert sorted(node["id"] for node in nodes["nodes"]) == sorted(str(row["id"]) for row in rows)
    assert nodes["totalCount"] == len(rows)
    assert 0 < len(rows) < 1000, "the case must select some but not all nodes"


NODE_TYPE = """
query ($id: ID!, $type: [String!]) {
  conversation(id: $id) { nodes(first: 1000, nodeType: $type) { totalCount } }
}
"""


async def test_node_type_filter(graphql, conversations, db):
    node_type = await db.fetchval(
        "SELECT node_type FROM nodes WHERE conversation_id = $1 LIMIT 1", conversations.large
    )
    expected = await db.fetchval(
        "SELECT count(*) FROM nodes WHERE conversation_id = $1 AND node_type = $2",
        conversations.large,
        node_type,
    )
    response = await graphql(NODE_TYPE, id=str(conversations.large), type=[node_type])
    assert response.data["conversation"]["nodes"]["totalCount"] == expected > 0
    none = await graphql(NODE_TYPE, id=str(conversations.large), type=["no-such-type"])
    assert none.data["conversation"]["nodes"]["totalCount"] == 0


RELATIONSHIPS = """
query ($id: ID!, $types: [String!], $min: Float) {
  conversation(id: $id) {
    relationships(first: 1000, relationshipType: $types, minStrength: $min) {
      totalCount nodes { id }
    }
    nodes(first: 1000) { nodes {
      id
      outgoing(relationshipType: $types, minStrength: $min) { id fromNodeId }
      incoming(relationshipType: $types, minStrength: $min) { id toNodeId }
      out: relationships(direction: OUTGOING, relationshipType: $types, minStrength: $min) { id }
      in: relationships(direction: INCOMING, relationshipType: $types, minStrength: $min) { id }
    } }
  }
}
"""


@pytest.mark.parametrize(
    ("types", "minimum"), [(["supports", "contradicts"], None), (None, 0.7), (["elaborates"], 0.5)]
)
async def test_relationship_filters_and_directions(graphql, conversations, db, types, minimum):
    conversation_id = conversations.small
    rows = await db.fetch(
        "SELECT id, from_node_id, to_node_id FROM relationships WHERE conversation_id = $1"
        " AND ($2::text[] IS NULL OR relationship_type = ANY($2))"
        " AND strength >= coalesce($3::float8, 0)",
        conversation_id,
        types,
        minimum,
    )
    response = await graphql(RELATIONSHIPS, id=str(conversation_id), types=types, min=minimum)
    assert not response.errors, response.errors
    data = response.data["conversation"]
    expected = sorted(str(row["id"]) for row in rows)
    assert sorted(item["id"] for item in data["relationships"]["nodes"]) == expected
    assert data["relationships"]["totalCount"] == len(rows)
    outgoing, incoming = [], []
    for node in data["nodes"]["nodes"]:
        assert all(item["fromNodeId"] == node["id"] for item in node["outgoing"])
        assert all(item["toNodeId"] == node["id"] for item in node["incoming"])
        assert node["out"] == [{"id": item["id"]} for item in node["outgoing"]]
        assert node["in"] == [{"id": item["id"]} for item in node["incoming"]]
        outgoing += [item["id"] for item in node["outgoing"]]
        incoming += [item["id"] for item in node["incoming"]]
    assert sorted(outgoing) == sorted(incoming) == expected


UTTERANCES = """
query ($id: ID!, $speakers: [String!], $from: Float, $to: Float) {
  conversation(id: $id) {
    utterances(first: 1000, speakerId: $speakers, timeFrom: $from, timeTo: $to) {
      totalCount nodes { id speakerId timestampStart }
    }
  }
}
"""


@pytest.mark.parametrize(
    "arguments",
    [
        {"speakers": ["spk_1"]},
        {"from": 30.0, "to": 90.0},
        {"speakers": ["spk_2", "spk_3"], "to": 60.0},
    ],
)
async def test_utterance_filters(graphql, conversations, db, arguments):
    conversation_id = conversations.small
    rows = await db.fetch(
        "SELECT id FROM utterances WHERE conversation_id = $1"
        " AND ($2::text[] IS NULL OR speaker_id = ANY($2))"
        " AND ($3::float8 IS NULL OR timestamp_start >= $3)"
        " AND ($4::float8 IS NULL OR timestamp_start <= $4) ORDER BY sequence_number",
        conversation_id,
        arguments.get("speakers"),
        arguments.get("from"),
        arguments.get("to"),
    )
    response = await graphql(UTTERANCES, id=str(conversation_id), **arguments)
    assert not response.errors, response.errors
    utterances = response.data["conversation"]["utterances"]
    assert [item["id"] for item in utterances["nodes"]] == [str(row["id"]) for row in rows]
    assert utterances["totalCount"] == len(rows) > 0


EDITS = """
query ($id: ID!, $targets: [TargetType!], $kinds: [EditType!]) {
  conversation(id: $id) {
    edits(first: 1000, targetType: $targets, editType: $kinds) {
      totalCount nodes { id targetType editType }
    }
  }
}
"""

EDIT_CASES = [
    ({"targets": ["NODE"]}, "target_type = 'node'"),
    ({"kinds": ["CORRECTION", "MERGE"]}, "edit_type IN ('correction', 'merge')"),
    ({"targets": ["NODE", "RELATIONSHIP"], "kinds": ["ADDITION"]},
     "target_type IN ('node', 'relationship') AND edit_type = 'addition'"),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "condition"), EDIT_CASES)
async def test_edit_filters_take_the_enums(graphql, conversations, db, arguments, condition):
    conversation_id = conversations.large
    response = await graphql(EDITS, id=str(conversation_id), **arguments)
    assert not response.errors, response.errors
    edits = response.data["conversation"]["edits"]
    expected = await db.fetch(
        f"SELECT id FROM edits_log WHERE conversation_id = $1 AND {condition}", conversation_id
    )
    total = await db.fetchval(
        "SELECT count(*) FROM edits_log WHERE conversation_id = $1", conversation_id
    )
    assert 0 < len(expected) < total
    assert edits["totalCount"] == len(expected)
    assert {item["id"] for item in edits["nodes"]} == {str(row["id"]) for row in expected}
    for item in edits["nodes"]:
        assert item["targetType"] in arguments.get("targets", [item["targetType"]])
        assert item["editType"] in arguments.get("kinds", [item["editType"]])


async def test_a_raw_value_is_not_an_edit_filter(graphql, conversations):
    response = await graphql(EDITS, id=str(conversations.large), targets=["node"])
    assert response.status in (200, 400)
    assert response.errors and "TargetType" in response.errors[0]["message"]
