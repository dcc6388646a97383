"""conversationChanged over Server-Sent Events (graphql-sse, distinct connections mode)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.live.conftest import CONVERSATION_CHANGED, SHARED, LiveApi, token


async def events(response: httpx.Response, queue: asyncio.Queue[tuple[str, Any]]) -> None:
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: ") and name is not None:
            data = line[len("data: ") :]
            await queue.put((name, json.loads(data) if data.strip() else None))
            name = None


async def test_changes_stream_over_sse_until_the_conversation_is_unshared(
    live_server: str, owner: LiveApi
) -> None:
    conversation = await owner.create_conversation(visibility="SHARED", sharedWith=[SHARED])
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=30) as client,
        client.stream(
            "POST",
            "/graphql/stream",
            json={"query": CONVERSATION_CHANGED, "variables": {"id": conversation}},
            headers={"Accept": "text/event-stream", "Authorization": f"Bearer {token(SHARED)}"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(events(response, queue))
        try:
            await asyncio.sleep(0.5)
            node = await owner.create_node(conversation, "over sse")
            name, data = await asyncio.wait_for(queue.get(), 10)
            assert name == "next"
            change = data["data"]["conversationChanged"]
            assert (change["kind"], change["nodeIds"]) == ("NODE_CREATED", [node])
            assert change["actorId"] == "alice"
            await owner.share(conversation, "PRIVATE", [])
            name, data = await asyncio.wait_for(queue.get(), 10)
            assert data["errors"][0]["extensions"]["code"] == "CONVERSATION_UNAVAILABLE"
            assert await asyncio.wait_for(queue.get(), 10) == ("complete", None)
            await asyncio.wait_for(reader, 10)  # the server ended the response
        finally:
            reader.cancel()


async def test_sse_refuses_a_missing_conversation_and_a_bad_document(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token('carol')}"}
        missing = await client.post(
            "/graphql/stream",
            json={
                "query": CONVERSATION_CHANGED,
                "variables": {"id": "00000000-0000-0000-0000-00000000abcd"},
            },
            headers=headers,
        )
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        invalid = await client.post(
            "/graphql/stream", json={"query": "subscription { nope }"}, headers=headers
        )
        assert invalid.status_code == 400 and invalid.json()["errors"]
        unauthenticated = await client.post(
            "/graphql/stream",
            json={"query": CONVERSATION_CHANGED},
            headers={"Authorization": "Bearer forged"},
        )
        assert unauthenticated.status_code == 401
