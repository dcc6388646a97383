"""`python -m graph.serve`: the steps before uvicorn (migrate, demo, refusals), offline GraphiQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile

import asyncpg
from sqlalchemy.engine import URL

from db.demo import conversation_id_for
from db.settings import Settings
from graph.graphiql import ASSETS_DIR, ASSETS_PATH, offline_graphiql_html
from graph.serve import DEMO_ID_SEED, DEMO_NAME, DEMO_NODES, ensure_demo, migrate
from tests.conftest import DatabaseFactory, asyncpg_dsn, plain_url

DEMO_ID = conversation_id_for(DEMO_ID_SEED)


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
