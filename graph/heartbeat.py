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
- `/metrics` gets every wake-up's lateness (`lct_event_loop_stall_seconds`), the worst stall of
  the last minute (`lct_event_loop_worst_stall_seconds`) and the garbage collector's pauses
  (`lct_gc_pause_seconds`): a collection holds the loop as long as it takes.
- `PauseCollection` (installed as the outermost middleware) turns automatic garbage collection
  off while a request with a large body runs (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from db.settings import Settings
from graph import jsonbody
from graph.observability import EVENT_LOOP_STALL, EVENT_LOOP_WORST_STALL, GC_PAUSE

INTERVAL_SECONDS = 0.015
# The worst-stall gauge covers this many seconds, one slot a second.
WORST_STALL_SECONDS = 60


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
        gauge = self.window()
        seconds: deque[float] = deque(maxlen=WORST_STALL_SECONDS)
        second = loop.time()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            late = now - expected
            EVENT_LOOP_STALL.observe(late)
            _report_collections()
            for window in self._windows:
                if late > window.worst:
                    window.worst = late
            if now - second >= 1:
                second = now
                seconds.append(gauge.take())
                EVENT_LOOP_WORST_STALL.set(max(seconds))


_collection_started = 0.0
# (generation, seconds) of collections not yet in the histogram
_collections: deque[tuple[int, float]] = deque(maxlen=10_000)


def _record_collection(phase: str, info: dict[str, Any]) -> None:
    """A `gc.callbacks` entry: notes each collection's pause (collections never overlap: the
    collector runs under the GIL and refuses to re-enter). The heartbeat moves them into
    `lct_gc_pause_seconds`: a metric takes a lock the collection may have interrupted."""
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    else:
        _collections.append((info["generation"], time.perf_counter() - _collection_started))


def _report_collections() -> None:
    while _collections:
        generation, seconds = _collections.popleft()
        GC_PAUSE.labels(str(generation)).observe(seconds)


# Requests with a body at least this large run with automatic garbage collection off.
LARGE_BODY_BYTES = 1_000_000
RELEASE_ITEMS = 64
SLICE_SECONDS = 0.005
_pausing = 0


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off until the last of the overlapping pauses ends (unless it
    was off already: then it stays off)."""
    global _pausing
    if _pausing == 0 and not gc.isenabled():
        yield
        return
    _pausing += 1
    gc.disable()
    try:
        yield
    finally:
        _pausing -= 1
        if _pausing == 0:
            gc.enable()


class PauseCollection:
    """ASGI middleware: no automatic garbage collection while a request with a large body runs.

    Parsing and importing a 30 MB document makes millions of objects that live until the request
    ends. Each full collection meanwhile walks all of them, on whichever thread triggered it and
    holding the GIL: the event loop stood still for 100 ms and more, several times per import.
    Reference counting still frees everything as usual; only cycles wait for the next collection,
    after the request, when the document is gone. `Content-Length` decides; a chunked body runs
    as any other."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _content_length(scope) < LARGE_BODY_BYTES:
            await self.app(scope, receive, send)
            return
        parsed: list[Any] = []
        token = jsonbody.kept.set(parsed)
        try:
            with collection_paused():
                await self.app(scope, receive, send)
                await release(parsed)
        finally:
            jsonbody.kept.reset(token)


async def release(value: Any) -> None:
    """Empties `value` (a parsed JSON body) from the outside in, with a turn for the event loop
    every `SLICE_SECONDS`.

    GraphQL execution keeps the variables in a reference cycle (graphql-core's execution context
    and its bound methods), so a request's body is freed by the garbage collector, all of it in
    one pause: 0.3 s for a 30 MB document. Emptied here first, it is freed by reference counting
    as it goes. The outer containers (the request, its variables, a variable, the lists in it:
    `jsonbody.OUTER_DEPTH` levels) are taken apart item by item; below them a container is
    dropped whole unless it holds more than `RELEASE_ITEMS` items."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    since = time.perf_counter()
    while pending:
        container, depth = pending.pop()
        take = container.popitem if isinstance(container, dict) else container.pop
        while container:
            item = take()
            if isinstance(item, tuple):  # a dict's (key, value)
                item = item[1]
            if isinstance(item, dict | list) and (
                depth + 1 < jsonbody.OUTER_DEPTH or len(item) > RELEASE_ITEMS
            ):
                pending.append((item, depth + 1))
            del item
            if time.perf_counter() - since >= SLICE_SECONDS:
                await asyncio.sleep(0)
                since = time.perf_counter()


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def install(app: Starlette, settings: Settings) -> EventLoopMonitor:
    """Runs a monitor for `app`'s lifespan (around the app's own), keeps it on `app.state`,
    records garbage collections, adds `PauseCollection`, and with `debug_sql_count` serves
    `GET /debug/event-loop`."""
    monitor = EventLoopMonitor()
    app.state.event_loop_monitor = monitor
    app.add_middleware(PauseCollection)
    inner: Callable[[Any], Any] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        monitor.start()
        if _record_collection not in gc.callbacks:
            gc.callbacks.append(_record_collection)
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
