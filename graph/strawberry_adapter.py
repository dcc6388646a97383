"""Every use of strawberry's and graphql-core's internals, in one place.

Written against strawberry-graphql 0.341.2 and graphql-core 3.3.2 (pinned in requirements.lock);
when either is upgraded, this module is what to check.
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLArgument, GraphQLField, GraphQLResolveInfo, GraphQLSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter

Rendered = orjson.Fragment

__all__ = [
    "Rendered",
    "RenderingExecutionContext",
    "graphql_schema",
    "raw_info",
    "strawberry_field",
    "validate_document",
]


class RenderingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, passing objects that PostgreSQL rendered through as they are."""

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is Rendered:
            return result
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )


def raw_info(info: Any) -> GraphQLResolveInfo:
    """graphql-core's resolve info behind strawberry's `Info`."""
    return info._raw_info


def graphql_schema(strawberry_schema: Any) -> GraphQLSchema:
    """The executable graphql-core schema behind a strawberry schema."""
    return strawberry_schema._schema


def strawberry_field(graphql_field: GraphQLField | GraphQLArgument) -> Any:
    """The strawberry field or argument a graphql-core one was made from (None for built-ins)."""
    return (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
