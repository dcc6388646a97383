"""A JWT-verifying server on a database of its own, and a world of four users and conversations.

alice owns every conversation: `private` (its shared_with names bob, which must not matter),
`shared` (shared with bob), `public`, and `deleted` (public and shared with bob, soft-deleted).
bob is the shared user, carol another signed-in user, None the anonymous client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from alembic import command
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from tests.conftest import LiveServer, alembic_config, asyncpg_dsn, server_settings

SECRET = "security-tests-secret-that-is-long-enough"
ISSUER = "https://issuer.test/"
AUDIENCE = "lct-graph-tests"
OWNER, SHARED, OTHER = "alice", "bob", "carol"
VIEWERS: tuple[str | None, ...] = (OWNER, SHARED, OTHER, None)
CONVERSATIONS = ("private", "shared", "public", "deleted")
TABLES = {
    "Conversation": "conversations",
    "Utterance": "utterances",
    "ThreadNode": "nodes",
    "Relationship": "relationships",
    "Cluster": "clusters",
    "Edit": "edits_log",
    "ApiCall": "api_calls_log",
}


def token(user: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET)


def auth_headers(user: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"} if user else {}


def can_read(viewer: str | None, conversation: str) -> bool:
    """The expected visibility: what the matrix holds the server to."""
    if conversation == "deleted":
        return False
    if conversation == "public" or viewer == OWNER:
        return True
    return conversation == "shared" and viewer == SHARED


@dataclass
class World:
    """Ids per conversation and per type (one row of each type per conversation)."""

    conversations: dict[str, uuid.UUID]
    rows: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)  # name -> type -> id
    all_ids: dict[str, set[str]] = field(default_factory=dict)  # name -> every row id in it

    def owner_of(self, row_id: str) -> str | None:
        for name, ids in self.all_ids.items():
            if row_id in ids:
                return name
        return None


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or []) if isinstance(self.body, dict) else []

    @property
    def codes(self) -> list[str]:
        return [(error.get("extensions") or {}).get("code") for error in self.errors]


Ask = Callable[..., Awaitable[Reply]]

# Far longer than any of these requests takes, far shorter than the statement timeout: a request
# that needs longer is waiting for a lock.
PROMPTLY_SECONDS = 5.0


class OwnerWrite:
    """The owner's write in progress (see `owner_holds_locks`)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def waiting(self) -> int:
        """How many other sessions are waiting for its locks."""
        return int(
            await self.connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
        )


