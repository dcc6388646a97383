"""conversationChanged over graphql-transport-ws: live events, resuming with `since`."""

from __future__ import annotations

import asyncpg

from tests.live.conftest import CONVERSATIONS_CHANGED, OWNER, LiveApi, Subscriber


async def test_changes_arrive_as_they_commit(live_server: str, owner: LiveApi) -> None:
    conversation = await owner.create_conversation()
    subscriber = await (await Subscriber.connect(live_server)).acknowledged()
    try:
        await subscriber.subscribe("1", id=conversation)
        await subscriber.silent(0.5)
        node = await owner.create_node(conversation, "first", canvasX=10, canvasY=20)
        created = await subscriber.event()
        assert created["kind"] == "NODE_CREATED"
        assert created["actorId"] == OWNER and created["operation"] == "createNode"
        assert created["nodeIds"] == [node]
        assert created["nodes"] == [
            {
                "id": node,
                "nodeName": "first",
                "canvasX": 10,
                "canvasY": 20,
                "canvasWidth": 350,
                "canvasHeight": 200,
            }
        ]
        assert created["conversation"] == {"id": conversation, "conversationName": "live"}
        await owner.move(node, 30, 40)
        moved = await subscriber.event()
        assert moved["kind"] == "NODES_MOVED"
        assert (moved["nodes"][0]["canvasX"], moved["nodes"][0]["canvasY"]) == (30, 40)
        assert moved["cursor"] > created["cursor"]
    finally:
        await subscriber.close()


async def test_resuming_since_a_cursor_sends_exactly_what_was_missed(
    live_server: str, owner: LiveApi
) -> None:
    conversation = await owner.create_conversation()
    subscriber = await (await Subscriber.connect(live_server)).acknowledged()
    await subscriber.subscribe("1", id=conversation)
    await subscriber.silent(0.3)
    node = await owner.create_node(conversation)
    seen = (await subscriber.event())["cursor"]
    await subscriber.close()

    for x in range(3):
        await owner.move(node, x, x)
    resumed = await (await Subscriber.connect(live_server)).acknowledged()
    try:
        await resumed.subscribe("a", id=conversation, since=seen)
        missed = [await resumed.event("a") for _ in range(3)]
        assert [event["kind"] for event in missed] == ["NODES_MOVED"] * 3
        # The touched objects as they are now, not as they were.
        assert [event["nodes"][0]["canvasX"] for event in missed] == [2, 2, 2]
        assert [event["cursor"] for event in missed] == sorted({e["cursor"] for e in missed})
        assert missed[0]["cursor"] > seen
        await resumed.silent(0.5)
        await owner.move(node, 7, 7)
        assert (await resumed.event("a"))["nodes"][0]["canvasX"] == 7
    finally:
        await resumed.close()


async def test_a_cursor_older_than_the_retention_window_is_an_error(
    live_server: str, owner: LiveApi, database: asyncpg.Connection
) -> None:
    conversation = await owner.create_conversation()
    node = await owner.create_node(conversation)
    await owner.move(node, 1, 1)
    first = await database.fetchval(
        "SELECT min(position) FROM changes WHERE conversation_id = $1::uuid", conversation
    )
    await database.execute(
        "DELETE FROM changes WHERE conversation_id = $1::uuid AND position <= $2",
        conversation,
        first + 1,
    )
    subscriber = await (await Subscriber.connect(live_server)).acknowledged()
    try:
        await subscriber.subscribe("1", id=conversation, since=f"{first:016x}")
        message = await subscriber.receive()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "CURSOR_EXPIRED"
    finally:
        await subscriber.close()


async def test_the_conversation_list_stream(
    live_server: str, owner: LiveApi, shared_user: LiveApi
) -> None:
    bob = await (await Subscriber.connect(live_server, "bob")).acknowledged()
    alice = await (await Subscriber.connect(live_server)).acknowledged()
    try:
        await bob.subscribe("list", CONVERSATIONS_CHANGED)
        await alice.subscribe("list", CONVERSATIONS_CHANGED)
        await bob.silent(0.3)
        conversation = await owner.create_conversation("picker")
        created = await alice.event("list")
        assert (created["kind"], created["conversationId"]) == ("CREATED", conversation)
        await owner.share(conversation, "SHARED", ["bob"])
        assert (await alice.event("list"))["kind"] == "UPDATED"
        shared = await bob.event("list")
        assert shared["kind"] == "SHARED_WITH_ME"
        assert shared["conversation"] == {"id": conversation, "conversationName": "picker"}
        await owner.share(conversation, "PRIVATE", [])
        unshared = await bob.event("list")
        assert (unshared["kind"], unshared["conversation"]) == ("UNSHARED", None)
        await bob.silent(0.5)
    finally:
        await bob.close()
        await alice.close()
