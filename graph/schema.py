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

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graph.analytics import SCALARS as ANALYTICS_SCALARS
from graph.analytics import AnalyticsQuery
from graph.api_calls import ApiCall
from graph.canvas import CanvasMutations, CanvasQuery
from graph.clusters import Cluster
from graph.conversations import Conversation
from graph.edits import Edit
from graph.mutations.schema import Mutation as WriteMutation
from graph.mutations.schema import MutationSideQuery
from graph.nodes import ThreadNode
from graph.observability import LoggingSchema
from graph.queries import Query as ReadQuery
from graph.relationships import Relationship
from graph.rendering import RenderingExecutionContext, register
from graph.scalars import SCALAR_MAP
from graph.search import SearchQuery
from graph.subscriptions import LiveQuery, Subscription
from graph.utterances import Utterance

# Every type that implements `Node`, so `node(id:)` can return any of them.
NODE_TYPES: list[type] = [Conversation, Utterance, ThreadNode, Relationship, Cluster, Edit, ApiCall]

# The write side (graph/mutations/): its mutations, and the two reads that belong with it; search
# and analytics; the Obsidian canvas (graph/canvas.py): its query and its mutation; the live
# change feed (graph/subscriptions.py).
Query = merge_types(
    "Query", (ReadQuery, MutationSideQuery, SearchQuery, AnalyticsQuery, CanvasQuery, LiveQuery)
)
Mutation = merge_types("Mutation", (WriteMutation, CanvasMutations))


def create_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    schema = LoggingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=list(extensions),
        # security: batched requests (a JSON array of operations) are accepted; the view caps
        # them at LCT_MAX_OPERATIONS (graph.http.SecureGraphQL) before this ceiling applies.
        config=StrawberryConfig(
            batching_config={"max_operations": 1000}, scalar_map={**SCALAR_MAP, **ANALYTICS_SCALARS}
        ),
        # passes the list items PostgreSQL rendered as JSON through (graph/rendering.py)
        execution_context_class=RenderingExecutionContext,
    )
    register(schema)
    return schema


schema = create_schema()
