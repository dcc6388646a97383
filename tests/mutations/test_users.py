"""Writes with real users: a server that verifies JWTs, anonymous and two signed-in users."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import LiveServer, server_settings
from tests.mutations import documents
from tests.mutations.support import payload as checked_payload

SECRET = "mutation-tests-secret-long-enough-for-hs256"


def bearer(user: str) -> dict[str, str]:
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def as_user(database_url) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    server = LiveServer(server_settings(database_url, jwt_secret=SECRET))
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def post(user: str | None, query: str, /, **variables: Any) -> dict[str, Any]:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers=bearer(user) if user else {},
            )
            body = response.json()
            body["status"] = response.status_code
            return body

        yield post
    await server.stop()


def ok(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert body.pop("status") == 200, body
    return checked_payload(body, name)


CONVERSATION = {"conversationName": "Alice's", "conversationType": "CHAT", "sourceType": "app"}


async def test_only_the_owner_writes(as_user) -> None:
    anonymous = await as_user(None, documents.CREATE_CONVERSATION, input=CONVERSATION)
    assert anonymous["status"] == 401
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    created = ok(
        await as_user("alice", documents.CREATE_CONVERSATION, input=CONVERSATION),
        "createConversation",
    )["conversation"]
    node_input = {"conversationId": created["id"], "nodeName": "n", "summary": "s"}
    hidden = ok(await as_user("bob", documents.CREATE_NODE, input=node_input), "createNode")
    assert (hidden["__typename"], hidden["message"]) == ("NotFoundError", "No such conversation.")

    published = ok(
        await as_user(
            "alice",
            documents.UPDATE_CONVERSATION,
            input={
                "id": created["id"],
                "expectedUpdatedAt": created["updatedAt"],
                "visibility": "PUBLIC",
            },
        ),
        "updateConversation",
    )
    assert published["__typename"] == "ConversationPayload"
    refused = ok(await as_user("bob", documents.CREATE_NODE, input=node_input), "createNode")
    assert refused["__typename"] == "ForbiddenError"
    readable = ok(
        await as_user(None, documents.EDITS_LOG, conversationId=created["id"]), "editsLog"
    )
    assert readable["__typename"] == "EditsPage"
    own = ok(await as_user("alice", documents.CREATE_NODE, input=node_input), "createNode")
    assert own["__typename"] == "NodePayload"
