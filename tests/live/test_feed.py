"""The change table: every write path records its change in the writing transaction."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.live.conftest import APPEND_UTTERANCES, OWNER, PURGE_CONVERSATION, LiveApi

CHANGES = """
SELECT position, list_position, kinds, operation, actor_id, node_ids, utterance_ids
FROM changes WHERE conversation_id = $1 ORDER BY position"""


async def test_a_committed_write_is_recorded_and_a_rolled_back_one_is_not(
    owner: LiveApi, database: asyncpg.Connection
) -> None:
    conversation = await owner.create_conversation()
    node = await owner.create_node(conversation)
    async with database.transaction():
        await database.execute("UPDATE nodes SET canvas_x = 1 WHERE id = $1", uuid.UUID(node))
        await database.execute("UPDATE nodes SET canvas_y = 2 WHERE id = $1", uuid.UUID(node))
    try:
        async with database.transaction():
            await database.execute("UPDATE nodes SET canvas_x = 9 WHERE id = $1", uuid.UUID(node))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    rows = await database.fetch(CHANGES, uuid.UUID(conversation))
    assert [row["position"] for row in rows] == [1, 2, 3]
    created, node_created, moved = rows
    assert created["operation"] == "createConversation" and created["actor_id"] == OWNER
    assert created["list_position"] is not None
    assert node_created["operation"] == "createNode"
    assert node_created["node_ids"] == [uuid.UUID(node)]
    assert node_created["list_position"] is None
    # One change per transaction: two statements, one row, the node named once per statement.
    assert moved["kinds"] == ["nodes.UPDATE"] and moved["actor_id"] is None
    assert set(moved["node_ids"]) == {uuid.UUID(node)}


async def test_utterances_import_and_purge_are_recorded(
    owner: LiveApi, database: asyncpg.Connection
) -> None:
    conversation = await owner.create_conversation()
    await owner.mutate(
        APPEND_UTTERANCES,
        conversationId=conversation,
        utterances=[
            {"sequenceNumber": 1, "text": "hello", "speakerId": "s1"},
            {"sequenceNumber": 2, "text": "there", "speakerId": "s2"},
        ],
    )
    exported = await owner.gql(
        "query($id: ID!) { conversationExport(id: $id) { __typename"
        " ... on ConversationExport { document } } }",
        id=conversation,
    )
    document = exported["conversationExport"]["document"]
    imported = await owner.mutate(
        "mutation($document: JSON!) { importConversation(document: $document) { __typename"
        " ... on ImportConversationPayload { conversation { id } } ... on UserError { code } } }",
        document=document,
    )
    copy = uuid.UUID(imported["conversation"]["id"])
    await owner.mutate(PURGE_CONVERSATION, id=conversation)

    rows = await database.fetch(CHANGES, uuid.UUID(conversation))
    assert [row["operation"] for row in rows] == [
        "createConversation",
        "appendUtterances",
        "purgeConversation",
    ]
    assert len(rows[1]["utterance_ids"]) == 2
    assert rows[2]["kinds"][0] == "conversations.DELETE"
    # The purge names none of the rows its cascade deleted.
    assert rows[2]["utterance_ids"] == [] and rows[2]["list_position"] is not None
    (imported_change,) = await database.fetch(CHANGES, copy)
    assert imported_change["operation"] == "importConversation"
    assert len(imported_change["utterance_ids"]) == 2


async def test_pruning_deletes_only_changes_older_than_the_retention_window(
    owner: LiveApi, database: asyncpg.Connection, live_database: Any
) -> None:
    from db.session import create_engine, create_session_factory
    from db.settings import Settings
    from graph.live import Feed

    conversation = await owner.create_conversation()
    for _ in range(3):
        await owner.create_node(conversation)
    await database.execute(
        "UPDATE changes SET created_at = now() - interval '2 hours'"
        " WHERE conversation_id = $1::uuid AND position <= 2",
        conversation,
    )
    engine = create_engine(live_database, Settings(_env_file=None))
    try:
        pruned = await Feed(create_session_factory(engine)).prune(retention_seconds=3600)
    finally:
        await engine.dispose()
    assert pruned >= 2
    rows = await database.fetch(CHANGES, uuid.UUID(conversation))
    assert [row["position"] for row in rows] == [3, 4]
