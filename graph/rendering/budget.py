"""How many rendered list items one server process holds at once (`LCT_RENDER_BUDGET_ROWS`)."""

from __future__ import annotations

import asyncio


class RenderBudget:
    """A 10,000-node canvas is some 12 MB of JSON, held as rows, as the response body and in the
    socket's buffer until it is sent; thirty-two of them at once would take half a gigabyte. A
    request reserves its first rendered list's page size before the statement runs and gives it
    back once its response is sent (`graph.app.GraphQLView`); requests that do not fit wait, so
    memory stays bounded while PostgreSQL, which does the work, stays busy. A request reserves
    once, whatever else it renders, so that no two requests can wait on each other.
    """

    def __init__(self, rows: int) -> None:
        self.capacity = rows
        self.free = rows
        self._waiting: list[asyncio.Future[None]] = []

    async def reserve(self, rows: int) -> int:
        rows = min(max(rows, 1), self.capacity)
        while self.free < rows:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                self._waiting.remove(waiter)
        self.free -= rows
        return rows

    def give_back(self, rows: int) -> None:
        """Synchronous, so that a cancelled request still gives its rows back."""
        self.free += rows
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_result(None)
