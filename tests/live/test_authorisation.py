"""Who may subscribe, and for how long: connection_init tokens, visibility, Origin."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import websockets

from tests.conftest import LiveServer
from tests.live.conftest import (
    DELETE_CONVERSATION,
    OTHER,
    PURGE_CONVERSATION,
    SHARED,
    LiveApi,
    Subscriber,
    live_settings,
    token,
)


async def closed_with(subscriber: Subscriber) -> tuple[int | None, str]:
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        await subscriber.receive(timeout=15)
    received = closed.value.rcvd
    assert received is not None
    return received.code, received.reason


async def test_a_bad_token_closes_the_socket_with_4403(live_server: str) -> None:
    for payload in (
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {token('alice', expires_in=-60)}"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ):
        subscriber = await Subscriber.connect(live_server, payload=payload)
        assert await closed_with(subscriber) == (4403, "Forbidden")


async def test_subscribing_before_connection_init_closes_with_4401(live_server: str) -> None:
    socket = await websockets.connect(
        live_server.replace("http", "ws", 1) + "/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    subscriber = Subscriber(socket)
    await subscriber.subscribe("1", id=str(uuid.uuid4()))
    assert await closed_with(subscriber) == (4401, "Unauthorized")


async def test_the_token_expiry_ends_the_connection(live_server: str, owner: LiveApi) -> None:
    conversation = await owner.create_conversation()
    short = {"Authorization": f"Bearer {token('alice', expires_in=2)}"}
    subscriber = await (await Subscriber.connect(live_server, payload=short)).acknowledged()
    await subscriber.subscribe("1", id=conversation)
    assert await closed_with(subscriber) == (4403, "Token expired")


async def test_an_invisible_conversation_is_reported_as_missing(
    live_server: str, owner: LiveApi
) -> None:
    private = await owner.create_conversation()
    subscriber = await (await Subscriber.connect(live_server, OTHER)).acknowledged()
    try:
        await subscriber.subscribe("invisible", id=private)
        invisible = await subscriber.receive()
        await subscriber.subscribe("missing", id=str(uuid.uuid4()))
        missing = await subscriber.receive()
        assert invisible == {**missing, "id": "invisible"}
        assert missing["type"] == "error"
        assert missing["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        await subscriber.close()


@pytest.mark.parametrize("how", ["unshared", "made private", "deleted", "purged"])
async def test_a_stream_ends_when_the_conversation_stops_being_visible(
    live_server: str, owner: LiveApi, how: str
) -> None:
    conversation = await owner.create_conversation(
        visibility="PUBLIC" if how == "made private" else "SHARED",
        sharedWith=[SHARED],
    )
    node = await owner.create_node(conversation)
    subscriber = await (await Subscriber.connect(live_server, SHARED)).acknowledged()
    try:
        await subscriber.subscribe("1", id=conversation)
        await subscriber.silent(0.3)
        await owner.move(node, 1, 1)
        assert (await subscriber.event())["kind"] == "NODES_MOVED"
        if how == "unshared":
            await owner.share(conversation, "SHARED", [])
        elif how == "made private":
            await owner.share(conversation, "PRIVATE", [SHARED])
        elif how == "deleted":
            await owner.mutate(DELETE_CONVERSATION, id=conversation)
        else:
            await owner.mutate(PURGE_CONVERSATION, id=conversation)
        final = await subscriber.receive()
        assert final["type"] == "error" and final["id"] == "1", final
        assert final["payload"][0]["extensions"]["code"] == "CONVERSATION_UNAVAILABLE"
        if how in ("unshared", "made private"):
            await owner.move(node, 2, 2)
        await subscriber.silent(1.0)
    finally:
        await subscriber.close()


async def test_the_handshake_origin_must_be_allowed(live_database) -> None:
    server = LiveServer(live_settings(live_database, cors_origins=["https://canvas.example"]))
    await server.start()
    base = server.url.replace("http", "ws", 1) + "/graphql"
    protocols = [websockets.Subprotocol("graphql-transport-ws")]
    try:
        for origin in ("https://canvas.example", server.url):
            async with websockets.connect(base, subprotocols=protocols, origin=origin) as socket:
                assert socket.subprotocol == "graphql-transport-ws"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(
                base, subprotocols=protocols, origin="https://evil.example"
            ):
                pass
        assert refused.value.response.status_code == 403
    finally:
        await server.stop()


async def test_development_mode_serves_loopback_websockets_only(live_database) -> None:
    server = LiveServer(live_settings(live_database, jwt_secret=None))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /graphql HTTP/1.1\r\nHost: attacker.example\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.split()[1] == b"403", status
        local = await (await Subscriber.connect(server.url, payload={})).acknowledged()
        await local.close()
    finally:
        await server.stop()
