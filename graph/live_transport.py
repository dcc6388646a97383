"""The two subscription transports: graphql-transport-ws at `/graphql`, graphql-sse at
`/graphql/stream`.

WebSocket (the protocol of the `graphql-ws` client library): the handshake's `Origin` must be
the server's own or one of `LCT_CORS_ORIGINS`, and in local development mode the connection must
be loopback, as for HTTP. `connection_init` must arrive within `LCT_LIVE_INIT_TIMEOUT_SECONDS`
and carries `{"Authorization": "Bearer <token>"}`, verified as HTTP requests are: a bad token
closes the socket with 4403, and the token's expiry closes it with 4403 too. Each connection
holds at most `LCT_LIVE_MAX_SUBSCRIPTIONS` subscriptions, each process at most
`LCT_LIVE_MAX_CONNECTIONS` connections, and a message is at most `LCT_LIVE_MAX_MESSAGE_BYTES`.
Outgoing messages wait in one bounded queue per connection (`LCT_LIVE_QUEUE_SIZE`); a client
that does not read them is disconnected (1008, "slow consumer") instead of growing memory.

SSE follows graphql-sse's "distinct connections" mode: one POST per subscription, with
`Accept: text/event-stream`, authenticated by the request's Authorization header; the response is
a stream of `event: next` / `event: complete` messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from db.settings import Settings, resolve_database_url
from graph.auth import AuthenticationError, Authenticator, is_loopback_host
from graph.http import _headers, _host_name, error_response, viewer_of
from graph.observability import count_slow_consumer
from graph.subscriptions import Live, Subscriber, error

logger = logging.getLogger("lct.live")

PROTOCOL = "graphql-transport-ws"
INVALID_MESSAGE = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
SUBPROTOCOL_NOT_ACCEPTABLE = 4406
INIT_TIMEOUT = 4408
SUBSCRIBER_EXISTS = 4409
TOO_MANY_INITIALISATIONS = 4429
INTERNAL_ERROR = 4500
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
SSE_KEEPALIVE_SECONDS = 15.0
CLOSE_TIMEOUT_SECONDS = 5.0


def token_expiry(authorization: str | None) -> float | None:
    """The `exp` of a bearer token the authenticator accepted (its signature is checked)."""
    if not authorization:
        return None
    _, _, token = authorization.strip().partition(" ")
    try:
        expiry = jwt.decode(token.strip(), options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(expiry) if isinstance(expiry, int | float) else None


def origin_allowed(headers: Mapping[str, str], settings: Settings) -> bool:
    """No `Origin` (not a browser), the server's own origin, or one of LCT_CORS_ORIGINS."""
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin in settings.cors_origins or "*" in settings.cors_origins:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def loopback_only(scope: Scope, headers: Mapping[str, str]) -> bool:
    for address in (scope.get("server"), scope.get("client")):
        if address is not None and not is_loopback_host(address[0]):
            return False
    host = headers.get("host")
    return host is None or is_loopback_host(_host_name(host))


