"""A search page whose hits PostgreSQL renders (graph/search.py, `rendered_plan`) answers exactly
as the resolvers do: the same data, key for key and in order, and the same errors.

Each document runs on the search corpus against the default server and against one started with
`LCT_RENDER_IN_DATABASE=false`; `extensions.renderedLists` shows which path served it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.conftest import GraphQLResponse, LiveServer, graphql_client, server_settings
from tests.read.test_rendering import same
from tests.search.conftest import Corpus

EVERY_HIT_FIELD = """
  __typename kind rank headline conversationId
  hit {
    __typename
    ... on Conversation { id conversationName conversationType createdAt startedAt ownerId
      sharedWith participants { name } nodes(first: 2) { totalCount nodes { id } } }
    ... on Utterance { id text speakerId speakerName sequenceNumber timestampStart
      conversation { id conversationName } node { id } }
    ... on ThreadNode { id nodeName summary keyPoints level speakerInfo { primarySpeaker }
      parent { id } outgoing { id } conversation { id } }
  }
"""

DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "query($q: String!) { search(query: $q, first: 30) { edges { node { rank headline"
        " hit { __typename ... on Node { id } } } } } }",
        {"q": "apple"},
    ),
    (
        f"query($q: String!) {{ search(query: $q, first: 12) {{ __typename"
        f" nodes {{ {EVERY_HIT_FIELD} }} edges {{ __typename node {{ rank r: rank }} }} }} }}",
        {"q": "budget cloud"},
    ),
    (
        "query($q: String!, $kinds: [SearchKind!]) { search(query: $q, kinds: $kinds) {"
        " edges { node { kind hit { ... on Utterance { id } } } } } }",
        {"q": '"forest garden"', "kinds": ["UTTERANCE", "NODE"]},
    ),
    (
        "query($q: String!) { search(query: $q, first: 3) { nodes { ...F } } }"
        " fragment F on SearchHit { rank kind @include(if: true) hit { ... on Conversation"
        " { id } } }",
        {"q": "engine or harbor"},
    ),
    ("query($q: String!) { search(query: $q) { edges { node { rank } } } }", {"q": "zzqx"}),
    ("query($q: String!) { search(query: $q) { edges { node { rank } } } }", {"q": "the"}),
]


@pytest.fixture(scope="module")
async def resolved(search_database: URL) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    server = LiveServer(server_settings(search_database, render_in_database=False))
    await server.start()
    try:
        async with graphql_client(server.url) as post:
            yield post
    finally:
        await server.stop()


@pytest.mark.parametrize(("document", "variables"), DOCUMENTS)
async def test_a_rendered_page_answers_as_the_resolvers_do(
    graphql, resolved, corpus: Corpus, document: str, variables: dict[str, Any]
) -> None:
    rendered: GraphQLResponse = await graphql(document, **variables)
    resolved_reply: GraphQLResponse = await resolved(document, **variables)
    assert rendered.status == resolved_reply.status
    assert rendered.errors == resolved_reply.errors
    if rendered.errors:
        assert rendered.data is None and resolved_reply.data is None
        return
    same(rendered.data, resolved_reply.data)
    assert rendered.body["extensions"]["renderedLists"] == 1
    assert resolved_reply.body["extensions"]["renderedLists"] == 0
    assert rendered.statements <= resolved_reply.statements


async def test_cursors_page_info_and_counts_are_answered_field_by_field(graphql, corpus):
    reply = await graphql(
        "query($q: String!) { search(query: $q, first: 2) { totalCount pageInfo { hasNextPage }"
        " edges { cursor node { rank } } } }",
        q="apple",
    )
    assert not reply.errors, reply.errors
    assert reply.body["extensions"]["renderedLists"] == 0
    assert reply.data["search"]["pageInfo"]["hasNextPage"] is True
