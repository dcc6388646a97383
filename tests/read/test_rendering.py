"""Lists rendered by PostgreSQL (graph/rendering.py) answer exactly as the resolvers do.

Every document runs against two real servers on the same database: the default one, where
PostgreSQL renders the list items it can, and one started with `LCT_RENDER_IN_DATABASE=false`,
where the resolvers build every field. The responses must be equal value for value and key for
key, in the same order; `extensions.renderedLists` shows which lists took the rendered path, so a
comparison that silently fell back to the resolvers on both sides fails too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from db.demo import generate_conversation
from tests.conftest import GraphQLResponse
from tests.read import documents
from tests.read.conftest import VIEWER

NODE_FIELDS = """
  __typename id conversationId nodeName summary keyPoints nodeType level parentId childrenIds
  isBookmark isContextualProgress isTangent isCrux predecessorId successorId chunkIds
  utteranceIds dialogueType claimIds timestampStart timestampEnd durationSeconds clusterInfo
  displayPreferences canvasX canvasY canvasWidth canvasHeight zoomLevelVisible confidenceScore
  createdAt updatedAt
  speakerInfo { __typename primarySpeaker speakerName contributionPercentage
    secondarySpeakers { __typename speakerId percentage } }
"""

RELATIONSHIP_FIELDS = """
  __typename id conversationId fromNodeId toNodeId relationshipType relationshipSubtype
  explanation strength confidence supportingUtteranceIds isBidirectional createdAt updatedAt
