"""The schema explains the fields and arguments whose meaning their names do not tell.

Read over HTTP by introspection, as a client's tooling reads them.
"""

from __future__ import annotations

import pytest

TYPE = """
query ($name: String!) {
  __type(name: $name) {
    __typename name description
    fields { name description args { name description } }
  }
}
"""

FIELDS = [
    ("Utterance", "threadId"),
    ("Utterance", "emotion"),
    ("Utterance", "energyLevel"),
    ("ThreadNode", "nodeType"),
    ("ThreadNode", "clusterInfo"),
    ("ThreadNode", "displayPreferences"),
    ("ThreadNode", "confidenceScore"),
    ("ThreadNode", "canvasX"),
    ("ThreadNode", "canvasY"),
    ("ThreadNode", "canvasWidth"),
    ("ThreadNode", "canvasHeight"),
    ("Cluster", "color"),
    ("Cluster", "clusteringConfidence"),
    ("ApiCall", "status"),
    ("SecondarySpeaker", "percentage"),
    ("Goal", "weight"),
]

ARGUMENTS = [
    ("Conversation", "relationships", "minStrength"),
    ("ThreadNode", "outgoing", "minStrength"),
    ("ThreadNode", "incoming", "minStrength"),
    ("ThreadNode", "relationships", "minStrength"),
    ("Conversation", "nodes", "primarySpeaker"),
    ("Conversation", "apiCalls", "status"),
    ("Query", "editsLog", "targetType"),
]


async def _type(graphql, name):
    response = await graphql(TYPE, name=name)
    assert not response.errors, response.errors
    return response.data["__type"]


@pytest.mark.parametrize(("type_name", "field_name"), FIELDS)
async def test_field_has_a_description(graphql, type_name, field_name):
    fields = {field["name"]: field for field in (await _type(graphql, type_name))["fields"]}
    assert (fields[field_name]["description"] or "").strip(), f"{type_name}.{field_name}"


@pytest.mark.parametrize(("type_name", "field_name", "argument"), ARGUMENTS)
async def test_argument_has_a_description(graphql, type_name, field_name, argument):
    fields = {field["name"]: field for field in (await _type(graphql, type_name))["fields"]}
    arguments = {item["name"]: item for item in fields[field_name]["args"]}
    assert (arguments[argument]["description"] or "").strip(), f"{field_name}({argument})"


async def test_canvas_geometry_names_its_unit(graphql):
    fields = {field["name"]: field for field in (await _type(graphql, "ThreadNode"))["fields"]}
    for name in ("canvasX", "canvasY", "canvasWidth", "canvasHeight"):
        assert "canvas pixels" in fields[name]["description"], name


async def test_min_strength_says_it_is_inclusive(graphql):
    fields = {field["name"]: field for field in (await _type(graphql, "Conversation"))["fields"]}
    arguments = {item["name"]: item for item in fields["relationships"]["args"]}
    assert "inclusive" in arguments["minStrength"]["description"]


async def test_the_uuid_scalar_has_a_description(graphql):
    scalar = await _type(graphql, "UUID")
    assert "UUID" in (scalar["description"] or "")
