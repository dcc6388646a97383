"""Headless Chromium driven over the DevTools protocol, with nothing but `websockets`.

Just enough for a test to open a page, run JavaScript in it and see every URL it requested.
Without a browser the test skips, except in CI (`CI` set, as CI services and `.ci/run` do), where
it fails: CI must not pass with the browser test skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--remote-debugging-port=0",
)


NO_BROWSER = "no Chromium installed (Debian: apt-get install chromium)"


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def in_ci() -> bool:
    """Whether the tests run in CI, where a missing browser is a failure rather than a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class Page:
    """One tab: commands by id, events collected as they arrive."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requested: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message)
                continue
            method = message.get("method")
            params = message.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requested.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                self.failed.append(f"{params.get('errorText')} ({params.get('requestId')})")
            elif method == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        await self.socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression!r}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def open_page(browser: str) -> AsyncIterator[Page]:
    """Starts a fresh headless browser (own profile) and yields its first tab."""
    # Chromium's helper processes can still be writing the profile when the browser has exited:
    # they run in the browser's process group and are stopped with it, and a file one of them
    # left behind must not fail the test
    with tempfile.TemporaryDirectory(prefix="lct-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            endpoint = await asyncio.to_thread(_devtools_endpoint, process)
            port = re.search(r":(\d+)/", endpoint)
            assert port, endpoint
            async with httpx.AsyncClient() as client:
                targets = (await client.get(f"http://127.0.0.1:{port.group(1)}/json/list")).json()
            page_target = next(target for target in targets if target["type"] == "page")
            async with websockets.connect(
                page_target["webSocketDebuggerUrl"], max_size=None
            ) as socket:
                page = Page(socket)
                await page.send("Network.enable")
                await page.send("Runtime.enable")
                await page.send("Page.enable")
                try:
                    yield page
                finally:
                    page.reader.cancel()
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Stops the browser and every process of its group (renderers, GPU, crash handler)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _devtools_endpoint(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    for line in process.stderr:
        seen.append(line)
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            # keep draining, or a chatty browser blocks on a full pipe
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return match.group(1)
        if time.monotonic() > deadline:
            break
    raise RuntimeError("Chromium did not start:\n" + "".join(seen[-20:]))
