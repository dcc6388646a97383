"""The `Edit` type: one human correction in the edits log, kept as training data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.context import Context
from graph.enums import EditType, TargetType
from graph.relations import OF_CONVERSATION, OneOf
from graph.relay import Node

if TYPE_CHECKING:
    from graph.clusters import Cluster
    from graph.conversations import Conversation
    from graph.nodes import ThreadNode
    from graph.relationships import Relationship
    from graph.utterances import Utterance

Info = strawberry.Info[Context, None]

LazyConversation = Annotated["Conversation", strawberry.lazy("graph.conversations")]
EditTarget = Annotated[
    Annotated["ThreadNode", strawberry.lazy("graph.nodes")]
    | Annotated["Relationship", strawberry.lazy("graph.relationships")]
    | Annotated["Cluster", strawberry.lazy("graph.clusters")]
    | Annotated["Utterance", strawberry.lazy("graph.utterances")],
    strawberry.union("EditTarget", description="The kinds of object an edit can change."),
]


TARGET = OneOf(
    "node",
    discriminator="target_type",
    reference="target_id",
    # the edits log's target types with an object type (claims have none yet)
    kinds={
        "node": "node",
        "relationship": "relationship",
        "cluster": "cluster",
        "utterance": "utterance",
        "speaker_attribution": "utterance",
    },
)


@strawberry.type(description="One change made by a person, from the edits log.")
class Edit(Node):
    conversation_id: strawberry.ID = strawberry.field(description="The id of `conversation`.")
    target_type: TargetType
    target_id: strawberry.ID = strawberry.field(description="The id of `target`.")
    field_name: str = strawberry.field(
        description="The changed field; `canvas` for a move, or the whole object for additions,"
        " deletions, merges and splits."
    )
    old_value: str | None = strawberry.field(description="Text, or JSON text for other values.")
    new_value: str | None = strawberry.field(description="Text, or JSON text for other values.")
    edit_type: EditType
    user_comment: str | None = strawberry.field(description="The `comment` given with the change.")
    user_id: str = strawberry.field(description="Who made the change (the token's `sub`).")
    user_confidence: float | None = strawberry.field(description="0 to 1, as the editor said.")
    exported_for_training: bool = strawberry.field(
        description="Whether `exportTrainingEdits` has handed the edit out (imported edits"
        " count as exported)."
    )
    training_dataset_id: str | None = strawberry.field(
        description="The `datasetId` it was exported to."
    )
    created_at: datetime = strawberry.field(description="When the change was made.")

    @OF_CONVERSATION.field()
    async def conversation(self, info: Info) -> LazyConversation | None:
        return await OF_CONVERSATION.resolve(self, info)

    @TARGET.field(
        description="The edited object; null when it no longer exists or is a claim (claims have"
        " no type yet)."
    )
    async def target(self, info: Info) -> EditTarget | None:
        return await TARGET.resolve(self, info)
