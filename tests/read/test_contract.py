"""The schema contract: every column is a field under its camelCased name; enums match the
database's constraints; every object type implements `Node`."""

from __future__ import annotations

import pytest
from graphql import GraphQLEnumType, GraphQLObjectType

from db import models
from graph.schema import schema

TYPES = {
    "Conversation": models.Conversation,
    "Utterance": models.Utterance,
    "ThreadNode": models.Node,
    "Relationship": models.Relationship,
    "Cluster": models.Cluster,
    "Edit": models.Edit,
    "ApiCall": models.ApiCall,
}
# The full-text search vector is the database's index material, not data for clients.
NOT_EXPOSED = {("Conversation", "tsv_search")}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@pytest.mark.parametrize("type_name", sorted(TYPES))
def test_every_column_is_a_field_and_the_type_is_a_node(type_name):
    graphql_type = schema._schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    assert [interface.name for interface in graphql_type.interfaces] == ["Node"]
    missing = [
        column.key
        for column in TYPES[type_name].__table__.columns
        if (type_name, column.key) not in NOT_EXPOSED
        and camel(column.key) not in graphql_type.fields
    ]
    assert missing == []
    assert str(graphql_type.fields["id"].type) == "ID!"


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        ("ConversationType", models.CONVERSATION_TYPES),
        ("Visibility", models.VISIBILITIES),
        ("DialogueType", models.DIALOGUE_TYPES),
        ("EditType", models.EDIT_TYPES),
        ("TargetType", models.TARGET_TYPES),
    ],
)
def test_enums_hold_exactly_the_values_the_database_allows(enum, values):
    graphql_type = schema._schema.get_type(enum)
    assert isinstance(graphql_type, GraphQLEnumType)
    stored = [getattr(item.value, "value", item.value) for item in graphql_type.values.values()]
    assert sorted(stored) == sorted(values)


def test_scalars():
    for name in ("UUID", "DateTime", "JSON"):
        assert schema._schema.get_type(name) is not None
