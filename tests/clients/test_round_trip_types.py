"""What a client reads can be sent back with the same type, checked on the schema itself.

For every input type and the output type it writes, each input field named like an output field
has the output field's type: the same scalar or enum (an `ID` stays an `ID`, a `UUID` a `UUID`),
`<Object>Input` for an object, the same list shape. Inputs may be optional where outputs are not.
"""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_nullable_type,
)

from graph.schema import schema

TYPES = schema._schema.type_map

# input type -> the output type it writes
WRITES = {
    "CreateConversationInput": "Conversation",
    "UpdateConversationInput": "Conversation",
    "ParticipantInput": "Participant",
    "GoalInput": "Goal",
    "UtteranceInput": "Utterance",
    "UpdateUtteranceInput": "Utterance",
    "CreateNodeInput": "ThreadNode",
    "UpdateNodeInput": "ThreadNode",
    "NodeMoveInput": "ThreadNode",
    "SpeakerInfoInput": "SpeakerInfo",
    "SecondarySpeakerInput": "SecondarySpeaker",
    "SpeakerTransitionInput": "SpeakerTransition",
    "CreateRelationshipInput": "Relationship",
    "UpdateRelationshipInput": "Relationship",
    "CreateClusterInput": "Cluster",
    "UpdateClusterInput": "Cluster",
    "RecordApiCallInput": "ApiCall",
}


def shape(kind) -> str:
    """The type without its non-null markers, objects named by the input they are sent as."""
    kind = get_nullable_type(kind)
    if isinstance(kind, GraphQLList):
        return f"[{shape(kind.of_type)}]"
    if isinstance(kind, GraphQLObjectType):
        return f"{kind.name}Input"
    return kind.name


def test_every_input_type_is_compared() -> None:
    inputs = {
        name
        for name, kind in TYPES.items()
        if isinstance(kind, GraphQLInputObjectType) and not name.startswith("__")
    }
    # These write no single object type: a merge or split of nodes; and what apiCallStats is
    # asked (a filter, conditions on aggregates, an order), which no output echoes.
    assert inputs - set(WRITES) == {
        "MergeNodesInput",
        "SplitNodeInput",
        "ApiCallStatsFilter",
        "ApiCallHaving",
        "ApiCallStatsOrder",
    }


@pytest.mark.parametrize(("input_name", "output_name"), sorted(WRITES.items()))
def test_input_fields_take_what_the_output_fields_give(input_name: str, output_name: str) -> None:
    sent, read = TYPES[input_name].fields, TYPES[output_name].fields
    compared = [name for name in sent if name in read]
    assert compared, input_name
    for name in compared:
        assert shape(sent[name].type) == shape(read[name].type), f"{input_name}.{name}"


@pytest.mark.parametrize(
    "input_name", [name for name in WRITES if "expectedUpdatedAt" in TYPES[name].fields]
)
def test_expected_updated_at_is_the_updated_at_read(input_name: str) -> None:
    read = TYPES[WRITES[input_name]].fields["updatedAt"].type
    assert isinstance(read, GraphQLNonNull)
    assert str(TYPES[input_name].fields["expectedUpdatedAt"].type) == str(read)


@pytest.mark.parametrize(
    ("scalar", "url", "name"),
    [
        ("DateTime", "https://datatracker.ietf.org/doc/html/rfc3339#section-5.6", "RFC 3339"),
        ("UUID", "https://datatracker.ietf.org/doc/html/rfc4122", "RFC 4122"),
    ],
)
def test_scalars_name_their_specification(scalar: str, url: str, name: str) -> None:
    kind = TYPES[scalar]
    assert isinstance(kind, GraphQLScalarType)
    assert kind.specified_by_url == url
    assert name in (kind.description or "")
