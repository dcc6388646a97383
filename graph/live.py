"""The change feed: what each process reads from the `changes` table, and who it tells.

The table is the truth (alembic revision 4f7a2c91d3e8 fills it from triggers, in the writing
transaction). A conversation's changes carry positions 1, 2, 3, ... in commit order with no gaps,
so a subscriber's cursor is a position and "what did I miss" is `position > cursor`; the changes
that matter to conversation lists are numbered the same way on one list counter (`LIST`).

Each process keeps one `Channel` per stream that has subscribers here. A channel reads each new
change once, resolves it once per group of subscribers that share a document, variables and
viewer (graph/subscriptions.py), and hands the result to every member. It learns of new changes
from `NOTIFY lct_changes` on one LISTEN connection per process, and, because a wake-up can be
lost (the listening backend killed, PostgreSQL restarted), from a poll of the counters of its
streams every `LCT_LIVE_POLL_SECONDS`: a lost wake-up delays a change, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.settings import Settings, connect_arguments

logger = logging.getLogger("lct.live")

LIST = uuid.UUID(int=0)
"""The stream of changes to conversation lists (its counter is the nil UUID's row)."""

CHANNEL = "lct_changes"
LISTENER_NAME = "lct-graph-listener"
READ_BATCH = 200
PRUNE_BATCH = 5_000


async def note_actor(session: AsyncSession, actor_id: str, operation: str) -> None:
    """Names the acting user and the mutation on the changes this transaction recorded.

    Runs just before the mutation commits (graph/mutations/common.py); a transaction that wrote
    nothing has no transaction id and matches nothing."""
    await session.execute(
        text(
            "UPDATE changes SET actor_id = :actor, operation = :operation"
            " WHERE transaction_id = pg_current_xact_id_if_assigned()::text::bigint"
        ),
        {"actor": actor_id, "operation": operation},
    )


def encode_cursor(position: int) -> str:
    """Opaque to clients; fixed width, so cursors also sort as strings."""
    return f"{position:016x}"


def decode_cursor(cursor: str) -> int | None:
    if len(cursor) != 16:
        return None
    try:
        return int(cursor, 16)
    except ValueError:
        return None


@dataclass(frozen=True)
class Change:
    """One row of `changes`; `position` is the stream's (the list position for `LIST`)."""

    position: int
    conversation_id: uuid.UUID
    kinds: tuple[str, ...]
    operation: str | None
    actor_id: str | None
    node_ids: tuple[uuid.UUID, ...]
    relationship_ids: tuple[uuid.UUID, ...]
    cluster_ids: tuple[uuid.UUID, ...]
    utterance_ids: tuple[uuid.UUID, ...]
    access_before: dict[str, Any] | None
    access_after: dict[str, Any] | None
    at: datetime


def _unique(values: Iterable[uuid.UUID] | None) -> tuple[uuid.UUID, ...]:
    return tuple(dict.fromkeys(values or ()))


def readable(access: dict[str, Any] | None, viewer_id: str | None) -> bool:
    """graph/permissions.py's `can_read` on a change's access facts (None: no conversation)."""
    if access is None or access.get("deleted"):
        return False
    if access.get("visibility") == "public":
        return True
    if viewer_id is None:
        return False
    if access.get("owner_id") == viewer_id:
        return True
    return access.get("visibility") == "shared" and viewer_id in (access.get("shared_with") or ())


class CursorExpired(Exception):
    """The changes after the cursor were pruned (or the cursor was never issued)."""


COLUMNS = (
    "position, list_position, conversation_id, kinds, operation, actor_id, node_ids,"
    " relationship_ids, cluster_ids, utterance_ids, access_before, access_after, created_at"
)


class Feed:
    """Reads the change table: heads (counters) and changes after a position."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def _rows(self, statement: str, parameters: dict[str, Any]) -> list[Any]:
        async with self.session_factory() as session:
            rows = list((await session.execute(text(statement), parameters)).all())
            await session.commit()
        return rows

    async def heads(self, streams: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = await self._rows(
            "SELECT conversation_id, position FROM change_counters"
            " WHERE conversation_id = ANY(:streams)",
            {"streams": streams},
        )
        heads = dict.fromkeys(streams, 0)
        heads.update({row.conversation_id: row.position for row in rows})
        return heads

    async def read(
        self, stream: uuid.UUID, after: int, upto: int | None = None, limit: int = READ_BATCH
    ) -> list[Change]:
        column = "list_position" if stream == LIST else "position"
        where = f"{column} > :after" + (f" AND {column} <= :upto" if upto is not None else "")
        if stream != LIST:
            where += " AND conversation_id = :stream"
        rows = await self._rows(
            f"SELECT {COLUMNS} FROM changes WHERE {where} ORDER BY {column} LIMIT :limit",
            {"after": after, "upto": upto, "stream": stream, "limit": limit},
        )
        return [
            Change(
                position=row.list_position if stream == LIST else row.position,
                conversation_id=row.conversation_id,
                kinds=tuple(row.kinds),
                operation=row.operation,
                actor_id=row.actor_id,
                node_ids=_unique(row.node_ids),
                relationship_ids=_unique(row.relationship_ids),
                cluster_ids=_unique(row.cluster_ids),
                utterance_ids=_unique(row.utterance_ids),
                access_before=row.access_before,
                access_after=row.access_after,
                at=row.created_at,
            )
            for row in rows
        ]

    async def prune(self, retention_seconds: int) -> int:
        """Deletes changes older than the retention window, a batch per short transaction (no
        lock a writer waits for: writers only insert rows and update counters)."""
        pruned = 0
        while True:
            rows = await self._rows(
                "DELETE FROM changes WHERE id IN (SELECT id FROM changes WHERE created_at <"
                " clock_timestamp() - make_interval(secs => :seconds) ORDER BY created_at"
                " LIMIT :batch) RETURNING 1",
                {"seconds": retention_seconds, "batch": PRUNE_BATCH},
            )
            pruned += len(rows)
            if len(rows) < PRUNE_BATCH:
                return pruned


class Member(Protocol):
    """A subscriber as a channel sees it (graph/subscriptions.py)."""

    group_key: tuple[Any, ...]

    def receive(self, change: Change, payload: bytes | None) -> None: ...


# (a member of the group, the change, how many members share the result)
Resolve = Callable[[Member, Change, int], Awaitable[bytes | None]]


@dataclass(eq=False)
class Channel:
    """The subscribers of one stream in this process, and the task that feeds them."""

    stream: uuid.UUID
    hub: Hub
    head: int = 0
    # subscribers between `hub.channel()` and `add` (waiting for the head): keep the channel
    joining: int = 0
    members: dict[tuple[Any, ...], set[Member]] = field(default_factory=dict)
    _woken: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lct-live-{self.stream}")

    async def ready(self) -> int:
        await self._ready.wait()
        return self.head

    def wake(self) -> None:
        self._woken.set()

    def add(self, member: Member) -> int:
        """Adds a member; returns the head: the member receives every change after it."""
        self.members.setdefault(member.group_key, set()).add(member)
        return self.head

    def remove(self, member: Member) -> None:
        group = self.members.get(member.group_key)
        if group is not None:
            group.discard(member)
            if not group:
                del self.members[member.group_key]
        self.forget_if_unused()

    def forget_if_unused(self) -> None:
        if not self.members and not self.joining:
            self.hub.forget(self)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while not self._ready.is_set():
            try:
                self.head = (await self.hub.feed.heads([self.stream]))[self.stream]
                self._ready.set()
            except Exception:
                logger.warning("could not read the head of %s; retrying", self.stream)
                await asyncio.sleep(self.hub.settings.live_poll_seconds)
        while True:
            await self._woken.wait()
            self._woken.clear()
            try:
                await self._catch_up()
            except Exception:
                logger.warning("could not read changes of %s; retrying", self.stream)
                await asyncio.sleep(self.hub.settings.live_poll_seconds)
                self._woken.set()

    async def _catch_up(self) -> None:
        while True:
            changes = await self.hub.feed.read(self.stream, self.head)
            for change in changes:
                await self._deliver(change)
            if len(changes) < READ_BATCH:
                return

    async def _deliver(self, change: Change) -> None:
        # The head moves before the members are listed: a member added while this change is
        # being resolved reads it itself (graph/subscriptions.py), one listed here gets it here.
        self.head = change.position
        groups = [(key, list(members)) for key, members in self.members.items()]
        limiter = self.hub.resolving

        async def resolve(members: list[Member]) -> None:
            async with limiter:
                payload = await self.hub.resolve(members[0], change, len(members))
            for member in members:
                member.receive(change, payload)

        await asyncio.gather(*(resolve(members) for _, members in groups if members))


class Hub:
    """The process's channels, its LISTEN connection, its poll, and the pruning of old changes."""

    def __init__(
        self,
        settings: Settings,
        url: URL,
        session_factory: async_sessionmaker[AsyncSession],
        resolve: Resolve,
        concurrency: int = 4,
    ) -> None:
        self.settings = settings
        self.url = url
        self.feed = Feed(session_factory)
        self.resolve = resolve
        self.channels: dict[uuid.UUID, Channel] = {}
        self.resolving = asyncio.Semaphore(concurrency)
        self.connections = 0
        self.listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def channel(self, stream: uuid.UUID) -> Channel:
        channel = self.channels.get(stream)
        if channel is None:
            channel = self.channels[stream] = Channel(stream, self)
            channel.start()
        return channel

    def forget(self, channel: Channel) -> None:
        if self.channels.get(channel.stream) is channel:
            del self.channels[channel.stream]
            channel.stop()

    def wake(self, streams: Iterable[uuid.UUID] | None = None) -> None:
        for stream in list(self.channels) if streams is None else streams:
            channel = self.channels.get(stream)
            if channel is not None:
                channel.wake()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="lct-live-listen"),
            asyncio.create_task(self._poll(), name="lct-live-poll"),
            asyncio.create_task(self._prune(), name="lct-live-prune"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *(channel._task for channel in self.channels.values())]:
            if task is not None:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self.channels.clear()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == "list":
            self.wake([LIST])
            return
        with contextlib.suppress(ValueError):
            self.wake([uuid.UUID(payload)])

    async def _listen(self) -> None:
        arguments = connect_arguments(self.url)
        # named, so that an operator (or a test) can find the listening backend
        arguments["server_settings"] = {
            **arguments.get("server_settings", {}),
            "application_name": LISTENER_NAME,
        }
        while True:
            lost = asyncio.Event()
            connection = None

            def terminated(_connection: Any, lost: asyncio.Event = lost) -> None:
                lost.set()

            try:
                connection = await asyncpg.connect(**arguments)
                connection.add_termination_listener(terminated)
                await connection.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                # Whatever was announced while nobody listened is read now.
                self.wake()
                while not lost.is_set() and not connection.is_closed():
                    # asyncpg notices a dead connection only when it uses it
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.settings.live_poll_seconds * 5)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
                raise
            except Exception as error:
                logger.warning("change feed listener lost (%s); reconnecting", type(error).__name__)
            self.listening.clear()
            if connection is not None:
                connection.terminate()
            await asyncio.sleep(self.settings.live_poll_seconds)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.live_poll_seconds)
            streams = list(self.channels)
            if not streams:
                continue
            try:
                heads = await self.feed.heads(streams)
            except Exception as error:
                logger.warning("change feed poll failed (%s)", type(error).__name__)
                continue
            for stream, head in heads.items():
                channel = self.channels.get(stream)
                if channel is not None and head > channel.head:
                    channel.wake()

    async def _prune(self) -> None:
        interval = min(3600.0, self.settings.live_retention_seconds / 10)
        while True:
            await asyncio.sleep(interval)
            try:
                pruned = await self.feed.prune(self.settings.live_retention_seconds)
                if pruned:
                    logger.info("pruned %d changes older than the retention window", pruned)
            except Exception as error:
                logger.warning("pruning the change feed failed (%s)", type(error).__name__)
