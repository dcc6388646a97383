"""Subscription tests: real servers (uvicorn), real WebSockets, a JWT-verifying app.

`LiveApi` makes changes over HTTP as a user; `Subscriber` speaks graphql-transport-ws with the
`websockets` client; `live_server` runs on a database of its own, shared by the module's tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import websockets
from sqlalchemy.engine import URL

from tests.conftest import LiveServer, asyncpg_dsn, server_settings

SECRET = "live-tests-secret-that-is-long-enough!!"
OWNER, SHARED, OTHER = "alice", "bob", "carol"

NODE_FIELDS = "id nodeName canvasX canvasY canvasWidth canvasHeight"

CONVERSATION_CHANGED = f"""
subscription($id: ID!, $since: String) {{
  conversationChanged(id: $id, since: $since) {{
    __typename cursor kind actorId operation nodeIds relationshipIds clusterIds utteranceIds
    nodes {{ {NODE_FIELDS} }}
    relationships {{ id relationshipType fromNodeId toNodeId }}
    clusters {{ id clusterName nodeIds }}
    utterances {{ id text sequenceNumber }}
    conversation {{ id conversationName }}
  }}
}}"""

CONVERSATIONS_CHANGED = """
subscription($since: String) {
  conversationsChanged(since: $since) {
    __typename cursor kind conversationId actorId conversation { id conversationName }
  }
}"""

ERRORS = "... on UserError { message code }"

CREATE_CONVERSATION = f"""
mutation($input: CreateConversationInput!) {{
  createConversation(input: $input) {{
    __typename ... on ConversationPayload {{ conversation {{ id updatedAt }} }} {ERRORS}
  }}
}}"""

UPDATE_CONVERSATION = f"""
mutation($input: UpdateConversationInput!) {{
  updateConversation(input: $input) {{
    __typename ... on ConversationPayload {{ conversation {{ id updatedAt }} }} {ERRORS}
  }}
}}"""

DELETE_CONVERSATION = f"""
mutation($id: ID!) {{ deleteConversation(id: $id) {{ __typename {ERRORS} }} }}"""

PURGE_CONVERSATION = f"""
mutation($id: ID!) {{ purgeConversation(id: $id) {{ __typename {ERRORS} }} }}"""

CREATE_NODE = f"""
mutation($input: CreateNodeInput!) {{
  createNode(input: $input) {{ __typename ... on NodePayload {{ node {{ id }} }} {ERRORS} }}
}}"""

MOVE_NODES = f"""
mutation($moves: [NodeMoveInput!]!) {{
  moveNodes(moves: $moves) {{ __typename ... on NodesPayload {{ nodes {{ id }} }} {ERRORS} }}
}}"""

APPEND_UTTERANCES = f"""
mutation($conversationId: ID!, $utterances: [UtteranceInput!]!) {{
  appendUtterances(conversationId: $conversationId, utterances: $utterances) {{
    __typename {ERRORS}
  }}
}}"""

NODE_POSITION = """
query($id: ID!) { node(id: $id) { ... on ThreadNode { canvasX canvasY } } }"""


def token(user: str, *, expires_in: int = 600) -> str:
    """A token the test servers accept (LCT_JWT_SECRET = SECRET, no leeway)."""
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + expires_in}, SECRET)


def live_settings(database_url: URL, **overrides: Any) -> Any:
    return server_settings(
        database_url, **{"jwt_secret": SECRET, "jwt_leeway_seconds": 0, **overrides}
    )


class LiveApi:
    """GraphQL over HTTP as one user."""

    def __init__(self, base_url: str, user: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {token(user)}"},
        )

    async def gql(self, query: str, /, **variables: Any) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]

    async def mutate(self, query: str, /, **variables: Any) -> dict[str, Any]:
        data = await self.gql(query, **variables)
        (payload,) = data.values()
        assert "code" not in payload, payload
        return payload

    async def create_conversation(self, name: str = "live", **fields: Any) -> str:
        payload = await self.mutate(
            CREATE_CONVERSATION,
            input={"conversationName": name, "conversationType": "CHAT", "sourceType": "manual"}
            | fields,
        )
        return str(payload["conversation"]["id"])

    async def create_node(self, conversation_id: str, name: str = "a node", **fields: Any) -> str:
        payload = await self.mutate(
            CREATE_NODE,
            input={"conversationId": conversation_id, "nodeName": name, "summary": "s"} | fields,
        )
        return str(payload["node"]["id"])

    async def move(self, node_id: str, x: int, y: int) -> None:
        await self.mutate(MOVE_NODES, moves=[{"id": node_id, "canvasX": x, "canvasY": y}])

    async def share(self, conversation_id: str, visibility: str, shared_with: list[str]) -> None:
        current = await self.gql(
            "query($id: ID!) { conversation(id: $id) { updatedAt } }", id=conversation_id
        )
        await self.mutate(
            UPDATE_CONVERSATION,
            input={
                "id": conversation_id,
                "visibility": visibility,
                "sharedWith": shared_with,
                "expectedUpdatedAt": current["conversation"]["updatedAt"],
            },
        )

    async def close(self) -> None:
        await self.client.aclose()


class Subscriber:
    """A graphql-transport-ws client connection."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    @classmethod
    async def connect(
        cls, base_url: str, user: str | None = OWNER, *, payload: Any = None, **options: Any
    ) -> Subscriber:
        socket = await websockets.connect(
            base_url.replace("http", "ws", 1) + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            **options,
        )
        connection = cls(socket)
        if payload is None and user is not None:
            payload = {"Authorization": f"Bearer {token(user)}"}
        await connection.send({"type": "connection_init", "payload": payload or {}})
        return connection

    async def acknowledged(self) -> Subscriber:
        assert await self.receive() == {"type": "connection_ack"}
        return self

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.socket.recv(), timeout))

    async def subscribe(
        self, operation_id: str, query: str = CONVERSATION_CHANGED, **variables: Any
    ) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables},
            }
        )

    async def event(self, operation_id: str = "1", timeout: float = 10) -> dict[str, Any]:
        """The next `next` message's data for the operation (fails on anything else)."""
        message = await self.receive(timeout)
        assert message.get("id") == operation_id and message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        (value,) = message["payload"]["data"].values()
        return value

    async def silent(self, seconds: float = 1.0) -> None:
        """Asserts that nothing arrives for a while."""
        try:
            message = await asyncio.wait_for(self.socket.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")

    async def close(self) -> None:
        await self.socket.close()


@pytest.fixture(scope="module")
async def live_database(database_factory: Any, alembic_config_for: Any) -> URL:
    from alembic import command

    url = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config_for(url), "head")
    return url


@pytest.fixture(scope="module")
async def live_server(live_database: URL) -> AsyncIterator[str]:
    server = LiveServer(live_settings(live_database, live_poll_seconds=0.5))
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture
async def owner(live_server: str) -> AsyncIterator[LiveApi]:
    api = LiveApi(live_server, OWNER)
    yield api
    await api.close()


@pytest.fixture
async def shared_user(live_server: str) -> AsyncIterator[LiveApi]:
    api = LiveApi(live_server, SHARED)
    yield api
    await api.close()


@pytest.fixture
async def database(live_database: URL) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(live_database))
    yield connection
    await connection.close()
