"""Nodes: create, update, delete, move and resize, merge and split.

Consistency kept here (PostgreSQL cannot check uuid[] members):
- `parent_id` and the parent's `children_ids` always agree, and the hierarchy has no cycle;
- the temporal chain is doubly linked: `a.successor_id = b` exactly when `b.predecessor_id = a`;
- a deleted node leaves no trace in `children_ids`, `clusters.node_ids`, `utterances.node_id` or the
  chain (its predecessor is joined to its successor, its children move up to its parent);
- `conversations.total_nodes` counts the conversation's nodes.
"""

from __future__ import annotations

import functools
import uuid
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
    snapshot,
)
from graph.services.errors import ErrorCode, InvalidInput, NotFound
from graph.services.hierarchy import NO_SYNC

NODE_FIELDS = (
    "node_name",
    "summary",
    "key_points",
    "node_type",
    "level",
    "is_bookmark",
    "is_contextual_progress",
    "is_tangent",
    "is_crux",
    "chunk_ids",
    "utterance_ids",
    "speaker_info",
    "speaker_transitions",
    "dialogue_type",
    "claim_ids",
    "timestamp_start",
    "timestamp_end",
    "duration_seconds",
    "cluster_info",
    "display_preferences",
    "canvas_x",
    "canvas_y",
    "canvas_width",
    "canvas_height",
    "zoom_level_visible",
    "confidence_score",
)
CANVAS = ("canvas_x", "canvas_y", "canvas_width", "canvas_height")
MAX_MOVES = 5_000
FLUSH_ROWS = 500


@functools.cache  # column names only: a bounded set
def _camel(name: str) -> str:
    from graph.services.errors import camel

    return camel(name)


def check_node_values(values: dict[str, Any], prefix: str = "") -> None:
    for name in ("node_name", "summary"):
        if name in values:
            check_text(values[name], prefix + _camel(name), required=True)
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
                f"{_camel(name)} must be at least 1.",
                field=prefix + _camel(name),
                code=ErrorCode.OUT_OF_RANGE,
            )
    start, end = values.get("timestamp_start"), values.get("timestamp_end")
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            "timestampEnd must not be before timestampStart.", field=prefix + "timestampEnd"
        )
    check_unit_interval(values.get("confidence_score"), prefix + "confidenceScore")
    for name in ("speaker_info", "speaker_transitions", "cluster_info", "display_preferences"):
        check_json(values.get(name), prefix + _camel(name))
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


async def check_utterances(
    session: AsyncSession, conversation_id: uuid.UUID, ids: list[uuid.UUID], field: str
) -> None:
    if not ids:
        return
    if len(set(ids)) != len(ids):
        raise InvalidInput("An utterance is listed twice.", field=field, code=ErrorCode.DUPLICATE)
    found = set(
        (
            await session.execute(
                select(Utterance.id).where(
                    hierarchy.among(Utterance.id, ids), Utterance.conversation_id == conversation_id
                )
            )
        ).scalars()
    )
    for index, utterance_id in enumerate(ids):
        if utterance_id not in found:
            raise NotFound("No such utterance in this conversation.", field=f"{field}[{index}]")


async def _claim_utterances(
    session: AsyncSession,
    actor: Actor,
    conversation_id: uuid.UUID,
    node_id: uuid.UUID,
    old: list[uuid.UUID],
    new: list[uuid.UUID],
) -> None:
    """`utterances.node_id` follows the node's `utterance_ids`, and an utterance belongs to one
    node: claiming it takes it out of any other node's `utterance_ids` (a logged correction of
    that node)."""
    claimed = set(new)
    dropped = [item for item in old if item not in claimed]
    if dropped:
        await session.execute(
            update(Utterance)
            .where(hierarchy.among(Utterance.id, dropped), Utterance.node_id == node_id)
            .values(node_id=None),
            execution_options=NO_SYNC,
        )
    if not new:
        return
    losers = (
        await session.execute(
            select(Node.id, Node.utterance_ids)
            .where(
                Node.conversation_id == conversation_id,
                Node.id != node_id,
                Node.utterance_ids.op("&&")(hierarchy.uuid_array(new)),
            )
            .order_by(Node.id)
            .with_for_update()
        )
    ).all()
    for loser_id, listed in losers:
        kept = [item for item in listed or [] if item not in claimed]
        await session.execute(
            update(Node).where(Node.id == loser_id).values(utterance_ids=kept),
            execution_options=NO_SYNC,
        )
        edits.record(
            session,
            actor,
            conversation_id=conversation_id,
            target_type="node",
            target_id=loser_id,
            field_name="utterance_ids",
            old=listed,
            new=kept,
        )
    await session.execute(
        update(Utterance).where(hierarchy.among(Utterance.id, new)).values(node_id=node_id),
        execution_options=NO_SYNC,
    )


