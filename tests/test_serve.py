"""`python -m graph.serve` on a fresh database: migrated, demo loaded, GraphQL and GraphiQL served.

The server runs as a subprocess on a free loopback port, exactly as `python3 manage.py serve`
starts it; the GraphiQL test drives headless Chromium against it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import URL

from db.demo import conversation_id_for
from db.settings import Settings
from graph.graphiql import ASSETS_DIR, ASSETS_PATH, offline_graphiql_html
from graph.serve import (
    DEMO_ID_SEED,
    DEMO_NAME,
    DEMO_NODES,
    EXAMPLE_QUERY,
    ensure_demo,
    graphiql_link,
    listening_socket,
    migrate,
)
from tests.browser import NO_BROWSER, find_browser, in_ci, open_page
from tests.conftest import DatabaseFactory, asyncpg_dsn, plain_url

DEMO_ID = conversation_id_for(DEMO_ID_SEED)
TYPENAME = "query Ping { __typename }"
BROWSER = find_browser()


def _serve(database: URL, *arguments: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "DATABASE_URL": plain_url(database), "LCT_DEMO": "true"}
    for name in ("LCT_PORT", "LCT_HOST"):
        environment.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "graph.serve", "--no-access-log", *arguments],
        # a directory without a .env, so the developer's own settings stay out of the test
        cwd=tempfile.gettempdir(),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base: str
    database: URL
    output: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"{self.base}/graphql"


@pytest.fixture(scope="module")
async def served(database_factory: DatabaseFactory) -> AsyncIterator[Served]:
    database = await database_factory.create()  # empty: the server migrates it itself
    port = free_port()
    process = _serve(database, "--port", str(port))
    served = Served(f"http://127.0.0.1:{port}", database)
    stdout = process.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: served.output.extend(stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if process.poll() is not None:
                    reader.join(5)
                    pytest.fail(
                        f"serve exited with {process.returncode}:\n{''.join(served.output)}"
                    )
                try:
                    response = await client.post(served.endpoint, json={"query": TYPENAME})
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer within 120 s:\n{''.join(served.output)}")
                await asyncio.sleep(0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _post(served: Served, query: str, **variables: object) -> dict:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(served.endpoint, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


async def test_serves_the_demo_and_says_where(served: Served) -> None:
    assert await _post(served, TYPENAME) == {"data": {"__typename": "Query"}}
    text = "".join(served.output)
    assert f"GraphQL endpoint and GraphiQL: {served.endpoint}" in text
    assert f"demo conversation {DEMO_ID} (loaded;" in text
    assert graphiql_link(served.endpoint, DEMO_ID) in text
    connection = await asyncpg.connect(asyncpg_dsn(served.database))
    try:
        total_nodes = await connection.fetchval(
            "SELECT total_nodes FROM conversations WHERE id = $1", DEMO_ID
        )
    finally:
        await connection.close()
    assert total_nodes == DEMO_NODES


async def test_the_printed_example_query_runs(served: Served) -> None:
    body = await _post(served, EXAMPLE_QUERY, id=str(DEMO_ID))
    assert "errors" not in body, body
    conversation = body["data"]["conversation"]
    assert conversation["id"] == str(DEMO_ID)
    nodes = conversation["nodes"]["nodes"]
    assert conversation["nodes"]["totalCount"] == len(nodes) > 10
    assert {node["level"] for node in nodes} == {1, 2, 3}
    assert sum(len(node["outgoing"]) for node in nodes) > len(nodes)


async def test_graphiql_page_is_served_with_its_assets(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=30) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/graphiql-assets/[^"]+)"', page.text)
        assert len(assets) == 7
        for path in assets:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.content == (ASSETS_DIR / path.split("/", 2)[2]).read_bytes()


RESULT_SHOWN = """(() => {
    const editor = document.querySelector('.result-window .CodeMirror');
    const text = editor && editor.CodeMirror.getValue();
    return text && text.includes('"data"') ? text : null;
})()"""


@pytest.mark.skipif(BROWSER is None and not in_ci(), reason=NO_BROWSER)
async def test_graphiql_in_a_browser_runs_a_query(served: Served) -> None:
    assert BROWSER is not None, f"CI is set, so the browser test may not skip: {NO_BROWSER}"
    async with open_page(BROWSER) as page:
        await page.send("Page.navigate", url=graphiql_link(served.endpoint, DEMO_ID))
        # the page is ready when the query from the link is in the editor
        await page.wait_for(
            """(() => {
                const editor = document.querySelector('.graphiql-query-editor .CodeMirror');
                return editor && editor.CodeMirror.getValue().includes('conversation');
            })()""",
            60,
        )
        result_text = None
        for _ in range(12):
            # React may attach the button's handler a moment after drawing it: click again
            # until a result shows, as a person would
            await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            try:
                result_text = await page.wait_for(RESULT_SHOWN, 5)
                break
            except TimeoutError:
                continue
        assert result_text, "GraphiQL showed no result after a minute of clicking"
        requested = list(page.requested)
    result = json.loads(result_text)
    assert "errors" not in result, result
    assert result["data"]["conversation"]["id"] == str(DEMO_ID)
    assert result["data"]["conversation"]["nodes"]["totalCount"] > 10
    # offline: everything the page loaded came from this server or was inline
    outside = [url for url in requested if not url.startswith((served.base, "data:", "about:"))]
    assert outside == []
    assert any("/graphiql-assets/graphiql@3.8.3/graphiql.min.js" in url for url in requested)


async def test_migrates_and_loads_the_demo_once(database_factory: DatabaseFactory) -> None:
    database = await database_factory.create()
    await asyncio.to_thread(migrate, database)
    settings = Settings(_env_file=None)
    assert await ensure_demo(database, settings) == (DEMO_ID, True)
    assert await ensure_demo(database, settings) == (DEMO_ID, False)
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        demos = await connection.fetch(
            "SELECT * FROM conversations WHERE conversation_name = $1", DEMO_NAME
        )
        levels = await connection.fetch(
            "SELECT DISTINCT level FROM nodes WHERE conversation_id = $1 ORDER BY level", DEMO_ID
        )
        others = await connection.fetchval(
            "SELECT count(*) FROM conversations WHERE id <> $1 AND owner_id = $2",
            DEMO_ID,
            settings.dev_user_id,
        )
    finally:
        await connection.close()
    assert [demo["id"] for demo in demos] == [DEMO_ID]
    assert demos[0]["total_nodes"] == DEMO_NODES
    assert demos[0]["owner_id"] == settings.dev_user_id
    assert demos[0]["visibility"] == "public"
    assert [row["level"] for row in levels] == [1, 2, 3, 4, 5]
    assert others > 0  # a few small ones, so that the conversation list has a page


def test_a_busy_port_is_one_clear_line(database_url: URL) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        output, _ = _serve(database_url, "--port", str(port)).communicate(timeout=60)
    assert output.strip() == (
        f"error: port {port} on 127.0.0.1 is in use: stop the other server or choose another"
        " port with --port or LCT_PORT"
    )


def test_development_mode_refuses_a_public_bind(database_url: URL) -> None:
    process = _serve(database_url, "--host", "0.0.0.0", "--port", "0")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert output.startswith("error: refusing to listen on 0.0.0.0")
    assert len(output.strip().splitlines()) == 1


def test_graphiql_page_names_only_vendored_assets() -> None:
    html = offline_graphiql_html()
    assert re.findall(r'(?:src|href)="(https?://[^"]+)"', html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"\s+integrity="([^"]+)"', html)
    assert len(assets) == 7
    for path, integrity in assets:
        assert path.startswith(f"{ASSETS_PATH}/")
        content = (ASSETS_DIR / path.removeprefix(f"{ASSETS_PATH}/")).read_bytes()
        digest = base64.b64encode(hashlib.sha384(content).digest()).decode()
        assert integrity == f"sha384-{digest}", path


def _worker_pids(parent: int) -> list[int]:
    """The uvicorn processes `serve` started (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if not entry.name.isdigit():
                continue
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux's")
async def test_workers_share_connections_opened_together(
    database_factory: DatabaseFactory,
) -> None:
    """`--workers 2`: sixteen keep-alive connections opened at once reach both processes (with one
    shared socket, the first process to wake accepted them all) and SIGTERM stops every one."""
    database = await database_factory.create()
    port = free_port()
    process = _serve(database, "--port", str(port), "--workers", "2", "--no-demo")
    base = f"http://127.0.0.1:{port}"
    workers: list[int] = []
    try:
        async with httpx.AsyncClient(timeout=5) as probe:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"{base}/health")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "no answer within 120 s"
                await asyncio.sleep(0.2)
        workers[:] = _worker_pids(process.pid)
        assert len(workers) == 2
        before = {pid: _cpu_ticks(pid) for pid in workers}
        clients = [httpx.AsyncClient(base_url=base, timeout=30) for _ in range(16)]
        try:
            for _ in range(15):
                responses = await asyncio.gather(
                    *(client.post("/graphql", json={"query": TYPENAME}) for client in clients)
                )
                assert all(response.status_code == 200 for response in responses)
        finally:
            for client in clients:
                await client.aclose()
        used = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks > 0 for ticks in used.values()), used
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


