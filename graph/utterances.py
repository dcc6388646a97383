"""The `Utterance` type: one speaker's turn in a conversation's transcript."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.relations import OF_CONVERSATION, ToOne
from graph.relay import CREATED_AT, UPDATED_AT, Node
from graph.scalars import JSON

if TYPE_CHECKING:
    from graph.conversations import Conversation
    from graph.nodes import ThreadNode

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
LazyNode = Annotated["ThreadNode", strawberry.lazy("graph.nodes")]


NODE = ToOne("node", reference="node_id")


@strawberry.type(description="One speaker's turn in the transcript.")
class Utterance(Node):
    conversation_id: strawberry.ID = strawberry.field(description="The id of `conversation`.")
    text: str
    text_cleaned: str | None = strawberry.field(description="`text` without disfluencies.")
    speaker_id: str = strawberry.field(
        description="Who spoke: the speaker id that `speakerInfo.primarySpeaker` and the filters "
        "use."
    )
    speaker_name: str | None = strawberry.field(description="The speaker's display name.")
    speaker_role: str | None = strawberry.field(
        description="The speaker's role in the conversation, free text (e.g. facilitator)."
    )
    sequence_number: int = strawberry.field(
        description="Position in the conversation; unique per conversation."
    )
    timestamp_start: float | None = strawberry.field(
        description="Seconds from the start of the conversation."
    )
    timestamp_end: float | None = strawberry.field(
        description="Seconds from the start of the conversation."
    )
    duration_seconds: float | None = strawberry.field(
        description="How long the utterance lasts, in seconds."
    )
    chunk_id: uuid.UUID | None = strawberry.field(description="The transcript chunk it came in.")
    node_id: strawberry.ID | None = strawberry.field(description="The id of `node`.")
    thread_id: uuid.UUID | None = strawberry.field(
        description="An opaque id grouping utterances into a thread, as delivered by the pipeline"
        " or an import; no table holds threads, so it is stored and returned as given and never"
        " resolved."
    )
    confidence_score: float | None = strawberry.field(description="Transcription confidence.")
    language: str | None = strawberry.field(
        description="The language's code as delivered (`en` when none was given)."
    )
    emotion: str | None = strawberry.field(
        description="The speaker's emotion in this turn as the analysis labelled it, free text"
        " (e.g. neutral, curious, concerned)."
    )
    energy_level: float | None = strawberry.field(
        description="How much energy the speaker's delivery has in this turn, as the analysis"
        " scored it; the API checks no range (the demo data uses 0 to 1)."
    )
    platform_metadata: JSON | None = strawberry.field(
        description="Free-form, per platform (slack, discord, google_meet, ...)."
    )
    created_at: datetime = strawberry.field(description=CREATED_AT)
    updated_at: datetime = strawberry.field(description=UPDATED_AT)

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)

    @NODE.field(description="The node the utterance is assigned to.")
    async def node(self, info: Info) -> LazyNode | None:
        return await NODE.resolve(self, info)
