"""The node hierarchy: `parent_id` and the parent's `children_ids` always agree, and it has no
cycle. The caller has locked the conversation and the nodes it names."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Node
from graph.services import hierarchy
from graph.services.hierarchy import NO_SYNC


async def hang_under(
    session: AsyncSession,
    parent_id: uuid.UUID | None,
    node_ids: list[uuid.UUID],
    *,
    after: uuid.UUID | None = None,
) -> None:
    """Lists new children of `parent_id` (their `parent_id` is set already): last, or right after
    the child `after`."""
    if parent_id is not None:
        await hierarchy.attach(session, Node, "children_ids", parent_id, node_ids, after=after)


async def reparent(session: AsyncSession, node: Node, parent_id: uuid.UUID | None) -> None:
    """Moves `node` under `parent_id` (None: a root), refusing a cycle."""
    if parent_id is not None:
        await hierarchy.refuse_cycle(session, Node, "parent_id", node.id, parent_id, "parentId")
    await hierarchy.detach(session, Node, "children_ids", node.id)
    await hang_under(session, parent_id, [node.id])
    node.parent_id = parent_id


async def lift_children(session: AsyncSession, node: Node) -> None:
    """Before `node` goes: its children take its place under its parent, in its listed order."""
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


async def adopt_children(session: AsyncSession, keep: Node, absorb: Node) -> None:
    """Before `absorb` is merged into `keep`: its children move under `keep`; if `keep` was one of
    them it takes `absorb`'s place instead."""
    if keep.parent_id == absorb.id:
        await hierarchy.detach(session, Node, "children_ids", keep.id)
        await session.execute(
            update(Node).where(Node.id == keep.id).values(parent_id=absorb.parent_id),
            execution_options=NO_SYNC,
        )
        await hang_under(session, absorb.parent_id, [keep.id], after=absorb.id)
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
