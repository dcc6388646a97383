"""The render budget bounds the rendered rows a process holds, and never deadlocks or leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import URL

from graph.rendering import RenderBudget
from tests.conftest import LiveServer, server_settings
from tests.read import documents


async def test_requests_beyond_the_budget_wait_their_turn():
    budget = RenderBudget(100)
    first = await budget.reserve(60)
    second = asyncio.create_task(budget.reserve(60))
    await asyncio.sleep(0.01)
    assert not second.done() and budget.free == 40
    budget.give_back(first)
    assert await asyncio.wait_for(second, 1) == 60
    assert budget.free == 40


async def test_a_request_larger_than_the_budget_takes_all_of_it():
    budget = RenderBudget(100)
    assert await budget.reserve(10_000) == 100
    assert budget.free == 0


async def test_a_cancelled_waiter_leaves_nothing_behind():
    budget = RenderBudget(100)
    held = await budget.reserve(100)
    waiter = asyncio.create_task(budget.reserve(50))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.give_back(held)
    assert budget.free == 100 and not budget._waiting


@pytest.fixture(scope="module")
async def tight_server(database_url: URL) -> AsyncIterator[str]:
    """A server whose budget holds one page of ten rendered rows at a time."""
    server = LiveServer(server_settings(database_url, render_budget_rows=10))
    await server.start()
    yield server.url
    await server.stop()


async def test_a_tight_budget_serves_every_request_in_turn(tight_server, conversations):
    async with httpx.AsyncClient(base_url=tight_server, timeout=120) as client:

        async def canvas() -> httpx.Response:
            return await client.post(
                "/graphql",
                json={"query": documents.CANVAS, "variables": {"id": str(conversations.large)}},
            )

        async def nested() -> httpx.Response:
            return await client.post(
                "/graphql", json={"query": documents.CONVERSATIONS, "variables": {"first": 5}}
            )

        responses = await asyncio.wait_for(
            asyncio.gather(*(canvas() if index % 2 else nested() for index in range(12))), 120
        )
    for index, response in enumerate(responses):
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body.get("errors")
        assert body["extensions"]["renderedLists"] >= 1
        if index % 2:
            assert len(body["data"]["conversation"]["nodes"]["nodes"]) == 1000
