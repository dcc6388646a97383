"""The temporal chain of a conversation's nodes: doubly linked, `a.successor_id = b` exactly when
`b.predecessor_id = a`. The caller has locked the nodes it names."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Node
from graph.services.hierarchy import NO_SYNC


async def link_after(
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


async def unlink(session: AsyncSession, node: Node) -> None:
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