"""

EVERY_NODE_FIELD = f"""
query ($id: ID!, $first: Int) {{
  conversation(id: $id) {{
    nodes(first: $first) {{ totalCount nodes {{
      {NODE_FIELDS}
      outgoing {{ {RELATIONSHIP_FIELDS} }}
      incoming {{ id fromNodeId }}
      both: relationships {{ id fromNodeId toNodeId }}
      strong: relationships(direction: OUTGOING, minStrength: 0.5) {{ id strength }}
      typed: incoming(relationshipType: ["elaborates", "supports"]) {{ id relationshipType }}
    }} }}
  }}
}}
"""

# Aliases, fragments on the type and on the interface, repeated keys, @skip / @include.
SHAPES = """
query ($id: ID!, $yes: Boolean!, $no: Boolean!, $after: String) {
  conversation(id: $id) {
    nodes(first: 7, after: $after, orderBy: LEVEL, direction: DESC) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { ...Node } }
      nodes { ...Node }
    }
  }
}
fragment Node on ThreadNode {
  name: nodeName
  ... on Node { id __typename }
  ... { level l2: level }
  kind: __typename
  skipped: summary @skip(if: $yes)
  kept: summary @include(if: $yes)
  gone: summary @include(if: $no)
  ... @skip(if: $no) { parentId }
  out: outgoing(relationshipType: ["temporal_next"]) { ... on Relationship { id to: toNodeId } }
}
"""

OTHER_LISTS = """
query ($id: ID!) {
  conversation(id: $id) {
    utterances(first: 40, orderBy: TIMESTAMP_START, direction: DESC) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node {
        __typename id conversationId text textCleaned speakerId speakerName speakerRole
        sequenceNumber timestampStart timestampEnd durationSeconds chunkId nodeId threadId
        confidenceScore language emotion energyLevel platformMetadata createdAt updatedAt
      } }
    }
    relationships(first: 40, orderBy: STRENGTH) { nodes { RELATIONSHIP_FIELDS } }
    edits(first: 40) { nodes {
      __typename id conversationId targetType targetId fieldName oldValue newValue editType
      userComment userId userConfidence exportedForTraining trainingDatasetId createdAt
    } }
    apiCalls(first: 40, orderBy: TOTAL_COST) { nodes {
      __typename id conversationId endpoint feature provider model promptTokens
      completionTokens totalTokens promptCost completionCost totalCost latencyMs status
      errorMessage startedAt completedAt requestId
    } }
  }
}
""".replace("RELATIONSHIP_FIELDS", RELATIONSHIP_FIELDS)

# A nested page per parent: every conversation gets its own first two nodes.
NESTED = """
query {
  conversations(first: 20, orderBy: CONVERSATION_NAME) {
    nodes { id nodes(first: 2, orderBy: NODE_NAME) { nodes { id nodeName outgoing { id } } } }
  }
}
"""

# The hierarchy walked down five levels, with the traversals of a node to other rows.
TRAVERSAL = """
query ($id: ID!) {
  conversation(id: $id) {
    rootNodes { id nodeName level
      children { id level
        children { id level
          parent { id nodeName } predecessor { id level } successor { __typename id }
          children { id level
            children { id level parentId
              utterances { id sequenceNumber text node { id } }
              edits { id editType fieldName targetId }
              both: relationships { id fromNode { id } toNode { id nodeName } }
            }
          }
        }
      }
    }
    utterances(first: 30) { nodes { id node { id level children { id } } } }
    relationships(first: 30) { nodes { id fromNode { id } toNode { id parent { id } } } }
  }
}
"""

# Traversals to every kind of row, rendered inside their lists' statements.
TRAVERSALS_EVERYWHERE = """
query ($id: ID!) {
  conversation(id: $id) {
    nodes(first: 5) { nodes { id conversation { id sharedWith participants { name } } } }
    utterances(first: 5) { nodes { id node { id clusters { id nodes { id } } } } }
    rootNodes { id ancestors { id } children { ancestors { id level } } }
  }
}
"""

# A nested page the resolvers must refuse: the list falls back to them, whole, with their error.
FALLBACK = """
query {
  conversations(first: 3) { nodes { id nodes(first: 100000) { nodes { id } } } }
}
"""


@pytest.fixture(scope="module")
async def both(live_server: str, resolved: str) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(timeout=120) as client:

        async def post(document: str, **variables: Any) -> tuple[GraphQLResponse, ...]:
            responses = []
            for base in (live_server, resolved):
                response = await client.post(
                    f"{base}/graphql", json={"query": document, "variables": variables}
                )
                responses.append(
                    GraphQLResponse(response.status_code, response.json(), response.headers)
                )
            return tuple(responses)

        yield post


def same(rendered: Any, resolved: Any, path: str = "data") -> None:
    """Equal values with equal key order; numbers compare as numbers (1 and 1.0 are equal)."""
    if isinstance(resolved, dict):
        assert isinstance(rendered, dict), path
        assert list(rendered) == list(resolved), (path, list(rendered), list(resolved))
        for key in resolved:
            same(rendered[key], resolved[key], f"{path}.{key}")
    elif isinstance(resolved, list):
        assert isinstance(rendered, list) and len(rendered) == len(resolved), path
        for index, (left, right) in enumerate(zip(rendered, resolved, strict=True)):
            same(left, right, f"{path}[{index}]")
    elif isinstance(resolved, float) or isinstance(rendered, float):
        assert isinstance(rendered, int | float) and not isinstance(rendered, bool), path
        assert rendered == pytest.approx(resolved, rel=1e-15, abs=0), (path, rendered, resolved)
    else:
        assert rendered == resolved and type(rendered) is type(resolved), (path, rendered, resolved)


async def compare(
    both: Any, document: str, rendered_lists: int | None, **variables: Any
) -> tuple[Any, int]:
    """The data of both servers, compared; and how many lists PostgreSQL rendered.

    The document is new to the servers (a comment makes its text unique), so the first answer
    is the executor's, and the default server compiles it (graph/operations.py): asked again,
    it answers with that one statement, which must give the same data, and count the same
    rendered lists."""
    document = f"# {uuid.uuid4()}\n{document}"
    rendered, resolved = await both(document, **variables)
    assert not rendered.errors and not resolved.errors, (rendered.errors, resolved.errors)
    assert resolved.body["extensions"]["renderedLists"] == 0
    if rendered_lists is not None:
        assert rendered.body["extensions"]["renderedLists"] == rendered_lists
    same(rendered.data, resolved.data)
    assert "compiled" not in rendered.body["extensions"]
    compiled, _ = await both(document, **variables)
    assert not compiled.errors, compiled.errors
    assert compiled.body["extensions"] == {
        "sqlStatements": 1,
        "renderedLists": rendered.body["extensions"]["renderedLists"],
        "compiled": True,
    }
    same(compiled.data, resolved.data)
    return rendered.data, rendered.body["extensions"]["renderedLists"]


@pytest.fixture(scope="module")
async def odd(db) -> uuid.UUID:
    """A conversation whose rows hold the values that are easy to render wrong."""
    conversation_id = await generate_conversation(
        db, nodes=40, seed=11, owner_id=VIEWER, name="Odd values"
    )
    node_ids = [
        row["id"]
        for row in await db.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY timestamp_start, id",
            conversation_id,
        )
    ]
    shapes: list[Any] = [
        None,
        "just a string",
        [1, 2],
        {},
        {"primary_speaker": 7, "speaker_name": True, "contribution_percentage": "60"},
        {"primary_speaker": {"nested": ["é", 1.5]}, "contribution_percentage": 12},
        {"primary_speaker": None, "contribution_percentage": 33.25, "secondary_speakers": "x"},
        {
            "primary_speaker": "ann",
            "secondary_speakers": [{"speaker_id": "bo", "percentage": 0.1}, 3, None, {}],
        },
        {"primary_speaker": 'Zoë "quoted"\n', "secondary_speakers": []},
    ]
    for node_id, shape in zip(node_ids, shapes, strict=False):
        await db.execute(
            "UPDATE nodes SET speaker_info = $2::jsonb WHERE id = $1",
            node_id,
            None if shape is None else json.dumps(shape),
        )
    # whole seconds (isoformat leaves the fraction out), and a fraction with trailing zeros
    await db.execute(
        "UPDATE nodes SET created_at = '2026-01-02 03:04:05+00', canvas_x = NULL,"
        " zoom_level_visible = '{}', key_points = NULL, timestamp_start = NULL"
        " WHERE id = ANY($1)",
        node_ids[:5],
    )
    await db.execute(
        "UPDATE nodes SET created_at = '2026-01-02 03:04:05.120000+05:30' WHERE id = $1",
        node_ids[5],
    )
    await db.execute(
        "UPDATE nodes SET dialogue_type = 'multi-party', confidence_score = 1,"
        ' timestamp_end = 1e-7, cluster_info = \'{"b": 1, "a": [true, null, 2.50]}\''
        " WHERE id = $1",
        node_ids[6],
    )
    # a relationship of another user's private conversation pointing at a node of this one
    foreign = await generate_conversation(db, nodes=5, seed=12, owner_id="someone-else")
    await db.execute(
        "UPDATE relationships SET to_node_id = $1 WHERE id = (SELECT id FROM relationships"
        " WHERE conversation_id = $2 ORDER BY id LIMIT 1)",
        node_ids[0],
        foreign,
    )
    return conversation_id


async def test_the_canvas_is_rendered_as_the_resolvers_build_it(both, conversations):
    data, _ = await compare(both, documents.CANVAS, 1, id=str(conversations.large))
    assert len(data["conversation"]["nodes"]["nodes"]) == 1000


async def test_every_node_and_relationship_field(both, conversations, odd):
    for conversation_id in (conversations.large, odd):
        await compare(both, EVERY_NODE_FIELD, 1, id=str(conversation_id), first=1000)


async def test_the_odd_values_are_really_there(both, odd):
    rendered, _ = await both(EVERY_NODE_FIELD, id=str(odd), first=1000)
    nodes = rendered.data["conversation"]["nodes"]["nodes"]
    infos = [node["speakerInfo"] for node in nodes]
    assert {"primarySpeaker": "7", "speakerName": "true", "contributionPercentage": None} in [
        {key: info[key] for key in ("primarySpeaker", "speakerName", "contributionPercentage")}
        for info in infos
        if info
    ]
    assert "2026-01-02T03:04:05+00:00" in {node["createdAt"] for node in nodes}
    assert "2026-01-01T21:34:05.120000+00:00" in {node["createdAt"] for node in nodes}
    assert "MULTI_PARTY" in {node["dialogueType"] for node in nodes}


async def test_a_hidden_relationship_stays_hidden(both, odd, db):
    document = (
        "query ($id: ID!) { conversation(id: $id) { nodes(first: 100) { nodes {"
        " id incoming { id } } } } }"
    )
    data, _ = await compare(both, document, 1, id=str(odd))
    seen = {
        item["id"] for node in data["conversation"]["nodes"]["nodes"] for item in node["incoming"]
    }
    foreign = await db.fetch(
        "SELECT r.id FROM relationships r JOIN nodes n ON n.id = r.to_node_id"
        " WHERE n.conversation_id = $1 AND r.conversation_id <> $1",
        odd,
    )
    assert foreign and not seen & {str(row["id"]) for row in foreign}


async def test_aliases_fragments_directives_and_cursors(both, conversations):
    after = None
    for _ in range(3):
        data, _ = await compare(
            both, SHAPES, 1, id=str(conversations.large), yes=True, no=False, after=after
        )
        page = data["conversation"]["nodes"]
        first = page["nodes"][0]
        assert list(first) == [
            "name",
            "id",
            "__typename",
            "level",
            "l2",
            "kind",
            "kept",
            "parentId",
            "out",
        ]
        after = page["pageInfo"]["endCursor"]
    data, _ = await compare(both, SHAPES, 1, id=str(conversations.large), yes=False, no=True)
    assert "skipped" in data["conversation"]["nodes"]["nodes"][0]


async def test_utterances_relationships_edits_and_api_calls(both, conversations, odd):
    for conversation_id in (conversations.large, odd):
        await compare(both, OTHER_LISTS, 4, id=str(conversation_id))


async def test_every_parent_gets_its_own_page(both, conversations):
    # one list: the conversations, each rendered with its own page of nodes in one statement
    data, _ = await compare(both, NESTED, 1)
    pages = [item["nodes"]["nodes"] for item in data["conversations"]["nodes"]]
    assert len(pages) >= 3
    assert sum(1 for page in pages if len(page) == 2) >= 2


async def test_traversals_to_every_kind_are_rendered(both, conversations, odd):
    for conversation_id in (conversations.large, odd):
        await compare(both, TRAVERSALS_EVERYWHERE, 3, id=str(conversation_id))


async def test_a_selection_it_cannot_render_falls_back_whole(both, conversations):
    rendered, resolved = await both(FALLBACK)
    assert rendered.body["extensions"]["renderedLists"] == 0
    assert rendered.errors and rendered.errors == resolved.errors
    assert rendered.errors[0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def test_the_hierarchy_and_the_traversals_between_rows(both, conversations, odd):
    for conversation_id in (conversations.large, conversations.small, odd):
        data, _ = await compare(both, TRAVERSAL, 3, id=str(conversation_id))
        assert data["conversation"]["rootNodes"]


async def test_a_hidden_parent_is_null_and_a_hidden_child_is_left_out(both, odd, db):
    foreign = await generate_conversation(db, nodes=3, seed=13, owner_id="someone-else")
    hidden = await db.fetchval("SELECT id FROM nodes WHERE conversation_id = $1 LIMIT 1", foreign)
    root = await db.fetchval(
        "SELECT id FROM nodes WHERE conversation_id = $1 AND parent_id IS NULL"
        " ORDER BY timestamp_start, id LIMIT 1",
        odd,
    )
    await db.execute(
        "UPDATE nodes SET children_ids = array_prepend($2::uuid, children_ids),"
        " predecessor_id = $2 WHERE id = $1",
        root,
        hidden,
    )
    document = (
        "query ($id: ID!) { conversation(id: $id) { rootNodes {"
        " id predecessorId predecessor { id } childrenIds children { id } } } }"
    )
    data, _ = await compare(both, document, 1, id=str(odd))
    (first,) = [item for item in data["conversation"]["rootNodes"] if item["id"] == str(root)]
    assert first["predecessorId"] == str(hidden) and first["predecessor"] is None
    assert first["childrenIds"][0] == str(hidden)
    assert str(hidden) not in {child["id"] for child in first["children"]}


# -- every field of every type, generated from the schema ---------------------------------------

ENTRY_POINTS = {
    "Conversation": "conversations(first: 4, orderBy: CONVERSATION_NAME) { nodes { EVERY } }",
    "ThreadNode": "conversation(id: $id) { nodes(first: 25) { nodes { EVERY } } }",
    "Relationship": "conversation(id: $id) { relationships(first: 25) { nodes { EVERY } } }",
    "Cluster": "conversation(id: $id) { clusters { EVERY } }",
    "Utterance": "conversation(id: $id) { utterances(first: 25) { nodes { EVERY } } }",
    "Edit": "conversation(id: $id) { edits(first: 25) { nodes { EVERY } } }",
    "ApiCall": "conversation(id: $id) { apiCalls(first: 25) { nodes { EVERY } } }",
}
PAGE_INFO = "pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }"


def every_field(type_name: str, depth: int) -> str:
    """A selection of every field of `type_name`; below `depth`, objects select their scalars."""
    from graphql import GraphQLObjectType, get_named_type, is_abstract_type, is_leaf_type

    from graph.schema import schema

    graphql_schema = schema._schema
    object_type = graphql_schema.type_map[type_name]
    assert isinstance(object_type, GraphQLObjectType)
    parts = ["__typename"]
    for name, field in object_type.fields.items():
        named = get_named_type(field.type)
        if is_leaf_type(named):
            parts.append(name)
        elif is_abstract_type(named):
            members = graphql_schema.get_possible_types(named)
            if depth > 0:
                parts.append(
                    f"{name} {{ __typename "
                    + " ".join(f"... on {member.name} {{ id }}" for member in members)
                    + " }"
                )
        elif "edges" in named.fields:  # a connection
            if depth > 0:
                item = get_named_type(named.fields["nodes"].type).name
                parts.append(
                    f"{name}(first: 3) {{ __typename totalCount {PAGE_INFO}"
                    f" edges {{ __typename cursor node {{ {every_field(item, 0)} }} }}"
                    f" nodes {{ id }} }}"
                )
        elif "id" not in named.fields:  # a JSONB shape: always read whole
            parts.append(f"{name} {{ {every_field(named.name, 1)} }}")
        elif depth > 0:
            parts.append(f"{name} {{ {every_field(named.name, depth - 1)} }}")
    return " ".join(parts)


@pytest.mark.parametrize("type_name", sorted(ENTRY_POINTS))
async def test_every_field_of_every_type(both, conversations, odd, type_name):
    """Every field of the type, each traversal with every field of what it reaches: rendered in
    one statement per list, and equal to what the resolvers build."""
    entry = ENTRY_POINTS[type_name].replace("EVERY", every_field(type_name, 1))
    variables = "($id: ID!)" if "$id" in entry else ""
    document = f"query {variables} {{ {entry} }}"
    for conversation_id in (conversations.large, odd):
        arguments = {"id": str(conversation_id)} if variables else {}
        data, rendered_lists = await compare(both, document, None, **arguments)
        assert rendered_lists == 1
        items = next(iter(data.values()))
        items = items if "$id" not in entry else next(iter(items.values()))
        items = items["nodes"] if isinstance(items, dict) else items
        assert items, "nothing to compare"
