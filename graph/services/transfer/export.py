"""A conversation as a document: its columns and every row of its sections, in a stable order."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Cluster, Edit, Node, Relationship, Utterance
from graph.services.common import Actor, lock_conversation, snapshot
from graph.services.errors import camel
from graph.services.transfer.document import (
    CONVERSATION_SKIP,
    FORMAT,
    MODELS,
    ROW_SKIP,
    VERSION,
)

ORDER: dict[str, Any] = {
    "utterances": (Utterance.sequence_number,),
    "nodes": (Node.created_at, Node.id),
    "relationships": (Relationship.created_at, Relationship.id),
    "clusters": (Cluster.level, Cluster.created_at, Cluster.id),
    "edits": (Edit.created_at, Edit.id),
}


async def export_conversation(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> dict[str, Any]:
    conversation = await lock_conversation(
        session, conversation_id, actor.user_id, include_deleted=True
    )
    conversation_skipped = {camel(name) for name in CONVERSATION_SKIP}
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "conversation": {
            key: value
            for key, value in snapshot(conversation).items()
            if key not in conversation_skipped
        },
    }
    row_skipped = {camel(name) for name in ROW_SKIP}
    for section, model in MODELS.items():
        rows = (
            await session.execute(
                select(model)
                .where(model.conversation_id == conversation.id)
                .order_by(*ORDER[section])
            )
        ).scalars()
        document[section] = [
            {key: value for key, value in snapshot(row).items() if key not in row_skipped}
            for row in rows
        ]
    return document
