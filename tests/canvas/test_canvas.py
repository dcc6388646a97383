"""JSON Canvas export (`conversationCanvas`, `GET /conversations/<id>/canvas`) and `applyCanvas`.

Every exported document is validated with openjsoncanvas, a third-party implementation of the
JSON Canvas 1.0 spec (tests/canvas/conftest.py), never with the server's own reader.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pydantic
import pytest

from graph.services.canvas import DEFAULT_RELATIONSHIP_TYPE, edge_color
from tests.canvas.conftest import Conversations, token, validate_canvas

CANVAS = """
query Canvas($id: ID!, $level: [Int!], $zoom: Int) {
  conversationCanvas(id: $id, level: $level, zoomLevelVisible: $zoom)
}"""
APPLY = """
mutation Apply($conversationId: ID!, $canvas: JSON!, $base: JSON) {
  applyCanvas(conversationId: $conversationId, canvas: $canvas, base: $base,
              comment: "in Obsidian") {
    __typename
    ... on ApplyCanvasPayload {
      movedNodeIds correctedNodeIds updatedRelationshipIds deletedRelationshipIds
      createdRelationships { __typename id fromNodeId toNodeId relationshipType isBidirectional }
    }
    ... on UserError { message code }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}"""


async def export(graphql: Any, conversation_id: uuid.UUID, **filters: Any) -> dict[str, Any]:
    response = await graphql(CANVAS, id=str(conversation_id), **filters)
    assert response.status == 200 and not response.errors, response.errors
    document: dict[str, Any] = response.data["conversationCanvas"]
    validate_canvas(document)
    return document


def cards(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in document["nodes"] if node["type"] == "text"}


async def snapshot(db: asyncpg.Connection, conversation_id: uuid.UUID) -> Any:
    """Everything applyCanvas may change, to show that a refused canvas changed nothing."""
    return (
        await db.fetch(
            "SELECT id, node_name, summary, canvas_x, canvas_y, canvas_width, canvas_height,"
            " updated_at FROM nodes WHERE conversation_id = $1 ORDER BY id",
            conversation_id,
        ),
        await db.fetch(
            "SELECT id, relationship_type, is_bidirectional, updated_at FROM relationships"
            " WHERE conversation_id = $1 ORDER BY id",
            conversation_id,
        ),
        await db.fetchval(
            "SELECT count(*) FROM edits_log WHERE conversation_id = $1", conversation_id
        ),
    )


# -- The validator is a real one ------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        {
            "nodes": [
                {"id": "a", "type": "text", "x": 1.5, "y": 0, "width": 9, "height": 9, "text": "t"}
            ]
        },
        {"nodes": [{"id": "a", "type": "text", "x": 0, "y": 0, "width": 9, "height": 9}]},
        {"nodes": [{"type": "group", "x": 0, "y": 0, "width": 9, "height": 9}]},
        {"edges": [{"id": "e", "fromNode": "a", "toNode": "b", "fromSide": "middle"}]},
        {"edges": [{"id": "e", "fromNode": "a", "toNode": "b", "toEnd": "triangle"}]},
        {"edges": [{"id": "e", "fromNode": "a"}]},
        {"nodes": "none"},
    ],
)
def test_the_validator_refuses_what_the_spec_forbids(broken: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        validate_canvas(broken)


# -- Export ---------------------------------------------------------------------------------------


async def test_export_is_the_graph_as_stored(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    document = await export(graphql, conversation_id)
    node_rows = await db.fetch("SELECT * FROM nodes WHERE conversation_id = $1", conversation_id)
    relationship_rows = await db.fetch(
        "SELECT * FROM relationships WHERE conversation_id = $1", conversation_id
    )
    cluster_rows = await db.fetch(
        "SELECT * FROM clusters WHERE conversation_id = $1", conversation_id
    )
    exported = cards(document)
    assert set(exported) == {str(row["id"]) for row in node_rows}
    for row in node_rows:
        card = exported[str(row["id"])]
        assert (card["x"], card["y"], card["width"], card["height"]) == (
            row["canvas_x"],
            row["canvas_y"],
            row["canvas_width"],
            row["canvas_height"],
        )
        assert card["text"] == f"# {row['node_name']}\n\n{row['summary']}"

    groups = {node["id"]: node for node in document["nodes"] if node["type"] == "group"}
    assert cluster_rows and set(groups) == {
        str(row["id"]) for row in cluster_rows if row["node_ids"]
    }
    for row in cluster_rows:
        group = groups[str(row["id"])]
        assert group["label"] == row["cluster_name"]
        for member in map(str, row["node_ids"]):
            card = exported[member]
            assert (
                group["x"] <= card["x"] and card["x"] + card["width"] <= group["x"] + group["width"]
            )
            assert (
                group["y"] <= card["y"]
                and card["y"] + card["height"] <= group["y"] + group["height"]
            )
    order = [node["type"] for node in document["nodes"]]
    assert order == sorted(order, key=lambda kind: kind != "group"), "groups lie under the cards"

    edges = {edge["id"]: edge for edge in document["edges"]}
    assert set(edges) == {str(row["id"]) for row in relationship_rows}
    for row in relationship_rows:
        edge = edges[str(row["id"])]
        assert (edge["fromNode"], edge["toNode"]) == (
            str(row["from_node_id"]),
            str(row["to_node_id"]),
        )
        assert edge["label"] == row["relationship_type"]
        assert edge["color"] == edge_color(row["relationship_type"]) and edge["color"] in "123456"
        assert edge["toEnd"] == "arrow"
        assert edge["fromEnd"] == ("arrow" if row["is_bidirectional"] else "none")
    assert len({edge["color"] for edge in edges.values()}) > 1, "colour by type"


async def test_an_export_is_four_statements_whatever_its_size(
    graphql: Any, canvas_conversations: Conversations
) -> None:
    for conversation_id in (canvas_conversations.main, canvas_conversations.other):
        response = await graphql(CANVAS, id=str(conversation_id))
        assert response.statements == 4, "visibility, nodes, relationships, clusters"
    hidden = await graphql(CANVAS, id=str(canvas_conversations.foreign))
    assert hidden.data == {"conversationCanvas": None} and hidden.statements == 1


async def test_two_exports_of_an_unchanged_graph_are_identical(
    graphql: Any, http: httpx.AsyncClient, canvas_conversations: Conversations
) -> None:
    first = await export(graphql, canvas_conversations.main)
    second = await export(graphql, canvas_conversations.main)
    assert json.dumps(first) == json.dumps(second)
    files = [
        (await http.get(f"/conversations/{canvas_conversations.main}/canvas")).content
        for _ in range(2)
    ]
    assert files[0] == files[1]


async def test_level_and_zoom_filters(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    top = await export(graphql, conversation_id, level=[1, 2])
    expected = {
        str(row["id"])
        for row in await db.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1 AND level IN (1, 2)", conversation_id
        )
    }
    assert expected and set(cards(top)) == expected
    kept = set(cards(top))
    assert all(edge["fromNode"] in kept and edge["toNode"] in kept for edge in top["edges"])
    zoomed = await export(graphql, conversation_id, zoom=3)
    expected_zoom = {
        str(row["id"])
        for row in await db.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1 AND 3 = ANY(zoom_level_visible)",
            conversation_id,
        )
    }
    assert expected_zoom and set(cards(zoomed)) == expected_zoom


async def test_the_download_is_the_same_document_as_a_canvas_file(
    graphql: Any, http: httpx.AsyncClient, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    response = await http.get(f"/conversations/{conversation_id}/canvas", params={"level": [1, 2]})
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Canvas_ main.canvas"'), disposition
    assert "filename*=UTF-8''Canvas_%20main.canvas" in disposition
    downloaded = response.json()
    validate_canvas(downloaded)
    assert downloaded == await export(graphql, conversation_id, level=[1, 2])


async def test_the_download_is_authorised_like_graphql(
    jwt_server: str, canvas_conversations: Conversations
) -> None:
    path = f"/conversations/{canvas_conversations.main}/canvas"
    async with httpx.AsyncClient(base_url=jwt_server, timeout=30) as client:
        owner = await client.get(
            path, headers={"Authorization": f"Bearer {token('local-developer')}"}
        )
        assert owner.status_code == 200
        validate_canvas(owner.json())
        for headers in ({}, {"Authorization": f"Bearer {token('stranger')}"}):
            hidden = await client.get(path, headers=headers)
            assert (
                hidden.status_code == 404
                and hidden.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            )
        bad = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401
        graphql = await client.post(
            "/graphql",
            json={"query": CANVAS, "variables": {"id": str(canvas_conversations.main)}},
            headers={"Authorization": f"Bearer {token('stranger')}"},
        )
        assert graphql.json()["data"] == {"conversationCanvas": None}
        malformed = await client.get("/conversations/not-a-uuid/canvas")
        assert malformed.status_code == 400


# -- Round trip -----------------------------------------------------------------------------------


async def test_round_trip_export_edit_apply_export(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    before = await export(graphql, conversation_id)
    edited = copy.deepcopy(before)
    card_list = [node for node in edited["nodes"] if node["type"] == "text"]
    moved, resized, renamed = card_list[0], card_list[1], card_list[2]
    moved["x"] += 123
    moved["y"] -= 45
    resized["width"] += 50
    resized["height"] = 321
    renamed["text"] = "# A better name\n\nA better summary,\nover two lines."
    removed = edited["edges"].pop(0)
    relabelled = edited["edges"][0]
    # edges come in the order of their random ids, so the relabelled one may already contradict
    relabelled["label"] = "supports" if relabelled.get("label") == "contradicts" else "contradicts"
    drawn = {  # as Obsidian writes a new edge: a random id, sides, no label
        "id": "4f1c2a9d8e7b6c5a",
        "fromNode": card_list[3]["id"],
        "fromSide": "right",
        "toNode": card_list[4]["id"],
        "toSide": "left",
    }
    edited["edges"].append(drawn)
    edits_before = [
        row["id"]
        for row in await db.fetch(
            "SELECT id FROM edits_log WHERE conversation_id = $1", conversation_id
        )
    ]

    response = await graphql(APPLY, conversationId=str(conversation_id), canvas=edited)
    assert not response.errors, response.errors
    result = response.data["applyCanvas"]
    assert result["__typename"] == "ApplyCanvasPayload", result
    assert result["movedNodeIds"] == [moved["id"], resized["id"]]
    assert result["correctedNodeIds"] == [renamed["id"]]
    assert result["deletedRelationshipIds"] == [removed["id"]]
    assert result["updatedRelationshipIds"] == [relabelled["id"]]
    [created] = result["createdRelationships"]
    assert (created["fromNodeId"], created["toNodeId"]) == (drawn["fromNode"], drawn["toNode"])
    assert created["relationshipType"] == DEFAULT_RELATIONSHIP_TYPE

    row = await db.fetchrow("SELECT * FROM nodes WHERE id = $1", uuid.UUID(renamed["id"]))
    assert (row["node_name"], row["summary"]) == (
        "A better name",
        "A better summary,\nover two lines.",
    )
    logged = await db.fetch(
        "SELECT target_id, field_name, edit_type, user_comment FROM edits_log"
        " WHERE conversation_id = $1 AND id <> ALL($2::uuid[])",
        conversation_id,
        edits_before,
    )
    by_kind = sorted(
        (str(item["target_id"]), item["field_name"], item["edit_type"]) for item in logged
    )
    assert by_kind == sorted(
        [
            (moved["id"], "canvas", "correction"),
            (resized["id"], "canvas", "correction"),
            (renamed["id"], "node_name", "correction"),
            (renamed["id"], "summary", "correction"),
            (removed["id"], "relationship", "deletion"),
            (relabelled["id"], "relationship_type", "correction"),
            (created["id"], "relationship", "addition"),
        ]
    )
    assert {item["user_comment"] for item in logged} == {"in Obsidian"}

    after = await export(graphql, conversation_id)
    assert cards(after) == cards(edited)
    expected_edges = {
        (edge["fromNode"], edge["toNode"], edge.get("label") or DEFAULT_RELATIONSHIP_TYPE)
        for edge in edited["edges"]
    }
    assert {
        (edge["fromNode"], edge["toNode"], edge["label"]) for edge in after["edges"]
    } == expected_edges
    assert any(edge["id"] == created["id"] for edge in after["edges"])

    again = await graphql(APPLY, conversationId=str(conversation_id), canvas=after)
    unchanged = again.data["applyCanvas"]
    assert unchanged["movedNodeIds"] == unchanged["correctedNodeIds"] == []
    assert unchanged["createdRelationships"] == unchanged["deletedRelationshipIds"] == []
    assert await export(graphql, conversation_id) == after


async def test_with_its_base_a_canvas_keeps_what_others_changed_since_the_export(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    base = await export(graphql, conversation_id)
    mine, theirs, untouched = [node for node in base["nodes"] if node["type"] == "text"][5:8]
    # Someone else, after the export: moves and renames `theirs`, deletes an edge, draws one.
    await db.execute(
        "UPDATE nodes SET canvas_x = canvas_x + 500, node_name = 'Renamed by someone else'"
        " WHERE id = $1",
        uuid.UUID(theirs["id"]),
    )
    their_deleted = base["edges"][-1]
    await db.execute("DELETE FROM relationships WHERE id = $1", uuid.UUID(their_deleted["id"]))
    their_new = await db.fetchval(
        "INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type)"
        " VALUES ($1, $2, $3, 'answers') RETURNING id",
        conversation_id,
        uuid.UUID(untouched["id"]),
        uuid.UUID(mine["id"]),
    )
    # Meanwhile, in Obsidian: only `mine` is moved and retitled.
    edited = copy.deepcopy(base)
    for node in edited["nodes"]:
        if node["id"] == mine["id"]:
            node["x"] -= 30
            node["text"] = node["text"].replace(node["text"].split("\n")[0], "# Mine, retitled")

    response = await graphql(APPLY, conversationId=str(conversation_id), canvas=edited, base=base)
    result = response.data["applyCanvas"]
    assert result["__typename"] == "ApplyCanvasPayload", result
    assert result["movedNodeIds"] == [mine["id"]]
    assert result["correctedNodeIds"] == [mine["id"]]
    assert result["createdRelationships"] == result["deletedRelationshipIds"] == []
    assert result["updatedRelationshipIds"] == []

    after = cards(await export(graphql, conversation_id))
    assert after[mine["id"]]["x"] == mine["x"] - 30
    assert after[mine["id"]]["text"].startswith("# Mine, retitled\n\n")
    assert after[theirs["id"]]["x"] == theirs["x"] + 500
    assert after[theirs["id"]]["text"].startswith("# Renamed by someone else\n\n")
    assert await db.fetchval("SELECT count(*) FROM relationships WHERE id = $1", their_new) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM relationships WHERE id = $1", uuid.UUID(their_deleted["id"])
        )
        == 0
    )

    stale = await graphql(APPLY, conversationId=str(conversation_id), canvas=edited)
    without_base = stale.data["applyCanvas"]
    assert str(their_new) in without_base["deletedRelationshipIds"], "the canvas is the truth"
    assert theirs["id"] in without_base["movedNodeIds"]


# -- Refusals change nothing ----------------------------------------------------------------------


def _first_card(document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return next(
        (index, node) for index, node in enumerate(document["nodes"]) if node["type"] == "text"
    )


async def _refused(
    graphql: Any, db: asyncpg.Connection, conversation_id: uuid.UUID, canvas: Any
) -> dict[str, Any]:
    before = await snapshot(db, conversation_id)
    response = await graphql(APPLY, conversationId=str(conversation_id), canvas=canvas)
    assert response.status == 200 and not response.errors, response.errors
    result: dict[str, Any] = response.data["applyCanvas"]
    assert result["__typename"] != "ApplyCanvasPayload", result
    assert await snapshot(db, conversation_id) == before
    return result


async def test_malformed_documents_name_the_json_path(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    document = await export(graphql, conversation_id)
    index, _ = _first_card(document)

    def broken(change: Any) -> dict[str, Any]:
        edited = copy.deepcopy(document)
        edited["nodes"][index]["x"] += 7  # a move that must not survive the refusal
        change(edited)
        return edited

    cases: list[tuple[Any, str, str]] = [
        (lambda d: d["nodes"][index].update(y="12"), f"nodes[{index}].y", "ValidationError"),
        (lambda d: d["nodes"][index].update(width=0), f"nodes[{index}].width", "ValidationError"),
        (lambda d: d["nodes"][index].pop("text"), f"nodes[{index}].text", "ValidationError"),
        (
            lambda d: d["nodes"][index].update(text="no heading"),
            f"nodes[{index}].text",
            "ValidationError",
        ),
        (
            lambda d: d["nodes"][index].update(text="# \n\nempty name"),
            f"nodes[{index}].text",
            "ValidationError",
        ),
        (
            lambda d: d["nodes"][index].update(color="red"),
            f"nodes[{index}].color",
            "ValidationError",
        ),
        (lambda d: d["edges"][0].update(toNode="nowhere"), "edges[0].toNode", "NotFoundError"),
        (lambda d: d["edges"][0].update(fromEnd="both"), "edges[0].fromEnd", "ValidationError"),
        (
            lambda d: d["edges"].append(dict(d["edges"][0])),
            f"edges[{len(document['edges'])}].id",
            "ValidationError",
        ),
        (lambda d: d.update(edges={}), "edges", "ValidationError"),
        (lambda d: d.update(nodes=5), "nodes", "ValidationError"),
    ]
    for change, field, typename in cases:
        result = await _refused(graphql, db, conversation_id, broken(change))
        assert (result["__typename"], result["field"]) == (typename, field), result
    not_an_object = await _refused(graphql, db, conversation_id, [1, 2])
    assert not_an_object["field"] == "$"


async def test_a_large_canvas_is_read_off_the_event_loop_with_the_same_errors(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    document = await export(graphql, canvas_conversations.main)
    card = next(node for node in document["nodes"] if node["type"] == "text")
    copies = [dict(card, id=str(uuid.uuid4())) for _ in range(600)]
    copies[-1]["x"] = "far"
    large = {"nodes": [*document["nodes"], *copies], "edges": document["edges"]}
    result = await _refused(graphql, db, canvas_conversations.main, large)
    assert result["field"] == f"nodes[{len(large['nodes']) - 1}].x", result
    copies[-1]["x"] = 0
    unknown = await _refused(graphql, db, canvas_conversations.main, large)
    assert unknown["__typename"] == "NotFoundError"
    assert unknown["field"] == f"nodes[{len(document['nodes'])}].id", unknown


async def test_unknown_and_foreign_ids_are_refused(
    graphql: Any, db: asyncpg.Connection, canvas_conversations: Conversations
) -> None:
    conversation_id = canvas_conversations.main
    document = await export(graphql, conversation_id)
    index, card = _first_card(document)
    other_node = await db.fetchval(
        "SELECT id FROM nodes WHERE conversation_id = $1 LIMIT 1", canvas_conversations.other
    )
    foreign_node = await db.fetchval(
        "SELECT id FROM nodes WHERE conversation_id = $1 LIMIT 1", canvas_conversations.foreign
    )
    for replacement, typename, code in [
        (str(uuid.uuid4()), "NotFoundError", "NOT_FOUND"),
        ("obsidian-card-1", "NotFoundError", "NOT_FOUND"),
        (str(other_node), "ValidationError", "WRONG_CONVERSATION"),
        (str(foreign_node), "NotFoundError", "NOT_FOUND"),
    ]:
        edited = copy.deepcopy(document)
        edited["nodes"][index]["id"] = replacement
        for edge in edited["edges"]:
            for end in ("fromNode", "toNode"):
                if edge[end] == card["id"]:
                    edge[end] = replacement
        result = await _refused(graphql, db, conversation_id, edited)
        assert (result["__typename"], result["code"], result["field"]) == (
            typename,
            code,
            f"nodes[{index}].id",
        ), result
    with_file = copy.deepcopy(document)
    with_file["nodes"].append(
        {"id": "abc", "type": "file", "file": "x.md", "x": 0, "y": 0, "width": 9, "height": 9}
    )
    result = await _refused(graphql, db, conversation_id, with_file)
    assert result["field"] == f"nodes[{len(document['nodes'])}].id"


async def test_only_the_owner_applies_a_canvas(
    graphql: Any, db: asyncpg.Connection, jwt_server: str, canvas_conversations: Conversations
) -> None:
    foreign = await export_foreign_as_owner(db, canvas_conversations.foreign)
    result = await _refused(graphql, db, canvas_conversations.foreign, foreign)
    assert result["__typename"] == "NotFoundError" and result["field"] == "conversationId"
    async with httpx.AsyncClient(base_url=jwt_server, timeout=30) as client:
        anonymous = await client.post(
            "/graphql",
            json={
                "query": APPLY,
                "variables": {"conversationId": str(canvas_conversations.main), "canvas": {}},
            },
        )
        assert anonymous.status_code == 401


async def export_foreign_as_owner(
    db: asyncpg.Connection, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """A canvas of someone else's conversation, built from the database (the API would not)."""
    rows = await db.fetch(
        "SELECT id, node_name, summary, canvas_x, canvas_y, canvas_width, canvas_height FROM nodes"
        " WHERE conversation_id = $1",
        conversation_id,
    )
    return {
        "nodes": [
            {
                "id": str(row["id"]),
                "type": "text",
                "x": row["canvas_x"] + 1,
                "y": row["canvas_y"],
                "width": row["canvas_width"],
                "height": row["canvas_height"],
                "text": f"# {row['node_name']}\n\n{row['summary']}",
            }
            for row in rows
        ],
        "edges": [],
    }
