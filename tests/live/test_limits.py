"""Limits and resources: per connection, per process, init deadline, message size, document
limits, idle subscribers without database connections, and slow consumers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import websockets
from sqlalchemy.engine import URL

from tests.conftest import LiveServer
from tests.live.conftest import (
    APPEND_UTTERANCES,
    CONVERSATION_CHANGED,
    LiveApi,
    Subscriber,
    live_settings,
)
from tests.live.test_authorisation import closed_with


@pytest.fixture(scope="module")
async def limited(live_database: URL) -> AsyncIterator[str]:
    server = LiveServer(
        live_settings(
            live_database,
            live_max_subscriptions=2,
            live_max_connections=4,
            live_init_timeout_seconds=1,
            live_max_message_bytes=2_000,
            live_queue_size=4,
            max_depth=4,
            max_aliases=2,
            live_poll_seconds=0.5,
        )
    )
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture
async def api(limited: str) -> AsyncIterator[LiveApi]:
    client = LiveApi(limited, "alice")
    yield client
    await client.close()


async def test_subscriptions_per_connection(limited: str, api: LiveApi) -> None:
    conversation = await api.create_conversation()
    subscriber = await (await Subscriber.connect(limited)).acknowledged()
    try:
        await subscriber.subscribe("1", id=conversation)
        await subscriber.subscribe("2", id=conversation)
        await subscriber.subscribe("3", id=conversation)
        refused = await subscriber.receive()
        assert (refused["id"], refused["type"]) == ("3", "error")
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        await subscriber.send({"id": "1", "type": "complete"})
        await asyncio.sleep(0.2)
        await subscriber.subscribe("3", id=conversation)
        await subscriber.silent(0.5)
        await api.create_node(conversation)
        received = {(await subscriber.receive())["id"] for _ in range(2)}
        assert received == {"2", "3"}
    finally:
        await subscriber.close()


async def test_connections_per_process(limited: str) -> None:
    open_ = [await (await Subscriber.connect(limited)).acknowledged() for _ in range(4)]
    try:
        extra = await websockets.connect(
            limited.replace("http", "ws", 1) + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        )
        assert await closed_with(Subscriber(extra)) == (1013, "Too many connections")
    finally:
        for subscriber in open_:
            await subscriber.close()
    await asyncio.sleep(0.3)
    again = await (await Subscriber.connect(limited)).acknowledged()
    await again.close()


async def test_connection_init_deadline(limited: str) -> None:
    socket = await websockets.connect(
        limited.replace("http", "ws", 1) + "/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    assert await closed_with(Subscriber(socket)) == (4408, "Connection initialisation timeout")


async def test_message_size(limited: str, api: LiveApi) -> None:
    subscriber = await (await Subscriber.connect(limited)).acknowledged()
    await subscriber.subscribe("1", CONVERSATION_CHANGED + " " * 2_000, id="x")
    code, _ = await closed_with(subscriber)
    assert code == 1009


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (
            "subscription($id: ID!) { conversationChanged(id: $id) { nodes { parent { parent"
            " { parent { parent { id } } } } } } }",
            "QUERY_TOO_DEEP",
        ),
        (
            "subscription($id: ID!) { conversationChanged(id: $id) { a: cursor b: cursor"
            " c: cursor } }",
            "TOO_MANY_ALIASES",
        ),
        ("subscription { conversationChanged { cursor } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_subscription_documents_pass_the_query_limits(
    limited: str, api: LiveApi, document: str, code: str
) -> None:
    conversation = await api.create_conversation()
    subscriber = await (await Subscriber.connect(limited)).acknowledged()
    try:
        await subscriber.subscribe("1", document, id=conversation)
        refused = await subscriber.receive()
        assert refused["type"] == "error", refused
        codes = [(error.get("extensions") or {}).get("code") for error in refused["payload"]]
        if code == "GRAPHQL_VALIDATION_FAILED":
            assert "conversationChanged(id:)" in refused["payload"][0]["message"], refused
        else:
            assert code in codes, refused
    finally:
        await subscriber.close()


async def test_idle_subscribers_hold_no_database_connection(
    live_server: str, owner: LiveApi, database: asyncpg.Connection
) -> None:
    # Connections busy or in a transaction. The process's poll of the counters (one per process,
    # not per subscriber) may be running at any moment: at most one, and not in every sample.
    count = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND state <> 'idle' AND pid <> pg_backend_pid()"
    )
    conversations = [await owner.create_conversation() for _ in range(5)]
    subscribers = [await (await Subscriber.connect(live_server)).acknowledged() for _ in range(3)]
    try:
        for index, subscriber in enumerate(subscribers):
            for number, conversation in enumerate(conversations):
                await subscriber.subscribe(f"{index}-{number}", id=conversation)
        await asyncio.sleep(1.5)
        # Fifteen subscriptions, and no connection busy or idle in a transaction for them.
        samples = []
        for _ in range(10):
            samples.append({row["pid"] for row in await database.fetch(count)})
            await asyncio.sleep(0.1)
        assert max(len(sample) for sample in samples) <= 1, samples
        assert set.intersection(*samples) == set(), samples
    finally:
        for subscriber in subscribers:
            await subscriber.close()


class RawWebSocket:
    """A WebSocket client on a bare socket with a small receive buffer, which reads only when
    told to: a consumer as slow as a test needs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, base_url: str) -> RawWebSocket:
        port = int(base_url.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16_384)
        writer.write(
            b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer)

    async def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def frame(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload); (8, b"") at the end of the stream."""
        try:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return 8, b""


async def test_a_slow_consumer_is_disconnected(limited: str, api: LiveApi) -> None:
    conversation = await api.create_conversation()
    slow = await RawWebSocket.connect(limited)
    await slow.send(
        {
            "type": "connection_init",
            "payload": {"Authorization": api.client.headers["authorization"]},
        }
    )
    assert json.loads((await slow.frame())[1]) == {"type": "connection_ack"}
    await slow.send(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {
                "query": "subscription($id: ID!) { conversationChanged(id: $id) { utterances"
                " { text } } }",
                "variables": {"id": conversation},
            },
        }
    )
    await asyncio.sleep(0.5)
    text = "word " * 19_000  # 190 KB per event
    changes = 60
    for number in range(changes):
        await api.mutate(
            APPEND_UTTERANCES,
            conversationId=conversation,
            utterances=[
                {"sequenceNumber": 2 * number + offset, "text": text, "speakerId": "s"}
                for offset in (0, 1)
            ],
        )
    await asyncio.sleep(2)
    # Now read what the server sent before it gave up on this client.
    events = 0
    while True:
        opcode, payload = await asyncio.wait_for(slow.frame(), 30)
        if opcode == 8:
            break
        events += 1
    assert events < changes
    assert payload[:2] in (b"", struct.pack("!H", 1008)), payload
    slow.writer.close()
