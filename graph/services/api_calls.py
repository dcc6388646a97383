"""The log of LLM API calls and their cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiCall
from graph.services.common import Actor, check_text, lock_conversation
from graph.services.errors import ErrorCode, InvalidInput


async def record_api_call(session: AsyncSession, actor: Actor, values: dict[str, Any]) -> ApiCall:
    for name, field in (
        ("endpoint", "endpoint"),
        ("feature", "feature"),
        ("provider", "provider"),
        ("model", "model"),
        ("status", "status"),
    ):
        check_text(values.get(name), field, required=True)
    for name, field in (("error_message", "errorMessage"), ("request_id", "requestId")):
        check_text(values.get(name), field)
    for name, field in (
        ("prompt_tokens", "promptTokens"),
        ("completion_tokens", "completionTokens"),
        ("prompt_cost", "promptCost"),
        ("completion_cost", "completionCost"),
        ("latency_ms", "latencyMs"),
    ):
        if (values.get(name) or 0) < 0:
            raise InvalidInput(
                f"{field} must not be negative.", field=field, code=ErrorCode.OUT_OF_RANGE
            )
    values = {
        "started_at": datetime.now(UTC),
        "total_tokens": values["prompt_tokens"] + values["completion_tokens"],
        "total_cost": values["prompt_cost"] + values["completion_cost"],
        **{key: value for key, value in values.items() if value is not None},
    }
    completed = values.get("completed_at")
    if completed is not None and completed < values["started_at"]:
        raise InvalidInput("completedAt must not be before startedAt.", field="completedAt")
    if values.get("conversation_id") is not None:
        await lock_conversation(session, values["conversation_id"], actor.user_id)
    call = ApiCall(id=uuid.uuid4(), **values)
    session.add(call)
    await session.flush()
    return (
        await session.execute(
            select(ApiCall).where(ApiCall.id == call.id).execution_options(populate_existing=True)
        )
    ).scalar_one()
