"""The root query fields: refetch by id, one conversation, and the conversations list."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from graph.context import Context
from graph.conversations import Conversation
from graph.enums import ConversationType
from graph.filters import ConversationFilter
from graph.pagination import Connection, Direction, user_error
from graph.permissions import found_live
from graph.relations import ById, Paged
from graph.relay import Node, parse_uuid

Info = strawberry.Info[Context, None]


@strawberry.enum(description="What `conversations` is sorted by (ties broken by id).")
class ConversationOrderField(Enum):
    STARTED_AT = "started_at"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    CONVERSATION_NAME = "conversation_name"


def _conversations(
    owner_id: str | None = None,
    conversation_type: tuple[str, ...] | None = None,
    source_type: tuple[str, ...] | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    include_deleted: bool = False,
) -> ConversationFilter:
    return ConversationFilter(
        owner_id=owner_id,
        conversation_types=conversation_type,
        source_types=source_type,
        started_after=started_after,
        started_before=started_before,
        include_deleted=include_deleted,
    )


CONVERSATION = ById("conversation")
CONVERSATIONS = Paged("conversation", key=_conversations, order_column="started_at")


async def _refetch(info: Info, ids: list[uuid.UUID]) -> list[Node | None]:
    found = await info.context.loaders.at(info).object_by_id.load_many(ids)
    return [found_live(item) for item in found]


def _parse_or_error(value: Any, argument: str) -> uuid.UUID | GraphQLError:
    try:
        return parse_uuid(value, argument)
    except GraphQLError as error:
        return error


@strawberry.type
class Query:
    @strawberry.field(
        description="Any object by its id; null when it does not exist or is not visible to you."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return (await _refetch(info, [parse_uuid(id)]))[0]

    @strawberry.field(
        description="Objects by id, in the order asked; null for each that does not exist or is"
        " not visible to you. A malformed id is null too, with an error at its position"
        " (`nodes.<index>`), as `node(id:)` answers it; the other ids are answered as usual."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        limit = info.context.settings.max_page_size
        if len(ids) > limit:
            raise user_error(f"`ids` holds {len(ids)} ids; at most {limit} are accepted.")
        parsed = [_parse_or_error(value, f"ids[{index}]") for index, value in enumerate(ids)]
        found = iter(await _refetch(info, [item for item in parsed if isinstance(item, uuid.UUID)]))
        # graphql-core completes an exception in a list as an error at that index and null there;
        # raising instead would null the non-null list and, with it, the whole `data`.
        answers: list[Any] = [
            next(found) if isinstance(item, uuid.UUID) else item for item in parsed
        ]
        return answers

    @CONVERSATION.field(
        description="A conversation by id; null when missing or not visible to you."
    )
    async def conversation(
        self,
        info: Info,
        id: strawberry.ID,
        include_deleted: Annotated[
            bool,
            strawberry.argument(
                description="Also find it when soft-deleted (only its owner ever does)."
            ),
        ] = False,
    ) -> Conversation | None:
        return await CONVERSATION.resolve(
            self, info, id=parse_uuid(id), include_deleted=include_deleted
        )

    @CONVERSATIONS.field(
        description="The conversations you may read, soft-deleted ones left out; newest first by"
        " default."
    )
    async def conversations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        owner_id: str | None = None,
        conversation_type: list[ConversationType] | None = None,
        source_type: list[str] | None = None,
        started_after: Annotated[
            datetime | None, strawberry.argument(description="Started at or after this.")
        ] = None,
        started_before: Annotated[
            datetime | None, strawberry.argument(description="Started before this.")
        ] = None,
        order_by: ConversationOrderField = ConversationOrderField.STARTED_AT,
        direction: Direction = Direction.DESC,
        include_deleted: Annotated[
            bool,
            strawberry.argument(
                description="Also list your own soft-deleted conversations (nobody else's are"
                " ever listed)."
            ),
        ] = False,
    ) -> Connection[Conversation]:
        return await CONVERSATIONS.resolve(
            self,
            info,
            first=first,
            after=after,
            owner_id=owner_id,
            conversation_type=conversation_type,
            source_type=source_type,
            started_after=started_after,
            started_before=started_before,
            order_by=order_by,
            direction=direction,
            include_deleted=include_deleted,
        )
