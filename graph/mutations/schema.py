"""The write side of the schema: every aggregate's mutations in one `Mutation` type."""

from __future__ import annotations

import strawberry

from graph.mutations.clusters import ClusterMutations
from graph.mutations.conversations import ConversationExportQuery, ConversationMutations
from graph.mutations.edits import EditMutations, EditsQuery
from graph.mutations.nodes import NodeMutations
from graph.mutations.relationships import RelationshipMutations


@strawberry.type
class Mutation(
    ConversationMutations, NodeMutations, RelationshipMutations, ClusterMutations, EditMutations
):
    pass


@strawberry.type
class MutationSideQuery(ConversationExportQuery, EditsQuery):
    """Reads that belong with the write side: the export document and the edits log."""


__all__ = ["Mutation", "MutationSideQuery"]
