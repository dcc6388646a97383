"""The rules a document's rows must keep: those the mutations that create each kind of row
apply, and the graph's consistency (hierarchies without loops, children arrays that match the
parents, a timeline without forks, one node per utterance). Each rule is one pass over the rows
with dict and set look-ups. Checking completes what one side of a fact left out (a node's
`successorId`, an utterance's `nodeId`) and fills the columns a document may leave out."""

from __future__ import annotations

import uuid
from typing import Any

from graph.services.clusters import check_cluster_values
from graph.services.common import check_text, check_unit_interval
from graph.services.conversations import _check_conversation, _check_utterance
from graph.services.errors import ErrorCode, InvalidInput, camel
from graph.services.hierarchy import in_listed_order
from graph.services.nodes import check_node_values
from graph.services.relationships import check_relationship_values

REQUIRED_CONVERSATION = ("conversation_name", "conversation_type", "source_type", "started_at")

DEFAULTS: dict[str, dict[str, Any]] = {
    "nodes": {"node_type": "conversational_thread", "level": 1, "children_ids": []},
    "relationships": {"strength": 1.0, "confidence": 1.0, "is_bidirectional": False},
    "clusters": {"auto_generated": True, "child_cluster_ids": []},
    "edits": {"user_confidence": 1.0, "exported_for_training": False},
    "utterances": {"language": "en"},
}


def check_conversation(values: dict[str, Any]) -> None:
    for required in REQUIRED_CONVERSATION:
        if values.get(required) is None:
            raise InvalidInput(
                f"{camel(required)} is required.",
                field=f"conversation.{camel(required)}",
                code=ErrorCode.REQUIRED,
            )
    try:
        _check_conversation(values)
    except InvalidInput as error:
        error.field = f"conversation.{error.field}"
        raise


def check_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Raises `InvalidInput` naming the document path of the first row that breaks a rule."""
    for name, section_rows in rows.items():
        check = CHECKS[name]
        defaults = DEFAULTS[name]
        for index, row in enumerate(section_rows):
            _fill_required(defaults, row)
            check(row, f"{name}[{index}].")
    _as_history(rows["edits"])
    _check_graph(rows)


def _fill_required(defaults: dict[str, Any], row: dict[str, Any]) -> None:
    """The columns a document may leave out (or send as null) that the checks and the database
    need: their defaults, given explicitly."""
    for key, value in defaults.items():
        if row.get(key) is None:
            row[key] = list(value) if isinstance(value, list) else value


def _check_edit(values: dict[str, Any], prefix: str) -> None:
    check_text(values.get("user_id"), prefix + "userId", required=True)
    check_text(values.get("field_name"), prefix + "fieldName", required=True)
    check_unit_interval(values.get("user_confidence"), prefix + "userConfidence")


# The checks the mutations that create each kind of row apply, given the row's document path.
CHECKS: dict[str, Any] = {
    "utterances": _check_utterance,
    "nodes": check_node_values,
    "relationships": check_relationship_values,
    "clusters": check_cluster_values,
    "edits": _check_edit,
}


def _as_history(edits: list[dict[str, Any]]) -> None:
    """Imported edits are history, not corrections made here: they keep who made them and what
    they changed, but count as exported already, so `exportTrainingEdits` never returns them. A
    document is whatever its sender wrote: it could otherwise put corrections under anyone's name
    into training data, or hand back ones that were exported before. The dataset an edit went to
    is kept only when the document says it was exported."""
    for row in edits:
        if not row.get("exported_for_training"):
            row["training_dataset_id"] = None
        row["exported_for_training"] = True


def _check_graph(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The consistency rules a hand-made document could break, each checked in one pass."""
    nodes = {row["id"]: (index, row) for index, row in enumerate(rows["nodes"])}
    _refuse_loops(nodes, "parent_id", "The node hierarchy loops.", "nodes[{index}].parentId")
    _children_follow_parents(nodes, "parent_id", "children_ids")
    # The chain follows predecessor_id.
    successors: dict[uuid.UUID, uuid.UUID] = {}
    for node_id, (index, row) in nodes.items():
        predecessor = row.get("predecessor_id")
        if predecessor is None:
            continue
        if predecessor == node_id or predecessor in successors:
            raise InvalidInput(
                "Two nodes follow the same predecessor, or a node follows itself.",
                field=f"nodes[{index}].predecessorId",
            )
        successors[predecessor] = node_id
    for node_id, (_index, row) in nodes.items():
        row["successor_id"] = successors.get(node_id)
    clusters = {row["id"]: (index, row) for index, row in enumerate(rows["clusters"])}
    _refuse_loops(
        clusters,
        "parent_cluster_id",
        "The cluster hierarchy loops.",
        "clusters[{index}].parentClusterId",
    )
    _children_follow_parents(clusters, "parent_cluster_id", "child_cluster_ids")
    for index, row in enumerate(rows["clusters"]):
        members = row.get("node_ids") or []
        if len(set(members)) != len(members):
            raise InvalidInput(
                "A node is listed twice.",
                field=f"clusters[{index}].nodeIds",
                code=ErrorCode.DUPLICATE,
            )
    # An utterance belongs to one node. Nodes' utteranceIds and utterances' nodeId state that one
    # fact from either side: each completes the other, and they may not contradict each other.
    owner: dict[uuid.UUID, uuid.UUID] = {}
    for node_id, (index, row) in nodes.items():
        for position, utterance_id in enumerate(row.get("utterance_ids") or []):
            if utterance_id in owner:
                raise InvalidInput(
                    "This utterance is already listed by a node; it can belong to one only.",
                    field=f"nodes[{index}].utteranceIds[{position}]",
                    code=ErrorCode.DUPLICATE,
                )
            owner[utterance_id] = node_id
    for index, row in enumerate(rows["utterances"]):
        claimed, listed_by = row.get("node_id"), owner.get(row["id"])
        if claimed is None:
            row["node_id"] = listed_by
        elif listed_by is None:
            node = nodes[claimed][1]
            if node.get("utterance_ids") is None:
                node["utterance_ids"] = []
            node["utterance_ids"].append(row["id"])
        elif listed_by != claimed:
            raise InvalidInput(
                "nodeId names a node whose utteranceIds do not list this utterance.",
                field=f"utterances[{index}].nodeId",
            )


def _refuse_loops(
    table: dict[uuid.UUID, tuple[int, dict[str, Any]]], parent: str, message: str, path: str
) -> None:
    """Refuses a hierarchy with a cycle, naming the first row (in document order) whose chain of
    parents loops. Each row is walked once: a walk stops at a row already known to reach a root."""
    reaches_root: set[uuid.UUID] = set()
    for row_id, (index, _row) in table.items():
        walked: list[uuid.UUID] = []
        on_walk: set[uuid.UUID] = set()
        current: uuid.UUID | None = row_id
        while current is not None and current not in reaches_root:
            if current in on_walk:
                raise InvalidInput(message, field=path.format(index=index), code=ErrorCode.CYCLE)
            walked.append(current)
            on_walk.add(current)
            current = table[current][1].get(parent)
        reaches_root.update(walked)


def _children_follow_parents(
    table: dict[uuid.UUID, tuple[int, dict[str, Any]]], parent: str, children: str
) -> None:
    """Each row's children array lists exactly the rows whose parent it is: in the document's
    order where the document lists them, then the others in document order."""
    below: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row_id, (_index, row) in table.items():
        parent_id = row.get(parent)
        if parent_id is not None:
            below.setdefault(parent_id, []).append(row_id)
    for row_id, (_index, row) in table.items():
        row[children] = in_listed_order(row.get(children), below.get(row_id, []))
