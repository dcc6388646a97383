"""The GraphQL schema: the read side (`graph.queries`) and the types it reaches.

`schema.graphql` at the top level is generated from this module and committed; regenerate it
after every schema change with

    strawberry export-schema graph.schema:schema --output schema.graphql

`create_schema(settings)` adds the per-operation extensions (limits, error masking, ...); the SDL
does not depend on them. Mutations join through `MUTATION_TYPES`, extensions through
`graph.app.extensions_for`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from graph.api_calls import ApiCall
from graph.clusters import Cluster
from graph.conversations import Conversation
from graph.edits import Edit
from graph.nodes import ThreadNode
from graph.queries import Query
from graph.relationships import Relationship
from graph.utterances import Utterance

# Every type that implements `Node`, so `node(id:)` can return any of them.
NODE_TYPES: list[type] = [Conversation, Utterance, ThreadNode, Relationship, Cluster, Edit, ApiCall]


def create_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    mutation: Any = None
    return strawberry.Schema(
        query=Query, mutation=mutation, types=NODE_TYPES, extensions=list(extensions)
    )


schema = create_schema()
