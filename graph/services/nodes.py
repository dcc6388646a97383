"""Nodes: create, update, delete, move and resize; merge and split are in `merge_split`.

Consistency kept here (PostgreSQL cannot check uuid[] members):
- `parent_id` and the parent's `children_ids` always agree, and the hierarchy has no cycle;
- the temporal chain is doubly linked: `a.successor_id = b` exactly when `b.predecessor_id = a`;
- a deleted node leaves no trace in `children_ids`, `clusters.node_ids`, `utterances.node_id` or the
  chain (its predecessor is joined to its successor, its children move up to its parent);
- `conversations.total_nodes` counts the conversation's nodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import DIALOGUE_TYPES, Cluster, Conversation, Node, Relationship, Utterance
from graph.services import edits, hierarchy
from graph.services.common import (
    Actor,
    check_json,
    check_text,
    check_unit_interval,
    check_version,
    lock_conversation,
    lock_conversation_of,
    lock_rows,
    refuse_cleared,
    snapshot,
)
from graph.services.errors import ErrorCode, InvalidInput, camel
from graph.services.fields import UNSET, Fields, Unset
from graph.services.hierarchy import NO_SYNC
from graph.services.node_tree import hang_under, lift_children, reparent
from graph.services.node_utterances import check_utterances, claim_utterances
from graph.services.timeline import link_after, unlink


@dataclass(frozen=True)
class NodeFields(Fields):
    """A node's writable columns (see `graph.services.fields`)."""

    node_name: str | Unset | None = UNSET
    summary: str | Unset | None = UNSET
    key_points: list[str] | Unset | None = UNSET
    node_type: str | Unset | None = UNSET
    level: int | Unset | None = UNSET
    is_bookmark: bool | Unset | None = UNSET
    is_contextual_progress: bool | Unset | None = UNSET
    is_tangent: bool | Unset | None = UNSET
    is_crux: bool | Unset | None = UNSET
    chunk_ids: list[uuid.UUID] | Unset | None = UNSET
    utterance_ids: list[uuid.UUID] | Unset | None = UNSET
    speaker_info: dict[str, Any] | Unset | None = UNSET
    speaker_transitions: list[dict[str, Any]] | Unset | None = UNSET
    dialogue_type: str | Unset | None = UNSET
    claim_ids: list[uuid.UUID] | Unset | None = UNSET
    timestamp_start: float | Unset | None = UNSET
    timestamp_end: float | Unset | None = UNSET
    duration_seconds: float | Unset | None = UNSET
    cluster_info: Any | Unset | None = UNSET
    display_preferences: Any | Unset | None = UNSET
    canvas_x: int | Unset | None = UNSET
    canvas_y: int | Unset | None = UNSET
    canvas_width: int | Unset | None = UNSET
    canvas_height: int | Unset | None = UNSET
    zoom_level_visible: list[int] | Unset | None = UNSET
    confidence_score: float | Unset | None = UNSET


@dataclass(frozen=True)
class CreateNode:
    """A new node, hung under `parent_id` and put into the chain after `predecessor_id` or before
    `successor_id` (both: they must be adjacent)."""

    conversation_id: uuid.UUID
    fields: NodeFields
    parent_id: uuid.UUID | None = None
    predecessor_id: uuid.UUID | None = None
    successor_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UpdateNode:
    """Changes the fields sent; `parent_id` moves the node (None: to the roots), UNSET: stays."""

    id: uuid.UUID
    expected_updated_at: datetime | None
    fields: NodeFields
    parent_id: uuid.UUID | Unset | None = UNSET


@dataclass(frozen=True)
class MoveNode:
    """New canvas geometry for one node: only the `CANVAS` fields may be sent."""

    id: uuid.UUID
    geometry: NodeFields


CANVAS = ("canvas_x", "canvas_y", "canvas_width", "canvas_height")
MAX_MOVES = 5_000
FLUSH_ROWS = 500


def check_node_values(values: dict[str, Any], prefix: str = "") -> None:
    for name in ("node_name", "summary"):
        if name in values:
            check_text(values[name], prefix + camel(name), required=True)
    if "node_type" in values:
        check_text(values["node_type"], prefix + "nodeType", required=True)
    for index, point in enumerate(values.get("key_points") or []):
        check_text(point, f"{prefix}keyPoints[{index}]")
    dialogue = values.get("dialogue_type")
    if dialogue is not None and dialogue not in DIALOGUE_TYPES:
        raise InvalidInput(
            f"dialogueType must be one of {', '.join(DIALOGUE_TYPES)}.",
            field=prefix + "dialogueType",
        )
    if "level" in values and (values["level"] is None or values["level"] < 0):
        raise InvalidInput(
            "level must be 0 or more.", field=prefix + "level", code=ErrorCode.OUT_OF_RANGE
        )
    for name in ("canvas_width", "canvas_height"):
        if name in values and values[name] is not None and values[name] < 1:
            raise InvalidInput(
                f"{camel(name)} must be at least 1.",
                field=prefix + camel(name),
                code=ErrorCode.OUT_OF_RANGE,
            )
    start, end = values.get("timestamp_start"), values.get("timestamp_end")
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            "timestampEnd must not be before timestampStart.", field=prefix + "timestampEnd"
        )
    check_unit_interval(values.get("confidence_score"), prefix + "confidenceScore")
    for name in ("speaker_info", "speaker_transitions", "cluster_info", "display_preferences"):
        check_json(values.get(name), prefix + camel(name))
    if "chunk_ids" in values and values["chunk_ids"] is None:
        values["chunk_ids"] = []


