"""Merging two nodes into one and splitting one in two, keeping every reference consistent (see
`graph.services.nodes`): the hierarchy, the timeline, relationships, cluster memberships and the
utterances each node claims. Both are logged as `merge` / `split` edits holding the nodes before
and after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Cluster, Node, Relationship, Utterance
from graph.services import edits, hierarchy
from graph.services.common import (
    Actor,
    check_version,
    lock_conversation_of,
    snapshot,
)
from graph.services.errors import ErrorCode, InvalidInput
from graph.services.fields import UNSET, Unset
from graph.services.hierarchy import NO_SYNC
from graph.services.node_tree import adopt_children, hang_under
from graph.services.node_utterances import claim_utterances
from graph.services.nodes import (
    check_node_values,
    lock_node,
    lock_nodes,
    reload,
    remove_node,
)
from graph.services.timeline import link_after


def union(*lists: list[Any] | None) -> list[Any]:
    """The items of every list, each once, in order of first appearance."""
    return list(dict.fromkeys(item for items in lists for item in items or []))


def split_list(items: list[Any], chosen: set[Any]) -> tuple[list[Any], list[Any]]:
    """`items` not in `chosen`, and those in it, each in the order of `items`."""
    kept = [item for item in items if item not in chosen]
    return kept, [item for item in items if item in chosen]


def require_version(overwrites: dict[str, Any], expected_updated_at: datetime | None) -> None:
    """A merge or split that overwrites the name or summary a client read must say which version
    it read, as `updateNode` does; otherwise a concurrent rename would be lost without a trace."""
    if overwrites and expected_updated_at is None:
        raise InvalidInput(
            "expectedUpdatedAt is required to change the node's name or summary.",
            field="expectedUpdatedAt",
            code=ErrorCode.REQUIRED,
        )


@dataclass(frozen=True)
class MergeNodes:
    """Folds `absorbed_node_id` into `kept_node_id`: utterances, children, relationships, cluster
    memberships and the chain position pass to the kept node; the absorbed node is deleted. A new
    `node_name` or `summary` overwrites the kept node's, so it needs `expected_updated_at`."""

    kept_node_id: uuid.UUID
    absorbed_node_id: uuid.UUID
    node_name: str | Unset = UNSET
    summary: str | Unset = UNSET
    expected_updated_at: datetime | None = None


@dataclass(frozen=True)
class SplitNode:
    """Splits off `utterance_ids` into a new node (`node_name`, `summary`) placed right after the
    original in the chain and among its parent's children, in the same clusters. A new name or
    summary for the original overwrites its own, so it needs `expected_updated_at`."""

    id: uuid.UUID
    utterance_ids: tuple[uuid.UUID, ...]
    node_name: str
    summary: str
    kept_node_name: str | Unset = UNSET
    kept_summary: str | Unset = UNSET
    expected_updated_at: datetime | None = None


def _sent(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not UNSET}


async def merge_nodes(session: AsyncSession, actor: Actor, command: MergeNodes) -> Node:
    keep_id, absorb_id = command.kept_node_id, command.absorbed_node_id
    expected_updated_at = command.expected_updated_at
    values = _sent(node_name=command.node_name, summary=command.summary)
    check_node_values(values)
    require_version(values, expected_updated_at)
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
        "utterance_ids": union(keep.utterance_ids, absorb.utterance_ids),
        "chunk_ids": union(keep.chunk_ids, absorb.chunk_ids),
        "claim_ids": union(keep.claim_ids, absorb.claim_ids),
        "key_points": union(keep.key_points, absorb.key_points),
        "zoom_level_visible": union(keep.zoom_level_visible, absorb.zoom_level_visible) or None,
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
    await adopt_children(session, keep, absorb)
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
    await remove_node(session, actor, conversation, absorb, "merge")
    await session.execute(
        update(Node).where(Node.id == keep.id).values(merged), execution_options=NO_SYNC
    )
    await claim_utterances(session, actor, conversation.id, keep.id, [], merged["utterance_ids"])
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


async def split_node(session: AsyncSession, actor: Actor, command: SplitNode) -> tuple[Node, Node]:
    node_id, utterance_ids = command.id, list(command.utterance_ids)
    expected_updated_at = command.expected_updated_at
    values = {"node_name": command.node_name, "summary": command.summary}
    kept_values = _sent(node_name=command.kept_node_name, summary=command.kept_summary)
    check_node_values(values)
    try:
        check_node_values(kept_values)
    except InvalidInput as error:
        error.field = {"nodeName": "keptNodeName", "summary": "keptSummary"}.get(
            error.field or "", error.field
        )
        raise
    require_version(kept_values, expected_updated_at)
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
        **values,
    )
    session.add(new_node)
    await session.flush()
    await link_after(session, new_node, node, successor_id)
    await hang_under(session, node.parent_id, [new_node.id], after=node.id)
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
    await claim_utterances(session, actor, conversation.id, new_node.id, [], moving)
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
