"""A small program against the generated Python client (`lct_client`), type-checked by mypy
--strict in the tests and run against a live server: it creates a conversation and nodes, reads
the canvas page by page, sends a node's values back as they were read, and branches on the typed
errors of the result union."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from lct_client.canvas import CanvasConversationNodesNodes
from lct_client.client import LctClient
from lct_client.create_node import CreateNodeCreateNodeNodePayload
from lct_client.enums import ConversationType, DialogueType, Visibility
from lct_client.input_types import (
    CreateConversationInput,
    CreateNodeInput,
    SecondarySpeakerInput,
    SpeakerInfoInput,
    UpdateNodeInput,
)
from lct_client.update_node import (
    UpdateNodeUpdateNodeConflictError,
    UpdateNodeUpdateNodeNodePayload,
    UpdateNodeUpdateNodeValidationError,
)


async def create_conversation(client: LctClient, name: str) -> str:
    result = await client.create_conversation(
        CreateConversationInput(
            conversation_name=name,
            conversation_type=ConversationType.TRANSCRIPT,
            source_type="example",
            visibility=Visibility.PRIVATE,
            started_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        )
    )
    payload = result.create_conversation
    if payload.typename__ != "ConversationPayload":
        raise RuntimeError(f"{payload.code}: {payload.message}")
    return payload.conversation.id


async def create_node(client: LctClient, conversation_id: str, name: str, chunk: UUID) -> str:
    result = await client.create_node(
        CreateNodeInput(
            conversation_id=conversation_id,
            node_name=name,
            summary=f"about {name}",
            chunk_ids=[chunk],
            dialogue_type=DialogueType.MULTI_PARTY,
            speaker_info=SpeakerInfoInput(
                primary_speaker="ann",
                contribution_percentage=60.0,
                secondary_speakers=[SecondarySpeakerInput(speaker_id="bob", percentage=40.0)],
            ),
        )
    )
    payload = result.create_node
    if not isinstance(payload, CreateNodeCreateNodeNodePayload):
        raise RuntimeError(f"{payload.code}: {payload.message}")
    return payload.node.id


async def canvas_nodes(
    client: LctClient, conversation_id: str, page_size: int
) -> tuple[list[CanvasConversationNodesNodes], int]:
    """Every node of the conversation, following `pageInfo.endCursor`; and how many pages."""
    nodes: list[CanvasConversationNodesNodes] = []
    after: str | None = None
    pages = 0
    while True:
        canvas = await client.canvas(id=conversation_id, first=page_size, after=after)
        if canvas.conversation is None:
            raise LookupError(conversation_id)
        page = canvas.conversation.nodes
        nodes.extend(page.nodes)
        pages += 1
        if not page.page_info.has_next_page:
            return nodes, pages
        after = page.page_info.end_cursor


def echo(node: CanvasConversationNodesNodes) -> UpdateNodeInput:
    """The node's values as `updateNode` takes them, each with the type it was read with."""
    info = node.speaker_info
    return UpdateNodeInput(
        id=node.id,
        expected_updated_at=node.updated_at,
        node_name=node.node_name,
        level=node.level,
        is_bookmark=node.is_bookmark,
        canvas_width=node.canvas_width,
        canvas_height=node.canvas_height,
        chunk_ids=node.chunk_ids,
        dialogue_type=node.dialogue_type,
        cluster_info=node.cluster_info,
        speaker_info=None
        if info is None
        else SpeakerInfoInput(
            primary_speaker=info.primary_speaker,
            speaker_name=info.speaker_name,
            contribution_percentage=info.contribution_percentage,
            secondary_speakers=None
            if info.secondary_speakers is None
            else [
                SecondarySpeakerInput(speaker_id=item.speaker_id, percentage=item.percentage)
                for item in info.secondary_speakers
            ],
        ),
    )


async def update_node(client: LctClient, change: UpdateNodeInput) -> str:
    """What happened, as a person would be told."""
    result = (await client.update_node(change)).update_node
    if isinstance(result, UpdateNodeUpdateNodeNodePayload):
        return f"saved {result.node.node_name} at {result.node.updated_at.isoformat()}"
    if isinstance(result, UpdateNodeUpdateNodeConflictError):
        return f"conflict: stored version is {result.current_updated_at}"
    if isinstance(result, UpdateNodeUpdateNodeValidationError):
        return f"invalid {result.field}: {result.code.value}"
    return f"{result.code.value}: {result.message}"