async def lock_nodes(
    session: AsyncSession, conversation: Conversation, ids: list[uuid.UUID], field: str
) -> dict[uuid.UUID, Node]:
    """The nodes, locked, once each is a node of the (locked) conversation: see `lock_rows`."""
    return await lock_rows(session, Node, conversation, ids, field, "node")


async def lock_node(
    session: AsyncSession, actor: Actor, node_id: uuid.UUID, field: str = "id"
) -> tuple[Conversation, Node]:
    conversation = await lock_conversation_of(
        session, Node, node_id, actor.user_id, field=field, missing="No such node."
    )
    nodes = await lock_nodes(session, conversation, [node_id], field)
    return conversation, nodes[node_id]


async def reload(session: AsyncSession, node_id: uuid.UUID) -> Node:
    return (
        await session.execute(
            select(Node).where(Node.id == node_id).execution_options(populate_existing=True)
        )
    ).scalar_one()


async def count_nodes(session: AsyncSession, conversation: Conversation) -> None:
    conversation.total_nodes = (
        await session.scalar(
            select(func.count()).select_from(Node).where(Node.conversation_id == conversation.id)
        )
        or 0
    )


async def create_node(
    session: AsyncSession, actor: Actor, command: CreateNode, *, log: bool = True
) -> Node:
    parent_id, predecessor_id = command.parent_id, command.predecessor_id
    successor_id = command.successor_id
    values = {"chunk_ids": [], **command.fields.provided()}
    refuse_cleared(values, Node)
    check_node_values(values)
    conversation = await lock_conversation(session, command.conversation_id, actor.user_id)
    references = [item for item in (parent_id, predecessor_id, successor_id) if item]
    fields = {parent_id: "parentId", predecessor_id: "predecessorId", successor_id: "successorId"}
    locked: dict[uuid.UUID, Node] = {}
    for reference in references:
        locked.update(await lock_nodes(session, conversation, [reference], fields[reference]))
    await check_utterances(
        session, conversation.id, values.get("utterance_ids") or [], "utteranceIds"
    )
    predecessor = locked.get(predecessor_id) if predecessor_id else None
    successor = locked.get(successor_id) if successor_id else None
    if predecessor is not None and successor is not None:
        if predecessor.successor_id != successor.id:
            raise InvalidInput(
                "predecessorId and successorId are not next to each other in the timeline.",
                field="successorId",
            )
    elif predecessor is not None:
        successor_id = predecessor.successor_id
    elif successor is not None:
        predecessor_id = successor.predecessor_id
        predecessor = (
            (await lock_nodes(session, conversation, [predecessor_id], "successorId"))[
                predecessor_id
            ]
            if predecessor_id
            else None
        )
    node = Node(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        parent_id=parent_id,
        predecessor_id=predecessor.id if predecessor else None,
        successor_id=successor_id,
        children_ids=[],
        **values,
    )
    session.add(node)
    await session.flush()
    await hang_under(session, parent_id, [node.id])
    await link_after(session, node, predecessor, successor_id)
    await claim_utterances(
        session, actor, conversation.id, node.id, [], values.get("utterance_ids") or []
    )
    conversation.total_nodes = (conversation.total_nodes or 0) + 1
    await session.flush()
    node = await reload(session, node.id)
    if log:
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="node",
            target_id=node.id,
            field_name="node",
            old=None,
            new=snapshot(node),
            edit_type="addition",
        )
    return node


async def update_node(session: AsyncSession, actor: Actor, command: UpdateNode) -> Node:
    values = command.fields.provided()
    refuse_cleared(values, Node)
    check_node_values(values)
    conversation, node = await lock_node(session, actor, command.id)
    check_version(node, command.expected_updated_at, "node")
    changes: dict[str, tuple[Any, Any]] = {}
    parent_id = command.parent_id
    if not isinstance(parent_id, Unset) and parent_id != node.parent_id:
        if parent_id is not None:
            await lock_nodes(session, conversation, [parent_id], "parentId")
        changes["parent_id"] = (node.parent_id, parent_id)
        await reparent(session, node, parent_id)
    if "utterance_ids" in values:
        new_utterances = values["utterance_ids"] or []
        await check_utterances(session, conversation.id, new_utterances, "utteranceIds")
        await claim_utterances(
            session, actor, conversation.id, node.id, node.utterance_ids or [], new_utterances
        )
    for key, value in values.items():
        old = getattr(node, key)
        if old != value:
            changes[key] = (old, value)
            setattr(node, key, value)
    canvas = {key: changes.pop(key) for key in CANVAS if key in changes}
    edits.record_changes(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=node.id,
        changes=changes,
    )
    if canvas:
        _log_canvas(session, actor, node, canvas)
    await session.flush()
    return await reload(session, node.id)