async def _link_after(
    session: AsyncSession, node: Node, predecessor: Node | None, successor_id: uuid.UUID | None
) -> None:
    """Puts `node` into the chain between `predecessor` and `successor_id`."""
    if predecessor is not None:
        await session.execute(
            update(Node).where(Node.id == predecessor.id).values(successor_id=node.id),
            execution_options=NO_SYNC,
        )
    if successor_id is not None:
        await session.execute(
            update(Node).where(Node.id == successor_id).values(predecessor_id=node.id),
            execution_options=NO_SYNC,
        )


async def _unlink(session: AsyncSession, node: Node) -> None:
    """Takes `node` out of the chain, joining its predecessor to its successor."""
    await session.execute(
        update(Node)
        .where(Node.successor_id == node.id, Node.id != node.id)
        .values(successor_id=node.successor_id if node.successor_id != node.id else None),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Node)
        .where(Node.predecessor_id == node.id, Node.id != node.id)
        .values(predecessor_id=node.predecessor_id if node.predecessor_id != node.id else None),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Node).where(Node.id == node.id).values(predecessor_id=None, successor_id=None),
        execution_options=NO_SYNC,
    )


async def reload(session: AsyncSession, node_id: uuid.UUID) -> Node:
    return (
        await session.execute(
            select(Node).where(Node.id == node_id).execution_options(populate_existing=True)
        )
    ).scalar_one()


async def _count_nodes(session: AsyncSession, conversation: Conversation) -> None:
    conversation.total_nodes = (
        await session.scalar(
            select(func.count()).select_from(Node).where(Node.conversation_id == conversation.id)
        )
        or 0
    )


