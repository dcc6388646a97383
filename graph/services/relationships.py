"""Relationships between two nodes of one conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Node, Relationship
from graph.services import edits
from graph.services.common import (
    Actor,
    check_text,
    check_unit_interval,
    check_version,
    lock_conversation_of,
    lock_rows,
    refuse_cleared,
    snapshot,
)
from graph.services.errors import camel
from graph.services.fields import UNSET, Fields, Unset
from graph.services.hierarchy import NO_SYNC
from graph.services.node_utterances import check_utterances
from graph.services.nodes import lock_nodes


@dataclass(frozen=True)
class RelationshipFields(Fields):
    """A relationship's writable columns (see `graph.services.fields`)."""

    relationship_type: str | Unset | None = UNSET
    relationship_subtype: str | Unset | None = UNSET
    explanation: str | Unset | None = UNSET
    strength: float | Unset | None = UNSET
    confidence: float | Unset | None = UNSET
    supporting_utterance_ids: list[uuid.UUID] | Unset | None = UNSET
    is_bidirectional: bool | Unset | None = UNSET


@dataclass(frozen=True)
class CreateRelationship:
    from_node_id: uuid.UUID
    to_node_id: uuid.UUID
    fields: RelationshipFields


@dataclass(frozen=True)
class UpdateRelationship:
    id: uuid.UUID
    expected_updated_at: datetime | None
    fields: RelationshipFields


def check_relationship_values(values: dict[str, Any], prefix: str = "") -> None:
    if "relationship_type" in values:
        check_text(values["relationship_type"], prefix + "relationshipType", required=True)
    for name in ("relationship_subtype", "explanation"):
        if name in values:
            check_text(values[name], prefix + camel(name))
    check_unit_interval(values.get("strength"), prefix + "strength")
    check_unit_interval(values.get("confidence"), prefix + "confidence")


async def _reload(session: AsyncSession, relationship_id: uuid.UUID) -> Relationship:
    return (
        await session.execute(
            select(Relationship)
            .where(Relationship.id == relationship_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def create_relationship(
    session: AsyncSession, actor: Actor, command: CreateRelationship, *, log: bool = True
) -> Relationship:
    from_node_id, to_node_id = command.from_node_id, command.to_node_id
    values = command.fields.provided()
    refuse_cleared(values, Relationship)
    check_relationship_values(values)
    conversation = await lock_conversation_of(
        session, Node, from_node_id, actor.user_id, field="fromNodeId", missing="No such node."
    )
    await lock_nodes(session, conversation, [from_node_id], "fromNodeId")
    await lock_nodes(session, conversation, [to_node_id], "toNodeId")
    await check_utterances(
        session,
        conversation.id,
        values.get("supporting_utterance_ids") or [],
        "supportingUtteranceIds",
    )
    relationship = Relationship(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        from_node_id=from_node_id,
        to_node_id=to_node_id,
        **values,
    )
    session.add(relationship)
    await session.flush()
    relationship = await _reload(session, relationship.id)
    if log:
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="relationship",
            target_id=relationship.id,
            field_name="relationship",
            old=None,
            new=snapshot(relationship),
            edit_type="addition",
        )
    return relationship


async def _lock(session: AsyncSession, actor: Actor, relationship_id: uuid.UUID) -> Relationship:
    conversation = await lock_conversation_of(
        session,
        Relationship,
        relationship_id,
        actor.user_id,
        field="id",
        missing="No such relationship.",
    )
    locked = await lock_rows(
        session, Relationship, conversation, [relationship_id], "id", "relationship"
    )
    relationship: Relationship = locked[relationship_id]
    return relationship


async def update_relationship(
    session: AsyncSession, actor: Actor, command: UpdateRelationship
) -> Relationship:
    values = command.fields.provided()
    refuse_cleared(values, Relationship)
    check_relationship_values(values)
    relationship = await _lock(session, actor, command.id)
    check_version(relationship, command.expected_updated_at, "relationship")
    if "supporting_utterance_ids" in values:
        await check_utterances(
            session,
            relationship.conversation_id,
            values["supporting_utterance_ids"] or [],
            "supportingUtteranceIds",
        )
    changes: dict[str, tuple[Any, Any]] = {}
    for key, value in values.items():
        if getattr(relationship, key) != value:
            changes[key] = (getattr(relationship, key), value)
            setattr(relationship, key, value)
    edits.record_changes(
        session,
        actor,
        conversation_id=relationship.conversation_id,
        target_type="relationship",
        target_id=relationship.id,
        changes=changes,
    )
    await session.flush()
    return await _reload(session, relationship.id)


async def delete_relationship(
    session: AsyncSession, actor: Actor, relationship_id: uuid.UUID
) -> uuid.UUID:
    relationship = await _lock(session, actor, relationship_id)
    edits.record(
        session,
        actor,
        conversation_id=relationship.conversation_id,
        target_type="relationship",
        target_id=relationship.id,
        field_name="relationship",
        old=snapshot(relationship),
        new=None,
        edit_type="deletion",
    )
    await session.execute(
        delete(Relationship).where(Relationship.id == relationship.id), execution_options=NO_SYNC
    )
    session.expunge(relationship)
    await session.flush()
    return relationship_id
