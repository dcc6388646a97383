"""The log of LLM API calls and their cost."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiCall
from graph.services.common import Actor, check_text, lock_conversation
from graph.services.errors import ErrorCode, InvalidInput, camel
from graph.services.fields import UNSET, Fields, Unset


@dataclass(frozen=True)
class ApiCallFields(Fields):
    """An API call as its caller reports it (see `graph.services.fields`); totals are derived."""

    endpoint: str | Unset | None = UNSET
    feature: str | Unset | None = UNSET
    provider: str | Unset | None = UNSET
    model: str | Unset | None = UNSET
    prompt_tokens: int | Unset | None = UNSET
    completion_tokens: int | Unset | None = UNSET
    prompt_cost: float | Unset | None = UNSET
    completion_cost: float | Unset | None = UNSET
    status: str | Unset | None = UNSET
    started_at: datetime | Unset | None = UNSET
    completed_at: datetime | Unset | None = UNSET
    latency_ms: int | Unset | None = UNSET
    error_message: str | Unset | None = UNSET
    request_id: str | Unset | None = UNSET


REQUIRED = (
    "endpoint",
    "feature",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "prompt_cost",
    "completion_cost",
    "status",
)


@dataclass(frozen=True)
class RecordApiCall:
    fields: ApiCallFields
    conversation_id: uuid.UUID | None = None


async def record_api_call(session: AsyncSession, actor: Actor, command: RecordApiCall) -> ApiCall:
    values = command.fields.provided()
    for name in REQUIRED:
        if values.get(name) is None:
            raise InvalidInput(
                f"{camel(name)} is required.", field=camel(name), code=ErrorCode.REQUIRED
            )
    for name in ("endpoint", "feature", "provider", "model", "status"):
        check_text(values[name], camel(name), required=True)
    for name in ("error_message", "request_id"):
        check_text(values.get(name), camel(name))
    for name in (
        "prompt_tokens",
        "completion_tokens",
        "prompt_cost",
        "completion_cost",
        "latency_ms",
    ):
        if (values.get(name) or 0) < 0:
            raise InvalidInput(
                f"{camel(name)} must not be negative.",
                field=camel(name),
                code=ErrorCode.OUT_OF_RANGE,
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
    if command.conversation_id is not None:
        await lock_conversation(session, command.conversation_id, actor.user_id)
    call = ApiCall(id=uuid.uuid4(), conversation_id=command.conversation_id, **values)
    session.add(call)
    await session.flush()
    return (
        await session.execute(
            select(ApiCall).where(ApiCall.id == call.id).execution_options(populate_existing=True)
        )
    ).scalar_one()
