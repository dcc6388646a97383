"""The `ApiCall` type: one LLM call and what it cost (a row of `api_calls_log`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.relay import Node

if TYPE_CHECKING:
    from graph.conversations import Conversation

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]


@strawberry.type(description="One LLM API call and its cost.")
class ApiCall(Node):
    conversation_id: strawberry.ID | None
    endpoint: str
    feature: str = strawberry.field(description="What the call was for, e.g. node_generation.")
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_cost: float = strawberry.field(description="In US dollars.")
    completion_cost: float = strawberry.field(description="In US dollars.")
    total_cost: float = strawberry.field(description="In US dollars.")
    latency_ms: int | None
    status: str = strawberry.field(
        description="The call's outcome as its caller reported it, free text (e.g. success, error;"
        " see `errorMessage`)."
    )
    error_message: str | None
    started_at: datetime
    completed_at: datetime | None
    request_id: str | None = strawberry.field(description="The provider's request id.")

    @strawberry.field
    async def conversation(self, info: Info) -> LazyConversation | None:
        if self.conversation_id is None:
            return None
        return await info.context.loaders.at(info).conversation_by_id.load(self.conversation_id)
