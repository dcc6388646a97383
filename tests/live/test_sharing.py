"""Subscribers with the same document, variables and viewer share one resolution per change."""

from __future__ import annotations

from typing import Any

from tests.live.conftest import SHARED, LiveApi, Subscriber


async def next_message(subscriber: Subscriber, operation_id: str) -> dict[str, Any]:
    message = await subscriber.receive()
    assert (message["id"], message["type"]) == (operation_id, "next"), message
    return message["payload"]


async def test_sql_per_change_does_not_grow_with_subscribers_who_share(
    live_server: str, owner: LiveApi
) -> None:
    conversation = await owner.create_conversation(visibility="SHARED", sharedWith=[SHARED])
    node = await owner.create_node(conversation)
    alone = await (await Subscriber.connect(live_server)).acknowledged()
    await alone.subscribe("1", id=conversation)
    await alone.silent(0.3)
    await owner.move(node, 1, 1)
    single = (await next_message(alone, "1"))["extensions"]
    await alone.close()

    crowd = [await (await Subscriber.connect(live_server)).acknowledged() for _ in range(3)]
    other = await (await Subscriber.connect(live_server, SHARED)).acknowledged()
    try:
        for subscriber in crowd:
            await subscriber.subscribe("a", id=conversation)
            await subscriber.subscribe("b", id=conversation)
        await other.subscribe("1", id=conversation)
        await other.silent(0.3)
        await owner.move(node, 2, 2)
        payloads = []
        for subscriber in crowd:
            messages = [await subscriber.receive() for _ in range(2)]
            assert sorted(message["id"] for message in messages) == ["a", "b"], messages
            payloads += [message["payload"] for message in messages]
        assert {payload["extensions"]["sharedBy"] for payload in payloads} == {6}
        assert {payload["extensions"]["sqlStatements"] for payload in payloads} == {
            single["sqlStatements"]
        }
        assert single["sharedBy"] == 1
        # Another viewer is another group: resolved for them, with their visibility.
        theirs = await next_message(other, "1")
        assert theirs["extensions"]["sharedBy"] == 1
        assert theirs["data"] == payloads[0]["data"]
    finally:
        for subscriber in [*crowd, other]:
            await subscriber.close()
