"""Node mutations: create, update, delete, move/resize many, merge two, split one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.enums import DialogueType
from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.mutations.bridge import NodeType, out
from graph.mutations.common import (
    inherit_descriptions,
    parse_id,
    parse_ids,
    parse_optional_id,
    result_union,
    run_mutation,
)
from graph.mutations.inputs import fields_from, input_type
from graph.nodes import SecondarySpeaker, SpeakerInfo, SpeakerTransition
from graph.services import merge_split, nodes
from graph.services.fields import UNSET
from graph.services.nodes import CANVAS, NodeFields


@strawberry.input(description="Another speaker's share of a node.")
class SecondarySpeakerInput:
    speaker_id: str | None = strawberry.UNSET
    percentage: float | None = strawberry.UNSET


@strawberry.input(description="Who speaks in a node; read back as `ThreadNode.speakerInfo`.")
class SpeakerInfoInput:
    primary_speaker: str | None = strawberry.UNSET
    speaker_name: str | None = strawberry.UNSET
    contribution_percentage: float | None = strawberry.UNSET
    secondary_speakers: list[SecondarySpeakerInput] | None = strawberry.UNSET


@strawberry.input(
    description="A change of speaker inside a node; read back as `ThreadNode.speakerTransitions`."
)
class SpeakerTransitionInput:
    from_speaker: str | None = strawberry.UNSET
    to_speaker: str | None = strawberry.UNSET
    utterance_index: int | None = strawberry.UNSET
    transition_type: str | None = strawberry.UNSET
    context_snippet: str | None = strawberry.UNSET


NodeFieldsInput: Any = input_type(
    "NodeFieldsInput",
    NodeFields,
    graphql={
        "utterance_ids": list[strawberry.ID] | None,
        "speaker_info": SpeakerInfoInput | None,
        "speaker_transitions": list[SpeakerTransitionInput] | None,
        "dialogue_type": DialogueType | None,
    },
)


def _sent(value: Any) -> Any:
    """An optional input value: omitted or null both mean "not sent"."""
    return UNSET if value is None or value is strawberry.UNSET else value


def _or_none(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


@strawberry.input(
    description="A new node. It is hung under `parentId` and put into the timeline "
    "after `predecessorId` or before `successorId`."
)
class CreateNodeInput(NodeFieldsInput):
    conversation_id: strawberry.ID
    node_name: str
    summary: str
    parent_id: strawberry.ID | None = None
    predecessor_id: strawberry.ID | None = None
    successor_id: strawberry.ID | None = None


@strawberry.input
class UpdateNodeInput(NodeFieldsInput):
    id: strawberry.ID
    expected_updated_at: datetime = strawberry.field(
        description="The `updatedAt` the client last saw; a different one is a ConflictError."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Move the node under another parent (null: a root)."
    )


NodeMoveInput: Any = input_type(
    "NodeMoveInput",
    NodeFields,
    only=CANVAS,
    leading={"id": strawberry.ID},
    description="New canvas geometry for one node; omitted values stay. Sizes cannot be cleared.",
)


@strawberry.input(description="Two nodes of one conversation to fold into one.")
class MergeNodesInput:
    kept_node_id: strawberry.ID = strawberry.field(description="The node that stays.")
    absorbed_node_id: strawberry.ID = strawberry.field(
        description="The node folded into the kept one; it is deleted."
    )
    node_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new name for the kept node; omitted: it stays."
    )
    summary: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new summary for the kept node; omitted: it stays."
    )
    expected_updated_at: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="The kept node's `updatedAt` the client last saw; a different one is a "
        "ConflictError. Required with `nodeName` or `summary`.",
    )


@strawberry.input(description="A node to split, and what its new sibling takes.")
class SplitNodeInput:
    id: strawberry.ID
    utterance_ids: list[strawberry.ID] = strawberry.field(
        description="The utterances (of the node) that move to the new node."
    )
    node_name: str = strawberry.field(description="The new node's name.")
    summary: str = strawberry.field(description="The new node's summary.")
    kept_node_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new name for the original node; omitted: it stays."
    )
    kept_summary: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new summary for the original node; omitted: it stays.",
    )
    expected_updated_at: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="The split node's `updatedAt` the client last saw; a different one is a "
        "ConflictError. Required with `keptNodeName` or `keptSummary`.",
    )


@strawberry.type
class NodePayload:
    node: NodeType


@strawberry.type
class NodesPayload:
    nodes: list[NodeType]


@strawberry.type
class SplitNodePayload:
    node: NodeType = strawberry.field(description="The original node, with what it kept.")
    new_node: NodeType


@strawberry.type
class DeleteNodePayload:
    deleted_id: strawberry.ID


for _input, _output in (
    (SecondarySpeakerInput, SecondarySpeaker),
    (SpeakerInfoInput, SpeakerInfo),
    (SpeakerTransitionInput, SpeakerTransition),
    (CreateNodeInput, NodeType),
    (UpdateNodeInput, NodeType),
    (NodeMoveInput, NodeType),
):
    inherit_descriptions(_input, _output)

Errors = ValidationError | NotFoundError | ConflictError | ForbiddenError
NodeResult = Annotated[NodePayload | Errors, result_union("NodeResult", "NodePayload")]
NodesResult = Annotated[NodesPayload | Errors, result_union("NodesResult", "NodesPayload")]
SplitNodeResult = Annotated[
    SplitNodePayload | Errors, result_union("SplitNodeResult", "SplitNodePayload")
]
DeleteNodeResult = Annotated[
    DeleteNodePayload | Errors, result_union("DeleteNodeResult", "DeleteNodePayload")
]

EDIT_NOTE = {
    "comment": "Why the change was made; kept with the edit as training data.",
    "confidence": "How sure the editor is (0 to 1); kept with the edit.",
}


@strawberry.type
class NodeMutations:
    @strawberry.mutation(description="A new node, logged as an `addition` edit.")
    async def create_node(
        self,
        info: strawberry.Info,
        input: CreateNodeInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> NodeResult:
        async def action(session, actor):
            node = await nodes.create_node(
                session,
                actor,
                nodes.CreateNode(
                    conversation_id=parse_id(input.conversation_id, "conversationId"),
                    fields=fields_from(NodeFields, input),
                    parent_id=parse_optional_id(input.parent_id, "parentId"),
                    predecessor_id=parse_optional_id(input.predecessor_id, "predecessorId"),
                    successor_id=parse_optional_id(input.successor_id, "successorId"),
                ),
            )
            return NodePayload(node=out(node))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(description="Changes the fields sent; each changed field is logged.")
    async def update_node(
        self,
        info: strawberry.Info,
        input: UpdateNodeInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> NodeResult:
        async def action(session, actor):
            node = await nodes.update_node(
                session,
                actor,
                nodes.UpdateNode(
                    id=parse_id(input.id, "id"),
                    expected_updated_at=input.expected_updated_at,
                    fields=fields_from(NodeFields, input),
                    parent_id=UNSET
                    if input.parent_id is strawberry.UNSET
                    else parse_optional_id(input.parent_id, "parentId"),
                ),
            )
            return NodePayload(node=out(node))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(
        description="Deletes a node: its children move up to its parent, its predecessor is "
        "joined to its successor, its relationships go and every reference to it is removed."
    )
    async def delete_node(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> DeleteNodeResult:
        async def action(session, actor):
            deleted = await nodes.delete_node(session, actor, parse_id(id, "id"))
            return DeleteNodePayload(deleted_id=strawberry.ID(str(deleted)))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(
        description="Moves and resizes nodes of one conversation on the canvas, all or none. "
        "Last writer wins (no version); each node's change is logged as one `canvas` edit."
    )
    async def move_nodes(
        self, info: strawberry.Info, moves: list[NodeMoveInput], comment: str | None = None
    ) -> NodesResult:
        async def action(session, actor):
            parsed = [
                nodes.MoveNode(
                    id=parse_id(move.id, f"moves[{index}].id"),
                    geometry=fields_from(NodeFields, move, f"moves[{index}]."),
                )
                for index, move in enumerate(moves)
            ]
            moved = await nodes.move_nodes(session, actor, parsed)
            return NodesPayload(nodes=[out(node) for node in moved])

        return await run_mutation(info, action, comment=comment)

    @strawberry.mutation(
        description="Folds `absorbedNodeId` into `keptNodeId` (edit type `merge`): utterances, "
        "children, relationships and cluster memberships pass to the kept node."
    )
    async def merge_nodes(
        self,
        info: strawberry.Info,
        input: MergeNodesInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> NodeResult:
        async def action(session, actor):
            node = await merge_split.merge_nodes(
                session,
                actor,
                merge_split.MergeNodes(
                    kept_node_id=parse_id(input.kept_node_id, "keptNodeId"),
                    absorbed_node_id=parse_id(input.absorbed_node_id, "absorbedNodeId"),
                    node_name=_sent(input.node_name),
                    summary=_sent(input.summary),
                    expected_updated_at=_or_none(input.expected_updated_at),
                ),
            )
            return NodePayload(node=out(node))

        return await run_mutation(info, action, comment=comment, confidence=confidence)

    @strawberry.mutation(
        description="Splits a node in two (edit type `split`): the listed utterances move to a "
        "new node placed right after it in the timeline, under the same parent and clusters."
    )
    async def split_node(
        self,
        info: strawberry.Info,
        input: SplitNodeInput,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> SplitNodeResult:
        async def action(session, actor):
            original, created = await merge_split.split_node(
                session,
                actor,
                merge_split.SplitNode(
                    id=parse_id(input.id, "id"),
                    utterance_ids=tuple(parse_ids(input.utterance_ids, "utteranceIds")),
                    node_name=input.node_name,
                    summary=input.summary,
                    kept_node_name=_sent(input.kept_node_name),
                    kept_summary=_sent(input.kept_summary),
                    expected_updated_at=_or_none(input.expected_updated_at),
                ),
            )
            return SplitNodePayload(node=out(original), new_node=out(created))

        return await run_mutation(info, action, comment=comment, confidence=confidence)
