"""The event-loop heartbeat: how long this process's event loop was kept from running anything.

One process serves many clients on one event loop, so a long CPU step in any request (a large
document checked in one go, a quadratic scan) delays every other client of the process. The
monitor measures exactly that from inside: a task asks to wake every `interval` seconds and records
how late it woke. The lateness is the loop's stall: the longest time nothing else could run.

API (everything else is private):

- `EventLoopMonitor(interval=0.015)`: one per app; `install(app, settings)` makes it, runs it for
  the app's lifespan and keeps it as `app.state.event_loop_monitor`.
- `monitor.window()` gives a `StallWindow`; `window.take()` returns the worst stall in seconds
  since the window was made or last taken, and starts a new period. Every reader (the debug route,
  a metrics exporter) takes its own window, so readers never reset each other's figure.
- With `LCT_DEBUG_SQL_COUNT` on, `GET /debug/event-loop` answers `{"worstStallMs": ...,
  "intervalMs": ...}` (the worst stall since the previous call) for the benchmark and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from db.settings import Settings

INTERVAL_SECONDS = 0.015


class StallWindow:
    """The worst stall one reader has not seen yet."""

    def __init__(self) -> None:
        self.worst = 0.0

    def take(self) -> float:
        """The worst stall (seconds) since the last `take`; starts a new period."""
        worst, self.worst = self.worst, 0.0
        return worst


class EventLoopMonitor:
    """Wakes every `interval` seconds on the running loop and records how late each wake-up was."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._windows: list[StallWindow] = []
        self._task: asyncio.Task[None] | None = None

    def window(self) -> StallWindow:
        window = StallWindow()
        self._windows.append(window)
        return window

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            late = loop.time() - expected
            for window in self._windows:
                if late > window.worst:
                    window.worst = late


def install(app: Starlette, settings: Settings) -> EventLoopMonitor:
    """Runs a monitor for `app`'s lifespan (around the app's own), keeps it on `app.state`, and
    with `debug_sql_count` serves `GET /debug/event-loop`."""
    monitor = EventLoopMonitor()
    app.state.event_loop_monitor = monitor
    inner: Callable[[Any], Any] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        monitor.start()
        try:
            async with inner(application) as state:
                yield state
        finally:
            await monitor.stop()

    app.router.lifespan_context = lifespan
    if settings.debug_sql_count:
        window = monitor.window()

        async def event_loop(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "worstStallMs": round(window.take() * 1000, 3),
                    "intervalMs": monitor.interval * 1000,
                }
            )

        app.add_route("/debug/event-loop", event_loop, methods=["GET"])
    return monitor