def _log_canvas(
    session: AsyncSession, actor: Actor, node: Node, canvas: dict[str, tuple[Any, Any]]
) -> None:
    edits.record(
        session,
        actor,
        conversation_id=node.conversation_id,
        target_type="node",
        target_id=node.id,
        field_name=edits.CANVAS_FIELD,
        old={camel(key): old for key, (old, _new) in canvas.items()},
        new={camel(key): new for key, (_old, new) in canvas.items()},
    )


async def remove_node(
    session: AsyncSession, actor: Actor, conversation: Conversation, node: Node, edit_type: str
) -> None:
    """Deletes `node` and every reference to it; children move up to its parent."""
    await lift_children(session, node)
    await unlink(session, node)
    await session.execute(
        update(Cluster)
        .where(hierarchy.has_member(Cluster.node_ids, node.id))
        .values(node_ids=func.array_remove(Cluster.node_ids, node.id)),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Utterance).where(Utterance.node_id == node.id).values(node_id=None),
        execution_options=NO_SYNC,
    )
    relationships = list(
        (
            await session.execute(
                select(Relationship)
                .where(
                    (Relationship.from_node_id == node.id) | (Relationship.to_node_id == node.id)
                )
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    for relationship in relationships:
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="relationship",
            target_id=relationship.id,
            field_name="relationship",
            old=snapshot(relationship),
            new=None,
            edit_type="deletion" if edit_type == "deletion" else edit_type,
        )
    await session.execute(
        delete(Relationship).where(
            hierarchy.among(Relationship.id, [item.id for item in relationships])
        ),
        execution_options=NO_SYNC,
    )
    await session.execute(delete(Node).where(Node.id == node.id), execution_options=NO_SYNC)
    session.expunge(node)
    await count_nodes(session, conversation)


async def delete_node(session: AsyncSession, actor: Actor, node_id: uuid.UUID) -> uuid.UUID:
    conversation, node = await lock_node(session, actor, node_id)
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=node.id,
        field_name="node",
        old=snapshot(node),
        new=None,
        edit_type="deletion",
    )
    await remove_node(session, actor, conversation, node, "deletion")
    await session.flush()
    return node_id


async def move_nodes(session: AsyncSession, actor: Actor, moves: Sequence[MoveNode]) -> list[Node]:
    """Moves and resizes many nodes of one conversation at once; one `canvas` log row per node."""
    if not moves:
        raise InvalidInput("Send at least one move.", field="moves")
    if len(moves) > MAX_MOVES:
        raise InvalidInput(
            f"Send at most {MAX_MOVES} moves per call.",
            field="moves",
            code=ErrorCode.OUT_OF_RANGE,
        )
    ids = [move.id for move in moves]
    geometries: list[dict[str, Any]] = []
    first_index: dict[uuid.UUID, int] = {}
    for index, move in enumerate(moves):
        geometry = move.geometry.provided()
        prefix = f"moves[{index}]."
        for key in geometry.keys() - set(CANVAS):
            raise InvalidInput(f"{camel(key)} is not canvas geometry.", field=prefix + camel(key))
        refuse_cleared(geometry, Node, prefix)
        check_node_values(geometry, prefix)
        geometries.append(geometry)
        if first_index.setdefault(move.id, index) != index:
            raise InvalidInput(
                "This node is moved twice in one call.",
                field=f"{prefix}id",
                code=ErrorCode.DUPLICATE,
            )
    conversation = await lock_conversation_of(
        session, Node, ids[0], actor.user_id, field="moves[0].id", missing="No such node."
    )
    nodes = await lock_nodes(session, conversation, ids, "moves[{index}].id")
    for position, (node_id, geometry) in enumerate(zip(ids, geometries, strict=True), start=1):
        node = nodes[node_id]
        canvas: dict[str, tuple[Any, Any]] = {}
        for key, value in geometry.items():
            if getattr(node, key) != value:
                canvas[key] = (getattr(node, key), value)
                setattr(node, key, value)
        if canvas:
            _log_canvas(session, actor, node, canvas)
        if position % FLUSH_ROWS == 0:
            await session.flush()  # a slice at a time: the event loop gets a turn in between
    await session.flush()
    rows = (
        await session.execute(
            select(Node)
            .where(hierarchy.among(Node.id, ids))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    by_id = {node.id: node for node in rows}
    return [by_id[node_id] for node_id in ids]
