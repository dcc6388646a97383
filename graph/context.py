"""The per-request context: who is asking, one database connection, and the request's loaders.

Strawberry resolves sibling fields concurrently, and dataloaders of different kinds dispatch in the
same event-loop tick, but one asyncpg connection can run only one statement at a time. Every read
therefore goes through `Context.fetch`, which holds `lock` around the statement and the fetching
of its rows, so the connection is never used by two coroutines at once. Reads are Core
statements, so they run on a connection of the session factory's engine rather than through an
ORM session, whose bookkeeping added a hundred Python calls to every request. The connection is
taken on the first statement (a GraphiQL page load takes none) and given back when the response
is done (`graph.app.GraphQLView.run`).

A read whose connection died before it returned anything (a failover, `pg_terminate_backend`, an
idle-connection reaper) is run once more on a fresh connection: reads are safe to repeat, and at
READ COMMITTED each statement sees its own snapshot anyway. A second failure is reported as the
outage it is (`graph.masking`: `SERVICE_UNAVAILABLE`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Row
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from db.session import read_options
from db.settings import Settings
from graph.masking import is_unavailable

if TYPE_CHECKING:
    from graph.loaders import Loaders
    from graph.rendering import RenderBudget

logger = logging.getLogger("lct.context")


@dataclass(eq=False)
class Context:
    request: Any
    response: Any
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    viewer_id: str | None
    loaders: Loaders = field(init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    render_budget: RenderBudget | None = None
    # how many lists PostgreSQL rendered (graph.rendering), reported with LCT_DEBUG_SQL_COUNT
    rendered_lists: int = 0
    _reserved_rows: int = 0
    _reserving: asyncio.Lock = field(default_factory=asyncio.Lock)
    # the request's large lists, emptied when it is done (see `close`)
    to_empty: list[list[Any]] = field(default_factory=list)
    _connection: AsyncConnection | None = None

    def __post_init__(self) -> None:
        from graph.loaders import Loaders

        self.loaders = Loaders(self)

    async def fetch(self, statement: Executable, parameters: Any = None) -> list[Row[Any]]:
        """Runs one read statement on the request's session and returns all its rows; retried
        once on a fresh connection when the connection failed (see the module docstring)."""
        async with self.lock:
            try:
                return await self._fetch(statement, parameters)
            except Exception as error:
                # a pool full for its whole timeout would only make the client wait twice
                if not is_unavailable(error) or isinstance(error, PoolTimeout):
                    raise
                logger.warning("read retried on a fresh connection after %r", error)
                await self._discard_connection()
            return await self._fetch(statement, parameters)

    async def _fetch(self, statement: Executable, parameters: Any) -> list[Row[Any]]:
        if self._connection is None:
            engine: AsyncEngine = self.session_factory.kw["bind"]
            connection = await engine.connect()
            self._connection = await connection.execution_options(**read_options(self.settings))
        result = await self._connection.execute(statement, parameters)
        return list(result.all())

    async def _discard_connection(self) -> None:
        """Drops the connection, which is not given back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception as error:  # the connection is gone already
                logger.debug("discarding a dead connection: %r", error)

    async def rendering(self, rows: int) -> None:
        """Counts a rendered list, and reserves room for the request's first one.

        Sibling lists (one per parent of a nested connection) arrive together: the first
        reserves while the others wait on `_reserving`, so a request never holds two shares.
        """
        self.rendered_lists += 1
        if self.render_budget is None:
            return
        async with self._reserving:
            if not self._reserved_rows:
                self._reserved_rows = await self.render_budget.reserve(rows)

    def rendered(self) -> None:
        """The response is sent: the room reserved for its rendered rows is free again."""
        if self.render_budget is not None and self._reserved_rows:
            rows, self._reserved_rows = self._reserved_rows, 0
            self.render_budget.give_back(rows)

    async def close(self) -> None:
        """Ends the request: its connection goes back to the pool and its rows are freed.

        The response is encoded by now. The executor's and the loaders' objects refer to each
        other, so without help the rows of a large page would stay in memory until the next full
        garbage collection; emptying the lists frees them at once.
        """
        self.loaders.forget()
        for items in self.to_empty:
            items.clear()
        self.to_empty.clear()
        async with self.lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                try:
                    await connection.close()
                except Exception as error:  # the response is made; a dead connection is dropped
                    logger.warning("closing the request's connection failed: %r", error)
                    self._connection = connection
                    await self._discard_connection()
