"""The `ApiCall` type: one LLM call and what it cost (a row of `api_calls_log`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.relations import OF_CONVERSATION
from graph.relay import Node

if TYPE_CHECKING:
    from graph.conversations import Conversation

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]


@strawberry.type(description="One LLM API call and its cost.")
class ApiCall(Node):
    conversation_id: strawberry.ID | None = strawberry.field(
        description="The id of `conversation`; null for a call made for no conversation."
    )
    endpoint: str = strawberry.field(
        description="The API endpoint called, as its caller reported it."
    )
    feature: str = strawberry.field(description="What the call was for, e.g. node_generation.")
    provider: str = strawberry.field(description="Who served the call (e.g. openai, anthropic).")
    model: str = strawberry.field(description="The model the call used, as the provider names it.")
    prompt_tokens: int = strawberry.field(description="Tokens sent.")
    completion_tokens: int = strawberry.field(description="Tokens received.")
    total_tokens: int = strawberry.field(description="`promptTokens` + `completionTokens`.")
    prompt_cost: float = strawberry.field(description="In US dollars.")
    completion_cost: float = strawberry.field(description="In US dollars.")
    total_cost: float = strawberry.field(description="In US dollars.")
    latency_ms: int | None = strawberry.field(
        description="Milliseconds from sending the request to the complete answer."
    )
    status: str = strawberry.field(
        description="The call's outcome as its caller reported it, free text (e.g. success, error;"
        " see `errorMessage`)."
    )
    error_message: str | None = strawberry.field(
        description="What went wrong, when `status` says it did."
    )
    started_at: datetime = strawberry.field(description="When the call was sent.")
    completed_at: datetime | None = strawberry.field(
        description="When the answer was complete; null when it never was."
    )
    request_id: str | None = strawberry.field(description="The provider's request id.")

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)