async def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY on a connection an asyncio server accepted on `listener`."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connected(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = writer.get_extra_info("socket")
        accepted.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await asyncio.wait_for(accepted, 10)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux's")
async def test_worker_sockets_give_connections_tcp_nodelay() -> None:
    """A response's headers and body go out at once: a socket made the default way (protocol 0,
    as uvicorn's --workers makes it) leaves Nagle on, and each response waited 40 ms for the
    client's delayed ACK."""
    assert await _accepted_nodelay(listening_socket("127.0.0.1", free_port())) != 0
    default = socket.socket(socket.AF_INET)
    default.bind(("127.0.0.1", 0))
    default.listen()
    assert await _accepted_nodelay(default) == 0


async def test_no_migrate_leaves_the_database_alone(database_factory: DatabaseFactory) -> None:
    database = await database_factory.create()  # empty: serve would migrate it
    process = _serve(database, "--port", str(free_port()), "--no-migrate", "--no-demo")
    try:
        deadline = time.monotonic() + 60
        output = ""
        assert process.stdout is not None
        while "GraphQL endpoint" not in output and time.monotonic() < deadline:
            output += await asyncio.to_thread(process.stdout.readline)
        assert "GraphQL endpoint" in output, output
    finally:
        process.terminate()
        process.wait(30)
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        assert await connection.fetchval("SELECT to_regclass('alembic_version')") is None
    finally:
        await connection.close()
