"""GraphQL over HTTP: GET and POST, both media types, status codes, and errors without a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from graph.app import prefers_graphql_response

CONVERSATION_NAME = "query ($id: ID!) { conversation(id: $id) { __typename id conversationName } }"
NODE = "query ($id: ID!) { node(id: $id) { __typename id } }"
MODERN = "application/graphql-response+json"


@pytest.fixture(scope="module")
async def client(live_server):
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        yield client


async def test_post_answers_in_json(client, conversations):
    response = await client.post(
        "/graphql", json={"query": CONVERSATION_NAME, "variables": {"id": str(conversations.small)}}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"]["conversation"] == {
        "__typename": "Conversation",
        "id": str(conversations.small),
        "conversationName": "Small",
    }


async def test_get_runs_a_query(client, conversations):
    response = await client.get(
        "/graphql",
        params={"query": CONVERSATION_NAME, "variables": f'{{"id": "{conversations.small}"}}'},
        # A GET that runs an operation must show it is no simple cross-site request (CSRF).
        headers={"accept": MODERN, "graphql-require-preflight": "1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MODERN)
    assert response.json()["data"]["conversation"]["conversationName"] == "Small"


async def test_graphiql_is_served_to_a_browser(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_unknown_field_is_a_400_with_the_new_media_type_and_200_with_json(client):
    document = "{ conversations { nodes { id noSuchField } } }"
    modern = await client.post("/graphql", json={"query": document}, headers={"accept": MODERN})
    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith(MODERN)
    body = modern.json()
    assert "data" not in body
    assert "noSuchField" in body["errors"][0]["message"]

    legacy = await client.post("/graphql", json={"query": document})
    assert legacy.status_code == 200
    assert "noSuchField" in legacy.json()["errors"][0]["message"]


async def test_syntax_error_is_a_400(client):
    response = await client.post(
        "/graphql", json={"query": "{ conversations { "}, headers={"accept": MODERN}
    )
    assert response.status_code == 400
    assert "Syntax Error" in response.json()["errors"][0]["message"]


async def test_malformed_id_is_a_clear_field_error_not_a_500(client):
    for document in (NODE, CONVERSATION_NAME):
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": {"id": "not-a-uuid"}},
            headers={"accept": MODERN},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] == {document.split("{")[1].split("(")[0].strip(): None}
        (error,) = body["errors"]
        assert error["message"] == "`id` is not a valid id: 'not-a-uuid' is not a UUID."
        assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_missing_object_is_null_without_an_error(client):
    for document in (NODE, CONVERSATION_NAME):
        response = await client.post(
            "/graphql", json={"query": document, "variables": {"id": str(uuid.uuid4())}}
        )
        assert response.status_code == 200
        body = response.json()
        assert "errors" not in body
        assert next(iter(body["data"].values())) is None


async def test_invalid_argument_is_a_validation_error(client, conversations):
    document = """query ($id: ID!) { conversation(id: $id) {
        nodes(first: "many") { totalCount } utterances(orderBy: NO_SUCH_ORDER) { totalCount } } }"""
    response = await client.post(
        "/graphql",
        json={"query": document, "variables": {"id": str(conversations.small)}},
        headers={"accept": MODERN},
    )
    assert response.status_code == 400
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert "Int cannot represent non-integer value" in messages
    assert "NO_SUCH_ORDER" in messages


async def test_bad_variable_type_is_a_400(client):
    response = await client.post(
        "/graphql",
        json={"query": CONVERSATION_NAME, "variables": {"id": None}},
        headers={"accept": MODERN},
    )
    assert response.status_code == 400
    assert "Expected value of non-null type 'ID!'" in response.json()["errors"][0]["message"]


def test_accept_negotiation():
    assert prefers_graphql_response(MODERN)
    assert prefers_graphql_response(f"{MODERN}, application/json;q=0.9")
    assert prefers_graphql_response(f"application/json;q=0.5, {MODERN}")
    assert not prefers_graphql_response(f"application/json, {MODERN}")
    assert not prefers_graphql_response("application/json")
    assert not prefers_graphql_response(None)
    assert not prefers_graphql_response(f"{MODERN};q=0")
