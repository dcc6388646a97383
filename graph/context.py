"""The per-request context: who is asking, one database session, and the request's loaders.

Strawberry resolves sibling fields concurrently, and dataloaders of different kinds dispatch in the
same event-loop tick, but an `AsyncSession` (one asyncpg connection) can run only one statement at
a time. Every read therefore goes through `Context.fetch`, which holds `lock` around the statement
and the fetching of its rows, so the session is never used by two coroutines at once. The session
is opened on the first statement (a GraphiQL page load opens none) and closed when the response is
done (`graph.app.GraphQLView.run`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.settings import Settings

if TYPE_CHECKING:
    from graph.loaders import Loaders


@dataclass(eq=False)
class Context:
    request: Any
    response: Any
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    viewer_id: str | None
    loaders: Loaders = field(init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # how many lists PostgreSQL rendered (graph.rendering), reported with LCT_DEBUG_SQL_COUNT
    rendered_lists: int = 0
    _session: AsyncSession | None = None

    def __post_init__(self) -> None:
        from graph.loaders import Loaders

        self.loaders = Loaders(self)

    async def fetch(self, statement: Executable, parameters: Any = None) -> list[Row[Any]]:
        """Runs one read statement on the request's session and returns all its rows."""
        async with self.lock:
            if self._session is None:
                self._session = self.session_factory()
            result = await self._session.execute(statement, parameters)
            return list(result.all())

    async def close(self) -> None:
        async with self.lock:
            if self._session is not None:
                session, self._session = self._session, None
                await session.close()