@asynccontextmanager
async def owner_holds_locks(url: URL, rows: Mapping[str, uuid.UUID]) -> AsyncIterator[OwnerWrite]:
    """A transaction that holds what the owner's write to these rows holds while it runs (the
    conversation `FOR NO KEY UPDATE`, the other rows `FOR UPDATE`, as the write services take
    them) until the block ends, and then rolls back."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    transaction = connection.transaction()
    await transaction.start()
    try:
        for kind, row_id in rows.items():
            table = TABLES[kind.removesuffix("2")]  # ThreadNode2: a second node
            strength = "NO KEY UPDATE" if kind == "Conversation" else "UPDATE"
            locked = await connection.fetchval(
                f"SELECT id FROM {table} WHERE id = $1 FOR {strength}", row_id
            )
            assert locked == row_id, (kind, row_id)
        yield OwnerWrite(connection)
    finally:
        await transaction.rollback()
        await connection.close()


async def promptly(request: Awaitable[Reply], what: Any) -> Reply:
    """The reply, provided it comes before `PROMPTLY_SECONDS`: it did not wait for a lock."""
    try:
        return await asyncio.wait_for(request, PROMPTLY_SECONDS)
    except TimeoutError:
        pytest.fail(f"no answer within {PROMPTLY_SECONDS} s, waiting for a lock: {what}")


@pytest.fixture(scope="session")
async def security_database(database_factory: Any) -> URL:
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
async def world(security_database: URL) -> World:
    connection = await asyncpg.connect(asyncpg_dsn(security_database))
    try:
        ids: dict[str, uuid.UUID] = {}
        for seed, name in enumerate(CONVERSATIONS, start=40):
            visibility = {"private": "private", "shared": "shared"}.get(name, "public")
            ids[name] = await generate_conversation(
                connection,
                nodes=6,
                seed=seed,
                owner_id=OWNER,
                name=f"alice's {name} conversation",
                visibility=visibility,
                shared_with=[SHARED],
            )
        await connection.execute(
            "UPDATE conversations SET deleted_at = now() WHERE id = $1", ids["deleted"]
        )
        world = World(conversations=ids)
        for name, conversation_id in ids.items():
            world.rows[name] = {"Conversation": conversation_id}
            world.all_ids[name] = {str(conversation_id)}
            for kind, table in TABLES.items():
                if kind == "Conversation":
                    continue
                found = [
                    row["id"]
                    for row in await connection.fetch(
                        f"SELECT id FROM {table} WHERE conversation_id = $1 ORDER BY id",
                        conversation_id,
                    )
                ]
                assert found, f"the generated {name} conversation has no {table}"
                world.rows[name][kind] = found[0]
                world.all_ids[name].update(str(item) for item in found)
                if kind == "ThreadNode":
                    world.rows[name]["ThreadNode2"] = found[1]
        await _cross_references(connection, world)
        return world
    finally:
        await connection.close()


async def _cross_references(connection: asyncpg.Connection, world: World) -> None:
    """Rows of the public conversation that point into the private one, as imported data could:
    every traversal from the public side must stop at the boundary."""
    private = world.rows["private"]
    public_nodes = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY id",
            world.conversations["public"],
        )
    ]
    secret_node = private["ThreadNode"]
    await connection.execute(
        "UPDATE nodes SET parent_id = $1, predecessor_id = $1, successor_id = $1 WHERE id = $2",
        secret_node,
        public_nodes[0],
    )
    await connection.execute(
        "UPDATE nodes SET children_ids = array_append(children_ids, $1) WHERE id = $2",
        secret_node,
        public_nodes[1],
    )
    relationship_id = await connection.fetchval(
        "INSERT INTO relationships (conversation_id, from_node_id, to_node_id,"
        " relationship_type, supporting_utterance_ids)"
        " VALUES ($1, $2, $3, 'cross_boundary', ARRAY[$4::uuid]) RETURNING id",
        world.conversations["public"],
        public_nodes[0],
        secret_node,
        private["Utterance"],
    )
    await connection.execute(
        "INSERT INTO relationships (conversation_id, from_node_id, to_node_id, relationship_type)"
        " VALUES ($1, $2, $3, 'cross_boundary')",
        world.conversations["public"],
        secret_node,
        public_nodes[1],
    )
    await connection.execute(
        "UPDATE clusters SET node_ids = array_append(node_ids, $1), parent_cluster_id = $2"
        " WHERE id = $3",
        secret_node,
        private["Cluster"],
        world.rows["public"]["Cluster"],
    )
    await connection.execute(
        "UPDATE utterances SET node_id = $1 WHERE id = $2",
        secret_node,
        world.rows["public"]["Utterance"],
    )
    await connection.execute(
        "INSERT INTO edits_log (conversation_id, target_type, target_id, field_name, old_value,"
        " new_value, edit_type, user_id) VALUES ($1, 'node', $2, 'node_name', 'a', 'b',"
        " 'correction', 'alice')",
        world.conversations["public"],
        secret_node,
    )
    world.all_ids["public"].add(str(relationship_id))


@pytest.fixture(scope="session")
async def secure_server(security_database: URL, world: World) -> AsyncIterator[LiveServer]:
    server = LiveServer(
        server_settings(
            security_database, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
        )
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def ask(secure_server: LiveServer) -> AsyncIterator[Ask]:
    """`await ask(document, as_=user or None, **variables)` against the JWT-verifying server."""
    async with httpx.AsyncClient(base_url=secure_server.url, timeout=60) as client:

        async def post(
            document: str,
            /,
            *,
            as_: str | None = None,
            headers: Mapping[str, str] | None = None,
            **variables: Any,
        ) -> Reply:
            response = await client.post(
                "/graphql",
                json={"query": document, "variables": variables},
                headers={**auth_headers(as_), **(headers or {})},
            )
            return Reply(response.status_code, response.json(), response.headers)

        yield post
