"""Subscriptions: the `Subscription` root type and the subscribers the transports serve.

Transports (graph/live_transport.py: graphql-transport-ws, graphql-sse) hand a subscribe request
to `Live.start`. It parses and validates the document with the same rules and limits as a query,
checks that the viewer may read the conversation (an invisible one is reported as missing), and
joins the stream's channel (graph/live.py). Every change is then resolved by running the
subscription's document as an ordinary operation whose root value is the change: each run has
fresh loaders and its own database session, closed before the next change, and the subscribers
of a channel that share document, variables and viewer share one run (and its serialised result).

A subscriber resuming with `since` reads the changes it missed itself, then receives what the
channel delivered meanwhile; a cursor older than the retention window ends the subscription with
`CURSOR_EXPIRED` instead of skipping anything. When the conversation stops being readable by the
viewer (unshared, made private, deleted, purged) the subscription ends with
`CONVERSATION_UNAVAILABLE` and nothing after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

import orjson
import strawberry
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql.execution.values import get_argument_values, get_variable_values
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ChangeCounter
from db.models import Conversation as ConversationRow
from db.settings import Settings
from graph.clusters import Cluster
from graph.context import Context
from graph.conversations import Conversation
from graph.limits import VALIDATION_RESULTS, Limits, limit_errors
from graph.live import (
    LIST,
    Change,
    Channel,
    CursorExpired,
    Hub,
    decode_cursor,
    encode_cursor,
    readable,
)
from graph.masking import SERVICE_UNAVAILABLE, new_error_id
from graph.nodes import ThreadNode
from graph.observability import count_event_delivered, count_slow_consumer, watch_live
from graph.permissions import visible_to
from graph.relationships import Relationship
from graph.relay import parse_uuid
from graph.strawberry_adapter import graphql_schema
from graph.utterances import Utterance

logger = logging.getLogger("lct.subscriptions")


@strawberry.enum(description="What a change to a conversation did.")
class ChangeKind(Enum):
    UTTERANCES_APPENDED = "utterances_appended"
    UTTERANCE_UPDATED = "utterance_updated"
    NODE_CREATED = "node_created"
    NODE_UPDATED = "node_updated"
    NODES_MOVED = "nodes_moved"
    NODE_DELETED = "node_deleted"
    NODES_MERGED = "nodes_merged"
    NODE_SPLIT = "node_split"
    RELATIONSHIP_CREATED = "relationship_created"
    RELATIONSHIP_UPDATED = "relationship_updated"
    RELATIONSHIP_DELETED = "relationship_deleted"
    CLUSTER_CREATED = "cluster_created"
    CLUSTER_UPDATED = "cluster_updated"
    CLUSTER_DELETED = "cluster_deleted"
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_UPDATED = "conversation_updated"
    CONVERSATION_DELETED = "conversation_deleted"
    CONVERSATION_RESTORED = "conversation_restored"
    CONVERSATION_PURGED = "conversation_purged"
    SHARING_CHANGED = "sharing_changed"


# Mutations whose rows alone would not say what happened (a merge inserts and deletes nodes).
KIND_OF_OPERATION = {
    "moveNodes": ChangeKind.NODES_MOVED,
    "mergeNodes": ChangeKind.NODES_MERGED,
    "splitNode": ChangeKind.NODE_SPLIT,
    "changeClusterMembership": ChangeKind.CLUSTER_UPDATED,
    "importConversation": ChangeKind.CONVERSATION_CREATED,
}

# Otherwise the first of the kinds of rows written, in this order.
KIND_OF_ROWS = (
    ("conversations.DELETE", ChangeKind.CONVERSATION_PURGED),
    ("conversations.deleted", ChangeKind.CONVERSATION_DELETED),
    ("conversations.restored", ChangeKind.CONVERSATION_RESTORED),
    ("conversations.sharing", ChangeKind.SHARING_CHANGED),
    ("conversations.INSERT", ChangeKind.CONVERSATION_CREATED),
    ("nodes.DELETE", ChangeKind.NODE_DELETED),
    ("nodes.INSERT", ChangeKind.NODE_CREATED),
    ("relationships.DELETE", ChangeKind.RELATIONSHIP_DELETED),
    ("relationships.INSERT", ChangeKind.RELATIONSHIP_CREATED),
    ("clusters.DELETE", ChangeKind.CLUSTER_DELETED),
    ("clusters.INSERT", ChangeKind.CLUSTER_CREATED),
    ("utterances.INSERT", ChangeKind.UTTERANCES_APPENDED),
    ("nodes.UPDATE", ChangeKind.NODE_UPDATED),
    ("relationships.UPDATE", ChangeKind.RELATIONSHIP_UPDATED),
    ("clusters.UPDATE", ChangeKind.CLUSTER_UPDATED),
    ("utterances.UPDATE", ChangeKind.UTTERANCE_UPDATED),
)


def kind_of(change: Change) -> ChangeKind:
    by_operation = KIND_OF_OPERATION.get(change.operation or "")
    if by_operation is not None:
        return by_operation
    for row_kind, kind in KIND_OF_ROWS:
        if row_kind in change.kinds:
            return kind
    return ChangeKind.CONVERSATION_UPDATED


def _ids(values: tuple[uuid.UUID, ...]) -> list[strawberry.ID]:
    return [strawberry.ID(str(value)) for value in values]


@strawberry.type(
    description="One committed change to a conversation: what it did, who did it, and the objects"
    " it touched as they are now (null where deleted or no longer visible)."
)
class ConversationChange:
    cursor: str = strawberry.field(
        description="Opaque, increasing within the conversation: resume with `since: cursor`."
    )
    kind: ChangeKind
    conversation_id: strawberry.ID
    actor_id: str | None = strawberry.field(
        description="The user whose mutation made the change (null for changes made outside the"
        " API, such as the demo loader)."
    )
    operation: str | None = strawberry.field(description="The mutation that made the change.")
    at: datetime = strawberry.field(description="When the change was written.")
    node_ids: list[strawberry.ID]
    relationship_ids: list[strawberry.ID]
    cluster_ids: list[strawberry.ID]
    utterance_ids: list[strawberry.ID]
    change: strawberry.Private[Change]

    @strawberry.field(description="The conversation as it is now.")
    async def conversation(self, info: strawberry.Info) -> Conversation | None:
        found = await info.context.loaders.conversation_by_id.load(self.change.conversation_id)
        return None if found is None or found.deleted_at is not None else found

    @strawberry.field(description="The nodes of `nodeIds` as they are now, in the same order.")
    async def nodes(self, info: strawberry.Info) -> list[ThreadNode | None]:
        return await info.context.loaders.node_by_id.load_many(self.change.node_ids)

    @strawberry.field(description="The relationships of `relationshipIds` as they are now.")
    async def relationships(self, info: strawberry.Info) -> list[Relationship | None]:
        return await info.context.loaders.relationship_by_id.load_many(self.change.relationship_ids)

    @strawberry.field(description="The clusters of `clusterIds` as they are now.")
    async def clusters(self, info: strawberry.Info) -> list[Cluster | None]:
        return await info.context.loaders.cluster_by_id.load_many(self.change.cluster_ids)

    @strawberry.field(description="The utterances of `utteranceIds` as they are now.")
    async def utterances(self, info: strawberry.Info) -> list[Utterance | None]:
        return await info.context.loaders.utterance_by_id.load_many(self.change.utterance_ids)

    @classmethod
    def of(cls, change: Change) -> ConversationChange:
        return cls(
            cursor=encode_cursor(change.position),
            kind=kind_of(change),
            conversation_id=strawberry.ID(str(change.conversation_id)),
            actor_id=change.actor_id,
            operation=change.operation,
            at=change.at,
            node_ids=_ids(change.node_ids),
            relationship_ids=_ids(change.relationship_ids),
            cluster_ids=_ids(change.cluster_ids),
            utterance_ids=_ids(change.utterance_ids),
            change=change,
        )


@strawberry.enum(description="How a change affects the viewer's list of conversations.")
class ConversationListChangeKind(Enum):
    CREATED = "created"
    SHARED_WITH_ME = "shared_with_me"
    UNSHARED = "unshared"
    UPDATED = "updated"
    DELETED = "deleted"
    RESTORED = "restored"
    PURGED = "purged"


def list_kind_for(change: Change, viewer_id: str | None) -> ConversationListChangeKind | None:
    """What the change means to this viewer's list; None when it does not concern them."""
    before = readable(change.access_before, viewer_id)
    after = readable(change.access_after, viewer_id)
    owner = viewer_id is not None and viewer_id == (
        (change.access_after or change.access_before or {}).get("owner_id")
    )
    if "conversations.DELETE" in change.kinds:
        return ConversationListChangeKind.PURGED if before or owner else None
    if "conversations.INSERT" in change.kinds:
        if not after:
            return None
        return (
            ConversationListChangeKind.CREATED
            if owner
            else ConversationListChangeKind.SHARED_WITH_ME
        )
    if before and after:
        return ConversationListChangeKind.UPDATED
    if after:
        restored = "conversations.restored" in change.kinds
        return (
            ConversationListChangeKind.RESTORED
            if restored
            else ConversationListChangeKind.SHARED_WITH_ME
        )
    if before:
        deleted = "conversations.deleted" in change.kinds
        return (
            ConversationListChangeKind.DELETED if deleted else ConversationListChangeKind.UNSHARED
        )
    return None