class WebSocketConnection:
    """One graphql-transport-ws connection: its subscriptions and its outgoing messages.

    An idle connection holds one task, the one uvicorn runs it in, reading: the messages waiting
    to be written and the task writing them exist only while there is something to write, so
    that thousands of idle subscribers cost little memory each.
    """

    __slots__ = (
        "acknowledged",
        "authenticator",
        "closed",
        "expiry",
        "live",
        "outgoing",
        "receive",
        "send",
        "serving",
        "settings",
        "subscriptions",
        "tasks",
        "viewer_id",
        "waiting_for_client",
        "writer",
    )

    def __init__(
        self, live: Live, authenticator: Authenticator, receive: Receive, send: Send
    ) -> None:
        self.live = live
        self.settings = live.settings
        self.authenticator = authenticator
        self.receive = receive
        self.send = send
        self.outgoing: collections.deque[str] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.subscriptions: dict[str, Subscriber | None] = {}
        self.viewer_id: str | None = None
        self.acknowledged = False
        self.closed = False
        self.expiry: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.serving: asyncio.Task[Any] | None = None
        self.waiting_for_client = False

    # -- Sink -----------------------------------------------------------------------------------

    def _put(self, text: str) -> None:
        if self.closed:
            return
        if self.outgoing is None:
            self.outgoing = collections.deque()
        if len(self.outgoing) >= self.settings.live_queue_size:
            self._spawn(
                self.close(POLICY_VIOLATION, "slow consumer: too many messages waiting to be read")
            )
            return
        self.outgoing.append(text)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write())

    def next(self, operation_id: str, payload: bytes) -> None:
        identifier = orjson.dumps(operation_id).decode()
        text = DECODED.text_of(payload)
        self._put(f'{{"id":{identifier},"type":"next","payload":{text}}}')

    def error(self, operation_id: str, errors: list[dict[str, Any]]) -> None:
        self._put(orjson.dumps({"id": operation_id, "type": "error", "payload": errors}).decode())

    def complete(self, operation_id: str) -> None:
        self._put(orjson.dumps({"id": operation_id, "type": "complete"}).decode())

    def finished(self, operation_id: str) -> None:
        self.subscriptions.pop(operation_id, None)

    # -- the connection -------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if code == POLICY_VIOLATION:  # a slow consumer: the one reason to close with it
            count_slow_consumer("websocket")
        self.stop_all()
        with contextlib.suppress(Exception):
            # A client that reads nothing never lets the close frame out: give up after a while.
            await asyncio.wait_for(
                self.send({"type": "websocket.close", "code": code, "reason": reason}),
                CLOSE_TIMEOUT_SECONDS,
            )
        # The handler returns even if the client never answers (a slow consumer, an expired
        # token): its read is cancelled rather than raced against an event in a task of its own.
        serving = self.serving
        if (
            self.waiting_for_client
            and serving is not None
            and serving is not asyncio.current_task()
        ):
            serving.cancel()

    def stop_all(self) -> None:
        for subscriber in list(self.subscriptions.values()):
            if subscriber is not None:
                subscriber.stop()
        self.subscriptions.clear()
        if self.expiry is not None:
            self.expiry.cancel()

    async def _write(self) -> None:
        try:
            while self.outgoing and not self.closed:
                text = self.outgoing.popleft()
                await self.send({"type": "websocket.send", "text": text})
        except Exception:  # the client went away: the handler reads its disconnect
            self.closed = True
        finally:
            self.writer = None
            self.outgoing = None

    async def _read(self) -> dict[str, Any] | None:
        """The next message as JSON; None when the client went away or the socket was closed."""
        message: Message = await self.receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            return None
        raw = message.get("text")
        if raw is None:
            raw = (message.get("bytes") or b"").decode("utf-8", "replace")
        if len(raw.encode()) > self.settings.live_max_message_bytes:
            await self.close(
                MESSAGE_TOO_BIG,
                f"message larger than {self.settings.live_max_message_bytes} bytes",
            )
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await self.close(INVALID_MESSAGE, "Invalid message received")
            return None
        return data

    async def serve(self) -> None:
        self.serving = asyncio.current_task()
        try:
            try:
                first = await asyncio.wait_for(
                    self._read(), self.settings.live_init_timeout_seconds
                )
            except TimeoutError:
                await self.close(INIT_TIMEOUT, "Connection initialisation timeout")
                return
            if first is None:
                return
            if first["type"] != "connection_init":
                await self.close(UNAUTHORIZED, "Unauthorized")
                return
            if not self._initialise(first.get("payload")):
                await self.close(FORBIDDEN, "Forbidden")
                return
            while not self.closed:
                message = await self._read_unless_closed()
                if message is None:
                    return
                await self._handle(message)
        finally:
            self.closed = True
            self.stop_all()
            if self.writer is not None:
                self.writer.cancel()
            for task in list(self.tasks):
                task.cancel()

    async def _read_unless_closed(self) -> dict[str, Any] | None:
        """The next message, or None once the server closed the connection (`close` cancels
        this read)."""
        self.waiting_for_client = True
        try:
            return await self._read()
        except asyncio.CancelledError:
            serving = asyncio.current_task()
            if not self.closed or serving is None or serving.uncancel():
                raise
            return None
        finally:
            self.waiting_for_client = False

    def _initialise(self, payload: Any) -> bool:
        authorization = None
        if isinstance(payload, dict):
            for key, value in payload.items():
                if key.lower() == "authorization" and isinstance(value, str):
                    authorization = value
        try:
            viewer = self.authenticator.authenticate(authorization)
        except AuthenticationError:
            return False
        self.viewer_id = viewer.user_id
        expiry = None if viewer.development else token_expiry(authorization)
        if expiry is not None:
            delay = max(0.0, expiry + self.settings.jwt_leeway_seconds - time.time())
            self.expiry = asyncio.get_running_loop().call_later(
                delay, lambda: self._spawn(self.close(FORBIDDEN, "Token expired"))
            )
        self.acknowledged = True
        self._put('{"type":"connection_ack"}')
        return True

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            self._put('{"type":"pong"}')
        elif kind == "pong":
            return
        elif kind == "connection_init":
            await self.close(TOO_MANY_INITIALISATIONS, "Too many initialisation requests")
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "complete":
            identifier = message.get("id")
            subscriber = self.subscriptions.pop(identifier, None) if identifier else None
            if subscriber is not None:
                subscriber.stop()
        else:
            await self.close(INVALID_MESSAGE, f"Invalid message type {kind[:40]!r}")

    async def _subscribe(self, message: dict[str, Any]) -> None:
        identifier = message.get("id")
        payload = message.get("payload")
        if (
            not isinstance(identifier, str)
            or not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
        ):
            await self.close(INVALID_MESSAGE, "Invalid subscribe message")
            return
        if identifier in self.subscriptions:
            await self.close(SUBSCRIBER_EXISTS, f"Subscriber for {identifier[:40]} already exists")
            return
        limit = self.settings.live_max_subscriptions
        if len(self.subscriptions) >= limit:
            self.error(
                identifier,
                [
                    error(
                        f"A connection may hold at most {limit} subscriptions.",
                        "TOO_MANY_SUBSCRIPTIONS",
                    )
                ],
            )
            return
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
            await self.close(INVALID_MESSAGE, "Invalid subscribe message")
            return
        self.subscriptions[identifier] = None
        self._spawn(self._start(identifier, payload["query"], variables, operation_name))

    async def _start(
        self, identifier: str, query: str, variables: dict[str, Any], operation_name: str | None
    ) -> None:
        try:
            started = await self.live.start(
                self, identifier, query, variables, operation_name, self.viewer_id
            )
        except Exception:
            logger.exception("starting a subscription failed")
            started = [error("Unexpected error; it was logged.", "INTERNAL_SERVER_ERROR")]
        if identifier not in self.subscriptions or self.closed:  # completed meanwhile
            if isinstance(started, Subscriber):
                started.stop()
            return
        if isinstance(started, Subscriber):
            self.subscriptions[identifier] = started
        elif isinstance(started, bytes):
            self.next(identifier, started)
            self.complete(identifier)
            self.finished(identifier)
        else:
            self.error(identifier, started)
            self.finished(identifier)


