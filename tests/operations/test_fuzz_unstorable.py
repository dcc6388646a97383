"""Strings PostgreSQL cannot store, wherever they are sent, are a `BAD_USER_INPUT` naming the place,
and nothing runs: the fuzzer's findings (test_fuzz.py) pinned down as plain cases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

LIST = """
query List($ownerId: String) {
  conversations(first: 5, ownerId: $ownerId) { __typename nodes { __typename id } }
}
"""
LIST_LITERAL = """
query { conversations(first: 5, ownerId: "owner\\u0000") { __typename nodes { __typename id } } }
"""
CREATE = """
mutation Create($input: CreateConversationInput!) {
  createConversation(input: $input) { __typename }
}
"""
CREATE_WITH_FIELD = """
mutation Create($input: CreateConversationInput!) {
  createConversation(input: $input) { __typename ... on ValidationError { field } }
}
"""
IMPORT = """
mutation Import($document: JSON!) {
  importConversation(document: $document) { __typename }
}
"""


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        yield client


async def post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], accept: str | None = None
) -> httpx.Response:
    # ASCII JSON, so that an unpaired surrogate travels as the `\ud800` escape clients send
    body = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    headers = {"content-type": "application/json"}
    if accept:
        headers["accept"] = accept
    return await client.post("/graphql", content=body.encode(), headers=headers)


def refusals(response: httpx.Response) -> list[tuple[str, str]]:
    body = response.json()
    assert body.get("data") is None, body
    assert all("extensions" in error for error in body["errors"]), body
    return [
        (error["extensions"]["code"], error["extensions"]["argument"]) for error in body["errors"]
    ]


async def test_nul_in_a_read_variable(client: httpx.AsyncClient) -> None:
    response = await post(client, LIST, {"ownerId": "someone\x00"})
    assert response.status_code == 200
    assert refusals(response) == [("BAD_USER_INPUT", "$ownerId")]
    assert "NUL" in response.json()["errors"][0]["message"]


async def test_nul_in_a_literal_argument(client: httpx.AsyncClient) -> None:
    response = await post(client, LIST_LITERAL, {})
    assert refusals(response) == [("BAD_USER_INPUT", "conversations(ownerId)")]


async def test_request_error_status_for_graphql_response_clients(
    client: httpx.AsyncClient,
) -> None:
    response = await post(
        client, LIST, {"ownerId": "\x00"}, accept="application/graphql-response+json"
    )
    assert response.status_code == 400
    assert refusals(response) == [("BAD_USER_INPUT", "$ownerId")]


async def test_surrogates_in_input_fields_and_json_keys(client: httpx.AsyncClient) -> None:
    payload = {
        "conversationName": "half a pair \ud800",
        "conversationType": "CHAT",
        "sourceType": "test",
        "sourceMetadata": {"fine": ["ok", {"deep": "x\udfffy"}], "key\udc00": 1},
    }
    response = await post(client, CREATE, {"input": payload})
    assert sorted(refusals(response)) == [
        ("BAD_USER_INPUT", "$input.conversationName"),
        ("BAD_USER_INPUT", "$input.sourceMetadata (a key)"),
        ("BAD_USER_INPUT", "$input.sourceMetadata.fine[1].deep"),
    ]


async def test_a_nul_in_a_mutation_is_refused_like_in_a_query(client: httpx.AsyncClient) -> None:
    payload = {"conversationName": "a\x00b", "conversationType": "CHAT", "sourceType": "test"}
    response = await post(client, CREATE_WITH_FIELD, {"input": payload})
    assert refusals(response) == [("BAD_USER_INPUT", "$input.conversationName")]


async def test_a_large_document_is_checked_all_through(client: httpx.AsyncClient) -> None:
    """Past the size walked on the event loop, the check still finds the one bad value."""
    utterances: list[dict[str, Any]] = [
        {"sequenceNumber": index, "text": "fine text " * 5, "speakerId": "s"}
        for index in range(2000)
    ]
    utterances[1234]["text"] = "bad \udc80 text"
    response = await post(client, IMPORT, {"document": {"utterances": utterances}})
    assert refusals(response) == [("BAD_USER_INPUT", "$document.utterances[1234].text")]


async def test_infinity_in_a_json_value(client: httpx.AsyncClient) -> None:
    response = await post(client, IMPORT, {"document": {}})
    assert response.status_code == 200  # a clean document goes through to the mutation
    literal = "mutation { importConversation(document: {x: 1e999}) { __typename } }"
    response = await post(client, literal, {})
    assert refusals(response) == [("BAD_USER_INPUT", "importConversation(document.x)")]


async def test_a_token_subject_with_a_nul_is_not_a_user(database_url: Any) -> None:
    from tests.conftest import LiveServer, server_settings
    from tests.security.conftest import AUDIENCE, ISSUER, SECRET, token

    server = LiveServer(
        server_settings(database_url, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            response = await client.post(
                "/graphql",
                json={"query": LIST, "variables": {}},
                headers={"Authorization": "Bearer " + token("alice\x00")},
            )
    finally:
        await server.stop()
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