@strawberry.type(description="A change to the list of conversations the viewer can read.")
class ConversationListChange:
    cursor: str = strawberry.field(description="Opaque and increasing: resume with `since`.")
    kind: ConversationListChangeKind
    conversation_id: strawberry.ID
    actor_id: str | None
    at: datetime
    change: strawberry.Private[Change]

    @strawberry.field(description="The conversation as it is now; null once it is not readable.")
    async def conversation(self, info: strawberry.Info) -> Conversation | None:
        found = await info.context.loaders.conversation_by_id.load(self.change.conversation_id)
        return None if found is None or found.deleted_at is not None else found


@strawberry.type
class LiveQuery:
    @strawberry.field(
        description="The cursor of the conversation's latest change (null when it is not visible)."
        " Read it before the graph, then subscribe with `since:` it: nothing committed in"
        " between is missed."
    )
    async def conversation_change_cursor(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> str | None:
        conversation_id = parse_uuid(id)
        position = (
            select(ChangeCounter.position)
            .where(ChangeCounter.conversation_id == conversation_id)
            .scalar_subquery()
        )
        visible = select(ConversationRow.id).where(
            ConversationRow.id == conversation_id, visible_to(info.context.viewer_id)
        )
        rows = await info.context.fetch(
            select(func.coalesce(position, 0).label("position")).where(exists(visible))
        )
        return encode_cursor(rows[0].position) if rows else None


SINCE_DESCRIPTION = (
    "Resume after this cursor: the changes since then are sent first, in order. Omitted: only"
    " changes from now on."
)


@strawberry.type(description="Live changes, over WebSocket (graphql-transport-ws) or SSE.")
class Subscription:
    @strawberry.subscription(
        description="The committed changes of one conversation, oldest first. Ends with"
        " `CONVERSATION_UNAVAILABLE` when the conversation stops being readable."
    )
    async def conversation_changed(
        self,
        id: strawberry.ID,
        since: str | None = strawberry.UNSET,
    ) -> AsyncGenerator[ConversationChange, None]:
        raise NotImplementedError("served by graph.live_transport")
        yield  # pragma: no cover

    @strawberry.subscription(
        description="Changes to the list of conversations the viewer can read: created, shared"
        " with them, unshared, renamed, deleted, restored, purged."
    )
    async def conversations_changed(
        self, since: str | None = strawberry.UNSET
    ) -> AsyncGenerator[ConversationListChange, None]:
        raise NotImplementedError("served by graph.live_transport")
        yield  # pragma: no cover


# -- serving -------------------------------------------------------------------------------------


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


class Sink(Protocol):
    """Where a subscription's messages go: one transport connection."""

    def next(self, operation_id: str, payload: bytes) -> None: ...

    def error(self, operation_id: str, errors: list[dict[str, Any]]) -> None: ...

    def complete(self, operation_id: str) -> None: ...

    def finished(self, operation_id: str) -> None: ...


@dataclass(eq=False)
class Subscriber:
    """One active subscription; a member of its stream's channel."""

    live: Live
    sink: Sink
    operation_id: str
    query: str
    variables: dict[str, Any]
    operation_name: str | None
    viewer_id: str | None
    stream: uuid.UUID
    cursor: int = 0
    group_key: tuple[Any, ...] = ()
    catching_up: bool = False
    pending: list[tuple[Change, bytes | None]] = field(default_factory=list)
    ended: bool = False
    channel: Channel | None = None
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.group_key = (
            self.query,
            # as text: orjson's bytes keep a 4 KB buffer each, for as long as the subscriber
            orjson.dumps(self.variables, option=orjson.OPT_SORT_KEYS).decode(),
            self.operation_name,
            self.viewer_id,
        )

    def receive(self, change: Change, payload: bytes | None) -> None:
        if self.ended:
            return
        if self.catching_up:
            self.pending.append((change, payload))
            if len(self.pending) > self.live.settings.live_queue_size:
                count_slow_consumer("catch_up")
                self.end([error("The subscriber fell behind.", "SLOW_CONSUMER")])
            return
        self.emit(change, payload)

    def emit(self, change: Change, payload: bytes | None) -> None:
        if self.ended or change.position <= self.cursor:
            return
        self.cursor = change.position
        if self.stream != LIST and self.unavailable(change):
            self.end(
                [
                    error(
                        "The conversation was deleted or is no longer shared with you; this"
                        " subscription has ended. Reload the list of conversations.",
                        "CONVERSATION_UNAVAILABLE",
                    )
                ]
            )
            return
        if payload is not None:
            count_event_delivered()
            self.sink.next(self.operation_id, payload)

    def unavailable(self, change: Change) -> bool:
        if "conversations.DELETE" in change.kinds:
            return True
        return change.access_after is not None and not readable(change.access_after, self.viewer_id)

    def end(self, errors: list[dict[str, Any]] | None = None) -> None:
        """Stops the subscription; with errors, tells the client why."""
        if self.ended:
            return
        self.stop()
        if errors:
            self.sink.error(self.operation_id, errors)
        else:
            self.sink.complete(self.operation_id)
        self.sink.finished(self.operation_id)

    def stop(self) -> None:
        """Stops without a message (the client completed it, or the connection closed)."""
        self.ended = True
        self.pending.clear()
        if self.channel is not None:
            self.channel.remove(self)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def catch_up(self, upto: int) -> None:
        """Reads and sends the changes after `cursor` up to `upto`, then what the channel
        delivered meanwhile."""
        feed = self.live.hub.feed
        first = True
        try:
            while self.cursor < upto and not self.ended:
                changes = await feed.read(self.stream, self.cursor, upto)
                if first and (not changes or changes[0].position != self.cursor + 1):
                    raise CursorExpired
                first = False
                for change in changes:
                    self.emit(change, await self.live.resolve(self, change))
            pending, self.pending = self.pending, []
            self.catching_up = False
            for change, payload in sorted(pending, key=lambda item: item[0].position):
                self.emit(change, payload)
        except CursorExpired:
            self.end(
                [
                    error(
                        "The changes after this cursor are no longer kept (older than the"
                        " retention window). Reload the graph and subscribe without `since`.",
                        "CURSOR_EXPIRED",
                    )
                ]
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            error_id = new_error_id()
            logger.exception("catching up subscription failed (%s)", error_id)
            self.end([error("Unexpected error; it was logged.", "INTERNAL_SERVER_ERROR")])


RESOLVE_ATTEMPTS = 4
# an outage the read could not ride out (graph.masking): worth reading the change again
UNAVAILABLE = f'"{SERVICE_UNAVAILABLE}"'.encode()
ROOT_FIELDS = {"conversationChanged": False, "conversationsChanged": True}


class Live:
    """The subscriptions of one process: the hub of channels and how changes are resolved."""

    def __init__(
        self,
        schema: Any,
        settings: Settings,
        url: Any,
        session_factory: async_sessionmaker[AsyncSession],
        render_budget: Any = None,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.session_factory = session_factory
        self.render_budget = render_budget
        self.limits = Limits.from_settings(settings)
        self.hub = Hub(settings, url, session_factory, self.resolve)
        # subscriptions opened together wait here rather than for the pool (its timeout errs)
        self.starting = asyncio.Semaphore(max(1, settings.pool_size // 2))

    def context(self, viewer_id: str | None) -> Context:
        return Context(
            request=None,
            response=None,
            settings=self.settings,
            session_factory=self.session_factory,
            viewer_id=viewer_id,
            render_budget=self.render_budget,
        )

    async def execute(
        self,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        viewer_id: str | None,
        root: Any = None,
        shared_by: int = 1,
    ) -> bytes:
        """Runs the document once with fresh loaders and a session of its own, closed after."""
        context = self.context(viewer_id)
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                root_value=root,
                operation_name=operation_name,
            )
        finally:
            context.rendered()
            await context.close()
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [item.formatted for item in result.errors]
        if self.settings.debug_sql_count and result.extensions:
            # how many subscribers receive this one resolution (graph/live.py's groups)
            body["extensions"] = {**result.extensions, "sharedBy": shared_by}
        return orjson.dumps(body)

    async def resolve(self, member: Any, change: Change, shared_by: int = 1) -> bytes | None:
        """The payload of `change` for `member` and every subscriber in its group."""
        subscriber: Subscriber = member
        if subscriber.stream == LIST:
            kind = list_kind_for(change, subscriber.viewer_id)
            if kind is None:
                return None
            root: Any = ConversationListChange(
                cursor=encode_cursor(change.position),
                kind=kind,
                conversation_id=strawberry.ID(str(change.conversation_id)),
                actor_id=change.actor_id,
                at=change.at,
                change=change,
            )
        else:
            if subscriber.unavailable(change):
                return None
            root = ConversationChange.of(change)
        # A read may meet a connection that died with its server (PostgreSQL restarted): the
        # change is read again on a fresh one rather than sent as an error.
        for attempt in range(RESOLVE_ATTEMPTS):
            payload = await self.execute(
                subscriber.query,
                subscriber.variables,
                subscriber.operation_name,
                subscriber.viewer_id,
                root,
                shared_by,
            )
            retryable = b'"INTERNAL_SERVER_ERROR"' in payload or UNAVAILABLE in payload
            if not retryable or attempt == RESOLVE_ATTEMPTS - 1:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        return payload

    def check(
        self, query: str, variables: dict[str, Any], operation_name: str | None
    ) -> tuple[OperationDefinitionNode | None, Any, list[dict[str, Any]]]:
        """Parses and validates as a query is (rules and limits): operation, document, errors."""
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as syntax:
            return None, None, [dict(syntax.formatted)]
        schema = graphql_schema(self.schema)
        errors = VALIDATION_RESULTS.validate(schema, query, document, tuple(specified_rules))
        if not errors:
            errors = limit_errors(schema, document, self.limits, variables)
        if errors:
            return None, document, [dict(item.formatted) for item in errors]
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return None, document, [error("Name the operation to run.", "BAD_REQUEST")]
        return operation, document, []

    async def start(
        self,
        sink: Sink,
        operation_id: str,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        viewer_id: str | None,
    ) -> Subscriber | list[dict[str, Any]] | bytes:
        """A running subscriber; errors (nothing started); or, for a query or mutation sent
        over a subscription transport, its one result."""
        operation, _document, errors = self.check(query, variables, operation_name)
        if errors or operation is None:
            return errors
        if operation.operation != OperationType.SUBSCRIPTION:
            return await self.execute(query, variables, operation_name, viewer_id)
        selections = operation.selection_set.selections
        root = selections[0] if len(selections) == 1 else None
        if not isinstance(root, FieldNode) or root.name.value not in ROOT_FIELDS:
            return [
                error(
                    "Select one subscription field (conversationChanged or conversationsChanged)"
                    " directly, without fragments at the root.",
                    "BAD_USER_INPUT",
                )
            ]
        schema = graphql_schema(self.schema)
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return [dict(item.formatted) for item in coerced]
        assert schema.subscription_type is not None  # the schema has subscriptions
        definition = schema.subscription_type.fields[root.name.value]
        try:
            arguments = get_argument_values(definition, root, coerced)
        except GraphQLError as bad:
            return [dict(bad.formatted)]
        stream = LIST
        if root.name.value == "conversationChanged":
            try:
                stream = uuid.UUID(str(arguments["id"]))
            except ValueError:
                return [error("`id` is not a valid id.", "BAD_USER_INPUT")]
            async with self.starting:
                visible = await self.visible(stream, viewer_id)
            if not visible:
                return [error("No conversation with this id.", "NOT_FOUND")]
        since = arguments.get("since")
        cursor = None if since is None else decode_cursor(since)
        if since is not None and cursor is None:
            return [error("`since` is not a cursor this server issued.", "BAD_USER_INPUT")]
        subscriber = Subscriber(
            live=self,
            sink=sink,
            operation_id=operation_id,
            query=query,
            variables=variables,
            operation_name=operation_name,
            viewer_id=viewer_id,
            stream=stream,
        )
        channel = self.hub.channel(stream)
        channel.joining += 1
        try:
            await channel.ready()
            if cursor is not None and cursor > channel.head:
                known = (await self.hub.feed.heads([stream]))[stream]
                if cursor > known:
                    return [error("`since` is not a cursor of this stream.", "BAD_USER_INPUT")]
            subscriber.channel = channel
            head = channel.add(subscriber)
        finally:
            channel.joining -= 1
            channel.forget_if_unused()
        subscriber.cursor = head if cursor is None else cursor
        if subscriber.cursor < head:
            subscriber.catching_up = True
            subscriber.task = asyncio.create_task(subscriber.catch_up(head))
        return subscriber

    async def visible(self, conversation_id: uuid.UUID, viewer_id: str | None) -> bool:
        async with self.session_factory() as session:
            found = await session.scalar(
                select(ConversationRow.id).where(
                    ConversationRow.id == conversation_id, visible_to(viewer_id)
                )
            )
            await session.commit()
        return found is not None

    async def open(self) -> None:
        watch_live(self)  # its connections and subscriptions, in /metrics
        await self.hub.start()

    async def close(self) -> None:
        for channel in list(self.hub.channels.values()):
            for members in list(channel.members.values()):
                for member in list(members):
                    with contextlib.suppress(Exception):
                        member.end()  # type: ignore[attr-defined]
        await self.hub.stop()
