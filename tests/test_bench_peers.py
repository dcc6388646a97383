"""The round-trip counter of the benchmark's peer phase (bench/peers.py) counts exactly."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL

from bench.peers import RoundTripProxy
from tests.conftest import asyncpg_dsn


async def test_proxy_counts_each_wait_for_postgresql(database_url: URL) -> None:
    proxy = RoundTripProxy.for_url(database_url)
    await proxy.start()
    try:
        connection = await asyncpg.connect(asyncpg_dsn(proxy.through(database_url)))
        try:
            before = proxy.round_trips
            await connection.execute("SELECT 1")  # simple protocol: one Query
            assert proxy.round_trips - before == 1
            statement = await connection.prepare("SELECT $1::int + 1")  # Parse, Describe, Sync
            before = proxy.round_trips
            for value in range(5):  # Bind, Execute, Sync each
                assert await statement.fetchval(value) == value + 1
            assert proxy.round_trips - before == 5
            async with connection.transaction():  # BEGIN and COMMIT are a Query each
                await statement.fetchval(1)
            assert proxy.round_trips - before == 8
        finally:
            await connection.close()
    finally:
        await proxy.stop()
