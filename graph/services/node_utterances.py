"""Which node an utterance belongs to: at most one. `utterances.node_id` follows the node's
`utterance_ids`; the caller has locked the conversation."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Node, Utterance
from graph.services import edits, hierarchy
from graph.services.common import Actor
from graph.services.errors import ErrorCode, InvalidInput, NotFound
from graph.services.hierarchy import NO_SYNC


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


async def claim_utterances(
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
