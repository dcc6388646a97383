"""With DATABASE_URL unset, Alembic uses the embedded PostgreSQL in LCT_EMBEDDED_DATA_DIR.

Each test gives the server a data directory of its own, so the run's shared server is never
touched: started on demand, shared while a process uses it, stopped when the last one exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from db.settings import PROJECT_ROOT
from tests.test_migrations import current_revision, history

ALEMBIC = Path(sys.executable).with_name("alembic")
HOLDER = """
import sys
from pathlib import Path
from db.embedded import embedded_url
print(embedded_url(Path(sys.argv[1])), flush=True)
sys.stdin.readline()
"""


def environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["LCT_EMBEDDED_DATA_DIR"] = str(data_dir)
    return env


def alembic(data_dir: Path, *arguments: str) -> str:
    """An alembic command as a user types it with DATABASE_URL unset (no .env in its directory)."""
    result = subprocess.run(
        [str(ALEMBIC), "-c", str(PROJECT_ROOT / "alembic.ini"), *arguments],
        cwd=data_dir.parent,
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def servers_for(data_dir: Path) -> list[int]:
    """Live postgres processes started on this data directory."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (
            process.info["name"] == "postgres"
            and str(data_dir) in cmdline
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process.pid)
    return found


def start_holder(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Another process using the embedded server, as the API server would."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)],
        cwd=PROJECT_ROOT,
        env=environment(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    url = holder.stdout.readline().strip()
    assert url.startswith("postgresql://"), "the holder could not start the server"
    return holder, url


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data_dir = (tmp_path / "pgdata").resolve()
    yield data_dir
    # A failed test must not leave its server behind.
    for pid in servers_for(data_dir):
        psutil.Process(pid).terminate()


async def revision_at(url: str) -> str | None:
    connection = await asyncpg.connect(url)
    try:
        return await current_revision(connection)
    finally:
        await connection.close()


def test_the_data_directory_setting_moves_the_server_and_it_stops(data_dir) -> None:
    alembic(data_dir, "upgrade", "head")
    assert (data_dir / "PG_VERSION").exists()
    assert servers_for(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()

    # Started again on demand, with the data the first command left behind.
    assert alembic(data_dir, "current").strip() == f"{history()[-1]} (head)"
    assert servers_for(data_dir) == []


async def test_a_running_server_is_reused_and_stops_after_its_last_user(data_dir) -> None:
    holder, url = start_holder(data_dir)
    try:
        pid = postmaster_pid(data_dir)
        assert servers_for(data_dir) == [pid]

        alembic(data_dir, "upgrade", "head")
        # The command joined the running server and left it running for the holder.
        assert servers_for(data_dir) == [pid]
        assert await revision_at(url) == history()[-1]
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    assert servers_for(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()


def test_a_killed_user_does_not_keep_the_server_running(data_dir) -> None:
    holder, _url = start_holder(data_dir)
    pid = postmaster_pid(data_dir)
    holder.kill()  # no exit hook runs: its handle stays behind on disk
    holder.wait(timeout=60)
    assert servers_for(data_dir) == [pid]

    alembic(data_dir, "current")
    # The next user noticed the dead handle, so its exit was the last one and stopped the server.
    assert servers_for(data_dir) == []


def test_a_server_that_cannot_start_is_one_line(tmp_path) -> None:
    data_dir = tmp_path / "broken"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("7\n")  # not a data directory this server can use
    result = subprocess.run(
        [str(ALEMBIC), "-c", str(PROJECT_ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: could not start the embedded PostgreSQL in {data_dir.resolve()}: "
        f"pg_ctl exited with status 1 (server log: {data_dir.resolve() / 'log'})"
    ]
