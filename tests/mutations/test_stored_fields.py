"""Every input field of every create and update mutation reaches its row.

The values are generated from the schema itself (introspection), one per input field, nested input
objects and lists included, so a field added to an input later is covered without touching this
test: if a service drops it, or it names no column, the comparison with the stored row fails. Only
ids must be supplied (an `ID` names a row of the right kind), and a new `ID` field fails loudly
until it is given one below.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.mutations import documents
from tests.mutations.support import append, new_conversation

TYPE = """
query($name: String!) {
  __type(name: $name) {
    kind
    inputFields { name type { ...Ref } }
    enumValues { name }
  }
}
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
"""

ERRORS = "... on UserError { message code } ... on ValidationError { field }"


def mutation(name: str, input_type: str, payload: str, field: str) -> str:
    return f"""
mutation($input: {input_type}!) {{
  {name}(input: $input) {{ __typename ... on {payload} {{ {field} {{ id }} }} {ERRORS} }}
}}"""


APPEND = f"""
mutation($conversationId: ID!, $utterances: [UtteranceInput!]!) {{
  appendUtterances(conversationId: $conversationId, utterances: $utterances) {{
    __typename ... on AppendUtterancesPayload {{ utterances {{ id }} }} {ERRORS}
  }}
}}"""

MOVE = f"""
mutation($moves: [NodeMoveInput!]!) {{
  moveNodes(moves: $moves) {{ __typename ... on NodesPayload {{ nodes {{ id }} }} {ERRORS} }}
}}"""

DATETIME = datetime.fromisoformat("2026-02-03T04:05:06.789000+00:00")
# Input fields that say which version the client saw: checked, never stored.
NOT_COLUMNS = {"expectedUpdatedAt"}


@dataclass(frozen=True)
class EnumValue:
    name: str


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


class Values:
    """A value for every field of an input type, and what its column must then hold."""

    def __init__(self, gql: Any, ids: dict[str, Any]) -> None:
        self.gql, self.ids, self.types = gql, ids, {}

    async def type(self, name: str) -> dict[str, Any]:
        if name not in self.types:
            body = await self.gql(TYPE, name=name)
            self.types[name] = body["data"]["__type"]
        return self.types[name]

    async def fields(self, type_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        sent, expected = {}, {}
        for field in (await self.type(type_name))["inputFields"]:
            sent[field["name"]], expected[snake(field["name"])] = await self.value(
                field["name"], field["type"]
            )
        return sent, expected

    async def value(self, field: str, ref: dict[str, Any]) -> tuple[Any, Any]:
        if ref["kind"] == "NON_NULL":
            return await self.value(field, ref["ofType"])
        if ref["kind"] == "LIST":
            item, stored = await self.value(field, ref["ofType"])
            return [item], [stored]
        if ref["kind"] == "INPUT_OBJECT":
            return await self.fields(ref["name"])
        if ref["kind"] == "ENUM":
            last = (await self.type(ref["name"]))["enumValues"][-1]["name"]
            return last, EnumValue(last)
        if ref["name"] == "ID":
            assert field in self.ids, f"give the ID field {field} a row to name"
            value = self.ids[field]
            return value, value
        scalars = {
            "String": f"{field} text",
            "Int": 2,
            "Float": 0.5,
            "Boolean": True,
            "JSON": {"key": field, "list": [1, "two"]},
            "UUID": str(uuid.uuid4()),
        }
        if ref["name"] == "DateTime":
            return DATETIME.isoformat(), DATETIME
        return scalars[ref["name"]], scalars[ref["name"]]


def same(stored: Any, expected: Any) -> bool:
    if isinstance(expected, EnumValue):
        return isinstance(stored, str) and stored.replace("-", "_").upper() == expected.name
    if isinstance(expected, datetime):
        return datetime.fromisoformat(stored) == expected
    if isinstance(expected, dict):
        return isinstance(stored, dict) and all(
            key in stored and same(stored[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(expected)
            and all(same(left, right) for left, right in zip(stored, expected, strict=True))
        )
    return stored == expected


async def assert_stored(database, table: str, row_id: str, expected: dict[str, Any]) -> None:
    row = await database.fetchval(f"SELECT to_jsonb(t) FROM {table} t WHERE id = $1::uuid", row_id)
    stored = json.loads(row)
    missing = [column for column in expected if column not in stored]
    assert missing == [], f"input fields that name no column of {table}: {missing}"
    differ = {
        column: (stored[column], value)
        for column, value in expected.items()
        if not same(stored[column], value)
    }
    assert differ == {}, f"input fields not stored in {table} (stored, sent): {differ}"


async def version(database, table: str, row_id: str) -> str:
    stamp = await database.fetchval(f"SELECT updated_at FROM {table} WHERE id = $1::uuid", row_id)
    return stamp.isoformat()


async def run(gql, document: str, name: str, payload: str, **variables: Any) -> dict[str, Any]:
    result = (await gql(document, **variables))["data"][name]
    assert result["__typename"] == payload, result
    return result


@pytest.fixture
async def rows(gql) -> dict[str, Any]:
    """A conversation with utterances, nodes (A then B in the timeline, P a parent) and clusters."""
    conversation = (await new_conversation(gql))["id"]
    utterances = [item["id"] for item in await append(gql, conversation, "one", "two", "three")]

    async def node(name: str, **fields: Any) -> str:
        body = await gql(
            documents.CREATE_NODE,
            input={"conversationId": conversation, "nodeName": name, "summary": "s", **fields},
        )
        return body["data"]["createNode"]["node"]["id"]

    async def cluster(name: str) -> str:
        body = await gql(
            documents.CREATE_CLUSTER, input={"conversationId": conversation, "clusterName": name}
        )
        return body["data"]["createCluster"]["cluster"]["id"]

    parent, first = await node("P"), await node("A")
    second = await node("B", predecessorId=first)
    return {
        "conversation": conversation,
        "utterances": utterances,
        "parent": parent,
        "first": first,
        "second": second,
        "clusters": [await cluster("K1"), await cluster("K2")],
    }


async def test_every_field_of_conversations_and_utterances_is_stored(gql, database, rows) -> None:
    values = Values(gql, {})
    sent, expected = await values.fields("CreateConversationInput")
    created = await run(
        gql,
        mutation(
            "createConversation", "CreateConversationInput", "ConversationPayload", "conversation"
        ),
        "createConversation",
        "ConversationPayload",
        input=sent,
    )
    conversation = created["conversation"]["id"]
    await assert_stored(database, "conversations", conversation, expected)

    values = Values(gql, {"id": conversation})
    sent, expected = await values.fields("UpdateConversationInput")
    sent["expectedUpdatedAt"] = await version(database, "conversations", conversation)
    await run(
        gql,
        mutation(
            "updateConversation", "UpdateConversationInput", "ConversationPayload", "conversation"
        ),
        "updateConversation",
        "ConversationPayload",
        input=sent,
    )
    await assert_stored(database, "conversations", conversation, strip(expected))

    sent, expected = await values.fields("UtteranceInput")
    sent["sequenceNumber"] = expected["sequence_number"] = 100  # not one of the rows' own
    appended = await run(
        gql,
        APPEND,
        "appendUtterances",
        "AppendUtterancesPayload",
        conversationId=rows["conversation"],
        utterances=[sent],
    )
    await assert_stored(database, "utterances", appended["utterances"][0]["id"], expected)

    utterance = rows["utterances"][0]
    values = Values(gql, {"id": utterance})
    sent, expected = await values.fields("UpdateUtteranceInput")
    sent["expectedUpdatedAt"] = await version(database, "utterances", utterance)
    await run(
        gql,
        mutation("updateUtterance", "UpdateUtteranceInput", "UtterancePayload", "utterance"),
        "updateUtterance",
        "UtterancePayload",
        input=sent,
    )
    await assert_stored(database, "utterances", utterance, strip(expected))


async def test_every_field_of_nodes_is_stored(gql, database, rows) -> None:
    values = Values(
        gql,
        {
            "conversationId": rows["conversation"],
            "parentId": rows["parent"],
            "predecessorId": rows["first"],
            "successorId": rows["second"],
            "utteranceIds": rows["utterances"][0],
        },
    )
    sent, expected = await values.fields("CreateNodeInput")
    created = await run(
        gql,
        mutation("createNode", "CreateNodeInput", "NodePayload", "node"),
        "createNode",
        "NodePayload",
        input=sent,
    )
    node = created["node"]["id"]
    await assert_stored(database, "nodes", node, expected)

    values = Values(
        gql, {"id": node, "parentId": rows["first"], "utteranceIds": rows["utterances"][1]}
    )
    sent, expected = await values.fields("UpdateNodeInput")
    sent["expectedUpdatedAt"] = await version(database, "nodes", node)
    await run(
        gql,
        mutation("updateNode", "UpdateNodeInput", "NodePayload", "node"),
        "updateNode",
        "NodePayload",
        input=sent,
    )
    await assert_stored(database, "nodes", node, strip(expected))

    sent, expected = await Values(gql, {"id": rows["second"]}).fields("NodeMoveInput")
    await run(gql, MOVE, "moveNodes", "NodesPayload", moves=[sent])
    await assert_stored(database, "nodes", rows["second"], expected)


async def test_every_field_of_relationships_clusters_and_api_calls_is_stored(
    gql, database, rows
) -> None:
    values = Values(
        gql,
        {
            "fromNodeId": rows["parent"],
            "toNodeId": rows["first"],
            "supportingUtteranceIds": rows["utterances"][2],
        },
    )
    sent, expected = await values.fields("CreateRelationshipInput")
    created = await run(
        gql,
        mutation(
            "createRelationship", "CreateRelationshipInput", "RelationshipPayload", "relationship"
        ),
        "createRelationship",
        "RelationshipPayload",
        input=sent,
    )
    relationship = created["relationship"]["id"]
    await assert_stored(database, "relationships", relationship, expected)

    values = Values(gql, {"id": relationship, "supportingUtteranceIds": rows["utterances"][1]})
    sent, expected = await values.fields("UpdateRelationshipInput")
    sent["expectedUpdatedAt"] = await version(database, "relationships", relationship)
    sent["relationshipType"] = expected["relationship_type"] = "updated type"
    await run(
        gql,
        mutation(
            "updateRelationship", "UpdateRelationshipInput", "RelationshipPayload", "relationship"
        ),
        "updateRelationship",
        "RelationshipPayload",
        input=sent,
    )
    await assert_stored(database, "relationships", relationship, strip(expected))

    values = Values(
        gql,
        {
            "conversationId": rows["conversation"],
            "nodeIds": rows["parent"],
            "parentClusterId": rows["clusters"][0],
        },
    )
    sent, expected = await values.fields("CreateClusterInput")
    created = await run(
        gql,
        mutation("createCluster", "CreateClusterInput", "ClusterPayload", "cluster"),
        "createCluster",
        "ClusterPayload",
        input=sent,
    )
    cluster = created["cluster"]["id"]
    await assert_stored(database, "clusters", cluster, expected)

    values = Values(gql, {"id": cluster, "parentClusterId": rows["clusters"][1]})
    sent, expected = await values.fields("UpdateClusterInput")
    sent["expectedUpdatedAt"] = await version(database, "clusters", cluster)
    await run(
        gql,
        mutation("updateCluster", "UpdateClusterInput", "ClusterPayload", "cluster"),
        "updateCluster",
        "ClusterPayload",
        input=sent,
    )
    await assert_stored(database, "clusters", cluster, strip(expected))

    values = Values(gql, {"conversationId": rows["conversation"]})
    sent, expected = await values.fields("RecordApiCallInput")
    created = await run(
        gql,
        mutation("recordApiCall", "RecordApiCallInput", "ApiCallPayload", "apiCall"),
        "recordApiCall",
        "ApiCallPayload",
        input=sent,
    )
    await assert_stored(database, "api_calls_log", created["apiCall"]["id"], expected)


def strip(expected: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in expected.items() if key not in map(snake, NOT_COLUMNS)}
