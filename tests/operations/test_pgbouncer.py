"""The server behind PgBouncer in transaction mode (`LCT_TRANSACTION_POOLING=true`).

PgBouncer (Debian's package; `.ci/run` installs it) is started here on a free port, in a
temporary directory, in front of the server under test, with a pool of two server connections:
every transaction of the app's ten client connections lands on one of them, as in production. The
tests send reads and writes through it, and prove that the statement timeout and `jit = off` hold
for every statement even after another client changed both for the server connections' sessions.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from db.session import create_engine, create_session_factory
from tests.conftest import LiveServer, alembic_config, asyncpg_dsn, free_port, server_settings

TIMEOUT_MS = 700
FIRST_SEQUENCE = 10_000
VIEWER = "local-developer"  # development mode: every request acts as this user
SERVER_CONNECTIONS = 2

APPEND = """
mutation Append($conversationId: ID!, $utterances: [UtteranceInput!]!) {
  appendUtterances(conversationId: $conversationId, utterances: $utterances) {
    __typename
    ... on AppendUtterancesPayload { utterances { id sequenceNumber } }
    ... on UserError { message }
  }
}
"""
LIST = """
query List { conversations(first: 50) { __typename nodes { __typename id conversationName } } }
"""


@dataclass
class Bouncer:
    url: URL  # the pooler, as DATABASE_URL would name it
    direct: URL  # PostgreSQL itself
    conversation_id: uuid.UUID


@pytest.fixture(scope="module")
def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed (.ci/run installs Debian's package)")
        pytest.skip("pgbouncer is not installed: apt-get install pgbouncer")
    return found


@pytest.fixture(scope="module")
async def bouncer(database_factory: Any, pgbouncer_binary: str) -> AsyncIterator[Bouncer]:
    direct: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(direct), "head")
    connection = await asyncpg.connect(asyncpg_dsn(direct))
    try:
        conversation_id = await generate_conversation(connection, nodes=5, owner_id=VIEWER)
    finally:
        await connection.close()
    with run_pgbouncer(pgbouncer_binary, direct) as url:
        yield Bouncer(url=url, direct=direct, conversation_id=conversation_id)


@contextmanager
def run_pgbouncer(binary: str, direct: URL) -> Iterator[URL]:
    """PgBouncer in transaction mode in front of `direct`, until the block ends."""
    directory = Path(tempfile.mkdtemp(prefix="lct-pgbouncer-"))
    port = free_port()
    host = direct.host or str(direct.query.get("host"))
    target = f"host={host} port={direct.port or 5432} user={direct.username or 'postgres'}"
    if direct.password:
        target += f" password={direct.password}"
    (directory / "userlist.txt").write_text(f'"{direct.username or "postgres"}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
* = {target}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {SERVER_CONNECTIONS}
max_client_conn = 200
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""
    )
    command_line = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        os.chmod(directory, 0o777)
        # a Unix socket's directory admits its owner (the embedded server's user)
        owner = pwd.getpwuid(os.stat(host).st_uid).pw_name if host.startswith("/") else "nobody"
        command_line[1:1] = ["-u", owner]
    process = subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                log = directory / "pgbouncer.log"
                raise RuntimeError(
                    f"pgbouncer did not start: {output} {log.read_text() if log.exists() else ''}"
                )
            time.sleep(0.05)
        yield direct.set(host="127.0.0.1", port=port, query={})
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def spoil_server_sessions(url: URL) -> None:
    """Another client of the pooler sets, for the whole session of every server connection, the
    opposite of what the app needs: in transaction mode, those settings stay on the server
    connections that the app's transactions get next."""
    clients = [
        await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0)
        for _ in range(SERVER_CONNECTIONS)
    ]
    try:
        transactions = [client.transaction() for client in clients]
        for transaction in transactions:  # all at once: each holds its own server connection
            await transaction.start()
        for client in clients:
            await client.execute("SET SESSION statement_timeout = 0; SET SESSION jit = on")
        for transaction in transactions:
            await transaction.commit()
    finally:
        for client in clients:
            await client.close()


async def test_every_transaction_runs_under_the_settings(bouncer: Bouncer) -> None:
    settings = server_settings(
        bouncer.url, transaction_pooling=True, statement_timeout_ms=TIMEOUT_MS
    )
    engine = create_engine(bouncer.url, settings)
    sessions = create_session_factory(engine)
    try:
        await spoil_server_sessions(bouncer.url)

        async def settings_seen() -> tuple[str, str]:
            async with sessions() as session:
                row = (
                    await session.execute(
                        text("SELECT current_setting('statement_timeout'), current_setting('jit')")
                    )
                ).one()
                return row[0], row[1]

        seen = await asyncio.gather(*(settings_seen() for _ in range(40)))
        assert set(seen) == {(f"{TIMEOUT_MS}ms", "off")}
        async with sessions() as session:
            with pytest.raises(Exception) as cancelled:
                await session.execute(text("SELECT pg_sleep(5)"))
        assert "statement timeout" in str(cancelled.value)
    finally:
        await engine.dispose()


async def test_reads_and_writes_through_pgbouncer(bouncer: Bouncer) -> None:
    server = LiveServer(
        server_settings(bouncer.url, transaction_pooling=True, statement_timeout_ms=TIMEOUT_MS)
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

            async def append(sequence: int) -> int | None:
                utterance = {"sequenceNumber": sequence, "text": "via PgBouncer", "speakerId": "s"}
                response = await client.post(
                    "/graphql",
                    json={
                        "query": APPEND,
                        "variables": {
                            "conversationId": str(bouncer.conversation_id),
                            "utterances": [utterance],
                        },
                    },
                )
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
                assert body["data"]["appendUtterances"]["__typename"] == "AppendUtterancesPayload"
                return sequence

            async def read() -> None:
                response = await client.post("/graphql", json={"query": LIST})
                assert response.status_code == 200 and "errors" not in response.json()
                return None

            results = await asyncio.gather(
                *(append(FIRST_SEQUENCE + index) for index in range(30)),
                *(read() for _ in range(30)),
            )
        appended = {sequence for sequence in results if sequence is not None}
        connection = await asyncpg.connect(asyncpg_dsn(bouncer.direct))
        try:
            stored = await connection.fetch(
                "SELECT sequence_number FROM utterances WHERE conversation_id = $1"
                " AND sequence_number >= $2",
                bouncer.conversation_id,
                FIRST_SEQUENCE,
            )
        finally:
            await connection.close()
        assert sorted(row[0] for row in stored) == sorted(appended)
    finally:
        await server.stop()


async def test_statement_timeout_cancels_a_request_behind_pgbouncer(bouncer: Bouncer) -> None:
    """A read that waits on a lock is cancelled after the statement timeout, though another client
    switched the timeout off for the server connections' sessions."""
    server = LiveServer(
        server_settings(bouncer.url, transaction_pooling=True, statement_timeout_ms=TIMEOUT_MS)
    )
    await server.start()
    await spoil_server_sessions(bouncer.url)
    blocker = await asyncpg.connect(asyncpg_dsn(bouncer.direct))
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                started = time.monotonic()
                response = await client.post("/graphql", json={"query": LIST})
                waited = time.monotonic() - started
        codes = [error["extensions"]["code"] for error in response.json().get("errors", [])]
        assert codes == ["STATEMENT_TIMEOUT"], response.text
        assert waited < 10
    finally:
        await blocker.close()
        await server.stop()
