"""The one mapping from PostgreSQL violations to typed errors, fed real violations."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.exc import DBAPIError

from db.models import Node
from graph.errors import ErrorCode, InvalidInput, NotFound, from_database_error

CONVERSATION = (
    "INSERT INTO conversations (id, conversation_name, conversation_type, source_type, "
    "started_at, owner_id) VALUES (:id, 'c', 'chat', 's', now(), 'o')"
)


@pytest.mark.parametrize(
    ("statement", "kind", "field", "code"),
    [
        (
            "INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids) "
            "VALUES (gen_random_uuid(), 'n', 's', '{}')",
            NotFound,
            "conversationId",
            ErrorCode.NOT_FOUND,
        ),
        (
            "INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids) "
            "VALUES (:id, NULL, 's', '{}')",
            InvalidInput,
            "nodeName",
            ErrorCode.REQUIRED,
        ),
        (
            "INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids, dialogue_type) "
            "VALUES (:id, 'n', 's', '{}', 'shouting')",
            InvalidInput,
            "dialogueType",
            ErrorCode.INVALID,
        ),
        (
            "INSERT INTO utterances (conversation_id, text, speaker_id, sequence_number) "
            "VALUES (:id, 't', 's', 1), (:id, 't', 's', 1)",
            InvalidInput,
            "sequenceNumber",
            ErrorCode.DUPLICATE,
        ),
        (
            # Hand-written SQL with the value inline: no bound value names the column.
            "INSERT INTO nodes (conversation_id, node_name, summary, chunk_ids, canvas_x) "
            "VALUES (:id, 'n', 's', '{}', 2147483648)",
            InvalidInput,
            None,
            ErrorCode.OUT_OF_RANGE,
        ),
        # Statements as the services generate them: the column is read from the bound values.
        (
            lambda id: insert(Node.__table__).values(
                conversation_id=id, node_name="n", summary="s", chunk_ids=[], canvas_x=2**31
            ),
            InvalidInput,
            "canvasX",
            ErrorCode.OUT_OF_RANGE,
        ),
        (
            lambda id: insert(Node.__table__).values(
                conversation_id=id, node_name="a\x00b", summary="s", chunk_ids=[]
            ),
            InvalidInput,
            "nodeName",
            ErrorCode.INVALID,
        ),
        (
            lambda id: insert(Node.__table__).values(
                conversation_id=id,
                node_name="n",
                summary="s",
                chunk_ids=[],
                speaker_info={"a": "b\x00c"},
            ),
            InvalidInput,
            "speakerInfo",
            ErrorCode.INVALID,
        ),
        (
            lambda id: (
                update(Node.__table__)
                .where(Node.__table__.c.conversation_id == id)
                .values(summary="s\x00", level=2)
            ),
            InvalidInput,
            "summary",
            ErrorCode.INVALID,
        ),
        (
            lambda id: (
                insert(Node.__table__),
                [
                    {"conversation_id": id, "node_name": "n", "summary": "s", "chunk_ids": []},
                    {"conversation_id": id, "node_name": "n", "summary": "s\x00", "chunk_ids": []},
                ],
            ),
            InvalidInput,
            "summary",
            ErrorCode.INVALID,
        ),
    ],
)
async def test_violations_become_typed_errors(engine, statement, kind, field, code) -> None:
    conversation_id = uuid.uuid4()
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text(CONVERSATION), {"id": conversation_id})
        with pytest.raises(DBAPIError) as caught:
            await connection.execute(*_executable(statement, conversation_id))
        await transaction.rollback()
    mapped = from_database_error(caught.value)
    assert isinstance(mapped, kind)
    assert (mapped.field, mapped.code) == (field, code)
    for leak in ("INSERT", "violates", "constraint", "asyncpg", "nodes_", "utterances_"):
        assert leak not in mapped.message


def _executable(statement: Any, conversation_id: uuid.UUID) -> tuple[Any, ...]:
    if isinstance(statement, str):
        return text(statement), {"id": conversation_id}
    built = statement(conversation_id)
    return built if isinstance(built, tuple) else (built,)


async def test_faults_are_not_the_clients(engine) -> None:
    """A syntax error (a bug) is not turned into a user error: it stays a fault, masked later."""
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError) as caught:
            await connection.execute(text("SELEC 1"))
    assert from_database_error(caught.value) is None