class DecodedPayload:
    """The text of the last payload sent over WebSocket: the members of a group receive the same
    bytes object (graph/live.py resolves a change once per group), decoded once for all of
    them. Compared by identity; holding the bytes keeps its identity from being reused."""

    def __init__(self) -> None:
        self.payload = b""
        self.text = ""

    def text_of(self, payload: bytes) -> str:
        if payload is not self.payload:
            self.payload, self.text = payload, payload.decode()
        return self.text


DECODED = DecodedPayload()


class SseConnection:
    """One graphql-sse subscription (distinct connections mode) over a streamed response."""

    def __init__(self, settings: Settings) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(settings.live_queue_size)
        self.overflowed = False

    def _put(self, data: bytes | None) -> None:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def next(self, operation_id: str, payload: bytes) -> None:
        self._put(b"event: next\ndata: " + payload + b"\n\n")

    def error(self, operation_id: str, errors: list[dict[str, Any]]) -> None:
        self._put(b"event: next\ndata: " + orjson.dumps({"errors": errors}) + b"\n\n")
        self.complete(operation_id)

    def complete(self, operation_id: str) -> None:
        self._put(b"event: complete\ndata: \n\n")
        self._put(None)

    def finished(self, operation_id: str) -> None:
        pass


class LiveEndpoints:
    """The ASGI endpoints; `live` is set by the app's lifespan."""

    def __init__(self, settings: Settings, authenticator: Authenticator, schema: Any) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.schema = schema
        self.live: Live | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute("/graphql", Asgi(self.websocket)),
            Route("/graphql/stream", Asgi(self.sse), methods=["POST"]),
        ]

    @asynccontextmanager
    async def running(self, session_factory: Any, render_budget: Any = None) -> AsyncIterator[Live]:
        """The process's change feed and subscriptions, for the app's lifespan."""
        # The URL with all its parameters (the engine's lost its query: a Unix socket's host).
        url = resolve_database_url(self.settings)
        live = Live(self.schema, self.settings, url, session_factory, render_budget)
        await live.open()
        self.live = live
        try:
            yield live
        finally:
            self.live = None
            await live.close()

    def _refused(self, scope: Scope) -> bool:
        """The handshake's checks; its headers are not kept for the connection's lifetime."""
        headers = _headers(scope)
        return not origin_allowed(headers, self.settings) or (
            self.authenticator.development and not loopback_only(scope, headers)
        )

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._refused(scope) or self.live is None:
            # Before `accept`: the handshake is answered 403.
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        protocols = [
            item.strip() for value in scope.get("subprotocols") or () for item in value.split(",")
        ]
        if PROTOCOL not in protocols:
            await send({"type": "websocket.accept"})
            await send(
                {
                    "type": "websocket.close",
                    "code": SUBPROTOCOL_NOT_ACCEPTABLE,
                    "reason": "Subprotocol not acceptable",
                }
            )
            return
        hub = self.live.hub
        await send({"type": "websocket.accept", "subprotocol": PROTOCOL})
        if hub.connections >= self.settings.live_max_connections:
            await send(
                {
                    "type": "websocket.close",
                    "code": TRY_AGAIN_LATER,
                    "reason": "Too many connections",
                }
            )
            return
        hub.connections += 1
        try:
            await WebSocketConnection(self.live, self.authenticator, receive, send).serve()
        finally:
            hub.connections -= 1

    async def sse(self, scope: Scope, receive: Receive, send: Send) -> None:
        live = self.live
        if live is None:
            await error_response(503, "Starting up.", "SERVICE_UNAVAILABLE")(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        query = request.get("query") if isinstance(request, dict) else None
        variables = (request.get("variables") if isinstance(request, dict) else None) or {}
        operation_name = request.get("operationName") if isinstance(request, dict) else None
        if not isinstance(query, str) or not isinstance(variables, dict):
            await error_response(
                400,
                'Send a JSON body {"query": ..., "variables": {...}} with Accept:'
                " text/event-stream.",
                "BAD_REQUEST",
            )(scope, receive, send)
            return
        if len(query.encode()) > self.settings.max_query_bytes:
            await error_response(413, "The GraphQL document is too large.", "PAYLOAD_TOO_LARGE")(
                scope, receive, send
            )
            return
        viewer = viewer_of(_Request(scope))
        connection = SseConnection(self.settings)
        started = await live.start(
            connection, "sse", query, variables, operation_name, viewer.user_id
        )
        if isinstance(started, list):
            await send_json(send, 400, {"errors": started})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        if isinstance(started, bytes):
            connection.next("sse", started)
            connection.complete("sse")
        expiry = token_expiry(_headers(scope).get("authorization"))
        deadline = None if viewer.development or expiry is None else expiry
        disconnected = asyncio.create_task(_wait_disconnect(receive))
        try:
            while True:
                getter = asyncio.create_task(connection.queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected},
                    timeout=SSE_KEEPALIVE_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnected in done:
                    getter.cancel()
                    return
                if deadline is not None and time.time() > deadline:
                    getter.cancel()
                    expired = orjson.dumps({"errors": [error("Token expired.", "UNAUTHENTICATED")]})
                    await send_chunk(send, b"event: next\ndata: " + expired + b"\n\n")
                    await send_chunk(send, b"event: complete\ndata: \n\n")
                    return
                if getter not in done:
                    getter.cancel()
                    await send_chunk(send, b":\n\n")
                    continue
                data = getter.result()
                if data is None:
                    if connection.overflowed:
                        count_slow_consumer("sse")
                        slow = orjson.dumps({"errors": [error("Slow consumer.", "SLOW_CONSUMER")]})
                        await send_chunk(send, b"event: next\ndata: " + slow + b"\n\n")
                    return
                await send_chunk(send, data)
        finally:
            disconnected.cancel()
            if isinstance(started, Subscriber):
                started.stop()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


class Asgi:
    """A bound method as a raw ASGI app (Starlette would wrap a method in a request object)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)


class _Request:
    def __init__(self, scope: Scope) -> None:
        self.state = _State(scope.get("state") or {})


class _State:
    def __init__(self, values: dict[str, Any]) -> None:
        self.viewer = values.get("viewer")


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def send_json(send: Send, status: int, body: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