async def create_node(
    session: AsyncSession,
    actor: Actor,
    conversation_id: uuid.UUID,
    values: dict[str, Any],
    *,
    parent_id: uuid.UUID | None = None,
    predecessor_id: uuid.UUID | None = None,
    successor_id: uuid.UUID | None = None,
    log: bool = True,
) -> Node:
    """A new node, hung under `parent_id` and put into the chain after `predecessor_id` or before
    `successor_id` (both: they must be adjacent)."""
    values = {"chunk_ids": [], **values}
    check_node_values(values)
    conversation = await lock_conversation(session, conversation_id, actor.user_id)
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
        **{key: values[key] for key in NODE_FIELDS if key in values},
    )
    session.add(node)
    await session.flush()
    if parent_id is not None:
        await hierarchy.attach(session, Node, "children_ids", parent_id, [node.id])
    await _link_after(session, node, predecessor, successor_id)
    await _claim_utterances(
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


async def update_node(
    session: AsyncSession,
    actor: Actor,
    node_id: uuid.UUID,
    expected_updated_at: datetime | None,
    values: dict[str, Any],
    *,
    parent_id: uuid.UUID | None = None,
    change_parent: bool = False,
) -> Node:
    check_node_values(values)
    conversation, node = await lock_node(session, actor, node_id)
    check_version(node, expected_updated_at, "node")
    changes: dict[str, tuple[Any, Any]] = {}
    if change_parent and parent_id != node.parent_id:
        if parent_id is not None:
            await lock_nodes(session, conversation, [parent_id], "parentId")
            await hierarchy.refuse_cycle(session, Node, "parent_id", node.id, parent_id, "parentId")
        changes["parent_id"] = (node.parent_id, parent_id)
        await hierarchy.detach(session, Node, "children_ids", node.id)
        if parent_id is not None:
            await hierarchy.attach(session, Node, "children_ids", parent_id, [node.id])
        node.parent_id = parent_id
    if "utterance_ids" in values:
        new_utterances = values["utterance_ids"] or []
        await check_utterances(session, conversation.id, new_utterances, "utteranceIds")
        await _claim_utterances(
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
        old={_camel(key): old for key, (old, _new) in canvas.items()},
        new={_camel(key): new for key, (_old, new) in canvas.items()},
    )


async def _remove_node(
    session: AsyncSession, actor: Actor, conversation: Conversation, node: Node, edit_type: str
) -> None:
    """Deletes `node` and every reference to it; children move up to its parent."""
    children = list(
        (
            await session.execute(
                select(Node.id).where(Node.parent_id == node.id).order_by(Node.created_at)
            )
        ).scalars()
    )
    ordered = hierarchy.in_listed_order(node.children_ids, children)
    if ordered:
        await session.execute(
            update(Node).where(hierarchy.among(Node.id, ordered)).values(parent_id=node.parent_id),
            execution_options=NO_SYNC,
        )
    if node.parent_id is not None:
        await hierarchy.attach(
            session, Node, "children_ids", node.parent_id, ordered, replacing=node.id
        )
    await hierarchy.detach(session, Node, "children_ids", node.id)
    await _unlink(session, node)
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
    await _count_nodes(session, conversation)


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
    await _remove_node(session, actor, conversation, node, "deletion")
    await session.flush()
    return node_id


async def move_nodes(
    session: AsyncSession, actor: Actor, moves: list[dict[str, Any]]
) -> list[Node]:
    """Moves and resizes many nodes of one conversation at once; one `canvas` log row per node."""
    if not moves:
        raise InvalidInput("Send at least one move.", field="moves")
    if len(moves) > MAX_MOVES:
        raise InvalidInput(
            f"Send at most {MAX_MOVES} moves per call.",
            field="moves",
            code=ErrorCode.OUT_OF_RANGE,
        )
    ids = [move["id"] for move in moves]
    first_index: dict[uuid.UUID, int] = {}
    for index, move in enumerate(moves):
        check_node_values(
            {key: value for key, value in move.items() if key != "id"}, f"moves[{index}]."
        )
        if first_index.setdefault(move["id"], index) != index:
            raise InvalidInput(
                "This node is moved twice in one call.",
                field=f"moves[{index}].id",
                code=ErrorCode.DUPLICATE,
            )
    conversation = await lock_conversation_of(
        session, Node, ids[0], actor.user_id, field="moves[0].id", missing="No such node."
    )
    nodes = await lock_nodes(session, conversation, ids, "moves[{index}].id")
    for position, move in enumerate(moves, start=1):
        node = nodes[move["id"]]
        canvas: dict[str, tuple[Any, Any]] = {}
        for key in CANVAS:
            if key in move and getattr(node, key) != move[key]:
                canvas[key] = (getattr(node, key), move[key])
                setattr(node, key, move[key])
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


def _union(*lists: list[Any] | None) -> list[Any]:
    """The items of every list, each once, in order of first appearance."""
    return list(dict.fromkeys(item for items in lists for item in items or []))


def split_list(items: list[Any], chosen: set[Any]) -> tuple[list[Any], list[Any]]:
    """`items` not in `chosen`, and those in it, each in the order of `items`."""
    kept = [item for item in items if item not in chosen]
    return kept, [item for item in items if item in chosen]


def _require_version(overwrites: dict[str, Any], expected_updated_at: datetime | None) -> None:
    """A merge or split that overwrites the name or summary a client read must say which version
    it read, as `updateNode` does; otherwise a concurrent rename would be lost without a trace."""
    if overwrites and expected_updated_at is None:
        raise InvalidInput(
            "expectedUpdatedAt is required to change the node's name or summary.",
            field="expectedUpdatedAt",
            code=ErrorCode.REQUIRED,
        )


async def merge_nodes(
    session: AsyncSession,
    actor: Actor,
    keep_id: uuid.UUID,
    absorb_id: uuid.UUID,
    values: dict[str, Any],
    expected_updated_at: datetime | None = None,
) -> Node:
    """Folds `absorb_id` into `keep_id`: utterances, children, relationships, cluster memberships
    and the chain position pass to the kept node; the absorbed node is deleted. `values` (a new
    name or summary) overwrite the kept node's, so they need its version."""
    check_node_values(values)
    _require_version(values, expected_updated_at)
    if keep_id == absorb_id:
        raise InvalidInput("A node cannot be merged with itself.", field="absorbedNodeId")
    conversation = await lock_conversation_of(
        session, Node, keep_id, actor.user_id, field="keptNodeId", missing="No such node."
    )
    keep = (await lock_nodes(session, conversation, [keep_id], "keptNodeId"))[keep_id]
    check_version(keep, expected_updated_at, "node")
    absorb = (await lock_nodes(session, conversation, [absorb_id], "absorbedNodeId"))[absorb_id]
    if absorb.id in await hierarchy.ancestors(session, Node, "parent_id", keep.id):
        raise InvalidInput(
            "The absorbed node is an ancestor of the kept one; merge the other way round.",
            field="absorbedNodeId",
            code=ErrorCode.CYCLE,
        )
    before_keep, before_absorb = snapshot(keep), snapshot(absorb)
    starts = [item for item in (keep.timestamp_start, absorb.timestamp_start) if item is not None]
    ends = [item for item in (keep.timestamp_end, absorb.timestamp_end) if item is not None]
    merged = {
        "utterance_ids": _union(keep.utterance_ids, absorb.utterance_ids),
        "chunk_ids": _union(keep.chunk_ids, absorb.chunk_ids),
        "claim_ids": _union(keep.claim_ids, absorb.claim_ids),
        "key_points": _union(keep.key_points, absorb.key_points),
        "zoom_level_visible": _union(keep.zoom_level_visible, absorb.zoom_level_visible) or None,
        "timestamp_start": min(starts) if starts else None,
        "timestamp_end": max(ends) if ends else None,
        **values,
    }
    if merged["timestamp_start"] is not None and merged["timestamp_end"] is not None:
        merged["duration_seconds"] = merged["timestamp_end"] - merged["timestamp_start"]
    # The absorbed node's relationships now start or end at the kept node, unless that would make
    # a self-reference or a duplicate of one the kept node already has.
    existing = {
        (row.from_node_id, row.to_node_id, row.relationship_type)
        for row in (
            await session.execute(
                select(Relationship).where(
                    (Relationship.from_node_id == keep.id) | (Relationship.to_node_id == keep.id)
                )
            )
        ).scalars()
    }
    moved = list(
        (
            await session.execute(
                select(Relationship)
                .where(
                    (Relationship.from_node_id == absorb.id)
                    | (Relationship.to_node_id == absorb.id)
                )
                .order_by(Relationship.id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    for relationship in moved:
        ends_after = (
            keep.id if relationship.from_node_id == absorb.id else relationship.from_node_id,
            keep.id if relationship.to_node_id == absorb.id else relationship.to_node_id,
            relationship.relationship_type,
        )
        if ends_after[0] == ends_after[1] or ends_after in existing:
            continue
        existing.add(ends_after)
        await session.execute(
            update(Relationship)
            .where(Relationship.id == relationship.id)
            .values(from_node_id=ends_after[0], to_node_id=ends_after[1]),
            execution_options=NO_SYNC,
        )
    # Children of the absorbed node move under the kept node; if the kept node was one of them it
    # takes the absorbed node's place instead.
    if keep.parent_id == absorb.id:
        await hierarchy.detach(session, Node, "children_ids", keep.id)
        await session.execute(
            update(Node).where(Node.id == keep.id).values(parent_id=absorb.parent_id),
            execution_options=NO_SYNC,
        )
        if absorb.parent_id is not None:
            await hierarchy.attach(
                session, Node, "children_ids", absorb.parent_id, [keep.id], after=absorb.id
            )
    orphans = list(
        (
            await session.execute(
                select(Node.id).where(Node.parent_id == absorb.id, Node.id != keep.id)
            )
        ).scalars()
    )
    orphans = hierarchy.in_listed_order(absorb.children_ids, orphans)
    if orphans:
        await session.execute(
            update(Node).where(hierarchy.among(Node.id, orphans)).values(parent_id=keep.id),
            execution_options=NO_SYNC,
        )
        await hierarchy.attach(session, Node, "children_ids", keep.id, orphans)
    await session.execute(
        update(Cluster)
        .where(
            hierarchy.has_member(Cluster.node_ids, absorb.id),
            hierarchy.has_member(Cluster.node_ids, keep.id),
        )
        .values(node_ids=func.array_remove(Cluster.node_ids, absorb.id)),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Cluster)
        .where(hierarchy.has_member(Cluster.node_ids, absorb.id))
        .values(node_ids=func.array_replace(Cluster.node_ids, absorb.id, keep.id)),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Utterance).where(Utterance.node_id == absorb.id).values(node_id=keep.id),
        execution_options=NO_SYNC,
    )
    absorb = await reload(session, absorb.id)
    await _remove_node(session, actor, conversation, absorb, "merge")
    await session.execute(
        update(Node).where(Node.id == keep.id).values(merged), execution_options=NO_SYNC
    )
    await _claim_utterances(session, actor, conversation.id, keep.id, [], merged["utterance_ids"])
    await session.flush()
    kept = await reload(session, keep.id)
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=kept.id,
        field_name="node",
        old={"kept": before_keep, "absorbed": before_absorb},
        new=snapshot(kept),
        edit_type="merge",
    )
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=absorb_id,
        field_name="node",
        old=before_absorb,
        new={"mergedInto": str(kept.id)},
        edit_type="merge",
    )
    return kept


async def split_node(
    session: AsyncSession,
    actor: Actor,
    node_id: uuid.UUID,
    utterance_ids: list[uuid.UUID],
    values: dict[str, Any],
    kept_values: dict[str, Any],
    expected_updated_at: datetime | None = None,
) -> tuple[Node, Node]:
    """Splits off the listed utterances into a new node placed right after the original in the
    chain and among its parent's children, in the same clusters. `kept_values` (a new name or
    summary for the original) overwrite the original's, so they need its version."""
    check_node_values(values)
    try:
        check_node_values(kept_values)
    except InvalidInput as error:
        error.field = {"nodeName": "keptNodeName", "summary": "keptSummary"}.get(
            error.field or "", error.field
        )
        raise
    _require_version(kept_values, expected_updated_at)
    conversation, node = await lock_node(session, actor, node_id, "id")
    check_version(node, expected_updated_at, "node")
    own = node.utterance_ids or []
    owned, splitting = set(own), set(utterance_ids)
    if len(splitting) != len(utterance_ids):
        raise InvalidInput(
            "An utterance is listed twice.", field="utteranceIds", code=ErrorCode.DUPLICATE
        )
    for index, utterance_id in enumerate(utterance_ids):
        if utterance_id not in owned:
            raise InvalidInput(
                "That utterance is not part of the node being split.",
                field=f"utteranceIds[{index}]",
            )
    before = snapshot(node)
    remaining, moving = split_list(own, splitting)
    spans = dict(
        (row.id, (row.timestamp_start, row.timestamp_end))
        for row in (
            await session.execute(
                select(Utterance.id, Utterance.timestamp_start, Utterance.timestamp_end).where(
                    hierarchy.among(Utterance.id, own)
                )
            )
        ).all()
    )

    def span(ids: list[uuid.UUID]) -> dict[str, Any]:
        starts = [spans[item][0] for item in ids if spans.get(item, (None,))[0] is not None]
        ends = [spans[item][1] for item in ids if spans.get(item, (None, None))[1] is not None]
        if not starts or not ends:
            return {}
        return {
            "timestamp_start": min(starts),
            "timestamp_end": max(ends),
            "duration_seconds": max(ends) - min(starts),
        }

    successor_id = node.successor_id
    new_node = Node(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        parent_id=node.parent_id,
        children_ids=[],
        predecessor_id=node.id,
        successor_id=successor_id,
        level=node.level,
        node_type=node.node_type,
        chunk_ids=list(node.chunk_ids or []),
        zoom_level_visible=node.zoom_level_visible,
        canvas_x=None if node.canvas_x is None else node.canvas_x + (node.canvas_width or 350) + 40,
        canvas_y=node.canvas_y,
        canvas_width=node.canvas_width,
        canvas_height=node.canvas_height,
        utterance_ids=moving,
        **span(moving),
        **{key: values[key] for key in NODE_FIELDS if key in values},
    )
    session.add(new_node)
    await session.flush()
    await _link_after(session, new_node, node, successor_id)
    if node.parent_id is not None:
        await hierarchy.attach(
            session, Node, "children_ids", node.parent_id, [new_node.id], after=node.id
        )
    await session.execute(
        update(Cluster)
        .where(hierarchy.has_member(Cluster.node_ids, node.id))
        .values(node_ids=func.array_append(Cluster.node_ids, new_node.id)),
        execution_options=NO_SYNC,
    )
    await session.execute(
        update(Node)
        .where(Node.id == node.id)
        .values(utterance_ids=remaining, **span(remaining), **kept_values),
        execution_options=NO_SYNC,
    )
    await _claim_utterances(session, actor, conversation.id, new_node.id, [], moving)
    conversation.total_nodes = (conversation.total_nodes or 0) + 1
    await session.flush()
    original, created = await reload(session, node.id), await reload(session, new_node.id)
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=original.id,
        field_name="node",
        old=before,
        new=snapshot(original),
        edit_type="split",
    )
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="node",
        target_id=created.id,
        field_name="node",
        old={"splitFrom": str(original.id)},
        new=snapshot(created),
        edit_type="split",
    )
    return original, created
