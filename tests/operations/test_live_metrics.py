"""Subscriptions and the event loop in `/metrics`: figures read from the exposition of a real
server while a real graphql-transport-ws client subscribes, receives a change and leaves.

The server runs in this process, so its counters are the process's: the test compares figures
before and after what it does."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy.engine import URL

from tests.conftest import LiveServer, alembic_config
from tests.live.conftest import OWNER, LiveApi, Subscriber, live_settings
from tests.operations.test_observability import samples, value

Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
async def server(database_factory: Any) -> AsyncIterator[str]:
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    live = LiveServer(live_settings(url, live_poll_seconds=0.5))
    await live.start()
    yield live.url
    await live.stop()


async def metrics(base: str) -> Figures:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def until(
    read: Callable[[], Awaitable[Figures]], holds: Callable[[Figures], bool]
) -> Figures:
    """The first figures (read every 0.1 s, for at most 10 s) for which `holds` is true."""
    for _ in range(100):
        figures = await read()
        if holds(figures):
            return figures
        await asyncio.sleep(0.1)
    return figures


async def test_connections_subscriptions_and_events_are_counted(server: str) -> None:
    api = LiveApi(server, OWNER)
    try:
        conversation = await api.create_conversation("metered")
        before = await metrics(server)
        assert value(before, "lct_live_websocket_connections") == 0
        assert value(before, "lct_live_subscriptions") == 0

        subscriber = await (await Subscriber.connect(server)).acknowledged()
        await subscriber.subscribe("1", id=conversation)
        open_ = await until(
            lambda: metrics(server), lambda f: value(f, "lct_live_subscriptions") == 1
        )
        assert value(open_, "lct_live_websocket_connections") == 1
        assert value(open_, "lct_live_subscriptions") == 1

        await api.create_node(conversation)
        await subscriber.event("1")
        delivered = await metrics(server)
        assert value(delivered, "lct_live_events_delivered_total") == (
            value(before, "lct_live_events_delivered_total") + 1
        )

        await subscriber.close()
        closed = await until(
            lambda: metrics(server), lambda f: value(f, "lct_live_websocket_connections") == 0
        )
        assert value(closed, "lct_live_websocket_connections") == 0
        assert value(closed, "lct_live_subscriptions") == 0
    finally:
        await api.close()


async def test_the_event_loop_heartbeat_is_in_the_metrics(server: str) -> None:
    first = await metrics(server)
    gc.collect()  # the server's process is this one: a full collection it reports
    await asyncio.sleep(1.2)  # the worst-stall gauge takes a slot a second
    second = await metrics(server)
    beats = "lct_event_loop_stall_seconds_count"
    # a beat every 15 ms: over a second, dozens
    assert value(second, beats) - value(first, beats) > 10
    # every wake-up is a little late, so the worst of the last minute is above zero (how far
    # above depends on the other tests this process ran: one of them blocks the loop on purpose)
    assert value(second, "lct_event_loop_worst_stall_seconds") > 0
    assert value(second, "lct_event_loop_stall_seconds_bucket", le="+Inf") == value(second, beats)
    pauses = "lct_gc_pause_seconds_count"
    assert value(second, pauses, generation="2") > value(first, pauses, generation="2")
