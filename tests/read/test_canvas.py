"""The canvas query returns a 1,000-node, 3,000-relationship conversation exactly as stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.read import documents


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def test_canvas_matches_the_database(graphql, conversations, db):
    conversation_id = conversations.large
    response = await graphql(documents.CANVAS, id=str(conversation_id))
    assert response.status == 200 and not response.errors, response.errors
    conversation = response.data["conversation"]
    assert conversation["id"] == str(conversation_id)
    assert conversation["conversationName"] == "Large"

    node_rows = await db.fetch(
        "SELECT * FROM nodes WHERE conversation_id = $1 ORDER BY timestamp_start, id",
        conversation_id,
    )
    relationship_rows = await db.fetch(
        "SELECT * FROM relationships WHERE conversation_id = $1", conversation_id
    )
    assert len(node_rows) == 1000
    assert len(relationship_rows) == 3000, len(relationship_rows)

    expected_outgoing: dict[uuid.UUID, list[dict[str, Any]]] = {row["id"]: [] for row in node_rows}
    for row in sorted(relationship_rows, key=lambda row: (row["created_at"], row["id"])):
        expected_outgoing[row["from_node_id"]].append(
            {
                "id": str(row["id"]),
                "toNodeId": str(row["to_node_id"]),
                "relationshipType": row["relationship_type"],
                "strength": _float(row["strength"]),
                "explanation": row["explanation"],
            }
        )
    expected = []
    for row in node_rows:
        speaker = json.loads(row["speaker_info"]) if row["speaker_info"] else None
        expected.append(
            {
                "id": str(row["id"]),
                "nodeName": row["node_name"],
                "summary": row["summary"],
                "level": row["level"],
                "parentId": None if row["parent_id"] is None else str(row["parent_id"]),
                "canvasX": row["canvas_x"],
                "canvasY": row["canvas_y"],
                "canvasWidth": row["canvas_width"],
                "canvasHeight": row["canvas_height"],
                "isBookmark": row["is_bookmark"],
                "isTangent": row["is_tangent"],
                "isCrux": row["is_crux"],
                "zoomLevelVisible": row["zoom_level_visible"],
                "timestampStart": _float(row["timestamp_start"]),
                "timestampEnd": _float(row["timestamp_end"]),
                "speakerInfo": None
                if speaker is None
                else {
                    "primarySpeaker": speaker.get("primary_speaker"),
                    "contributionPercentage": _float(speaker.get("contribution_percentage")),
                },
                "outgoing": expected_outgoing[row["id"]],
            }
        )
    nodes = conversation["nodes"]
    assert nodes["totalCount"] == 1000
    assert nodes["nodes"] == expected
    assert sum(len(node["outgoing"]) for node in nodes["nodes"]) == len(relationship_rows)
