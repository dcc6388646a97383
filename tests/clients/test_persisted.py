"""Persisted operations over real HTTP: Apollo's APQ, `documentId`, the trusted-documents mode.

Three servers on one database: an open one (APQ registration on), a trusted-documents one whose
administrators may run anything, and one where nobody may.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from db.errors import ConfigurationError
from db.settings import Settings
from graph.persisted import PersistedDocuments, Registered, load_manifest
from tests.conftest import LiveServer, asyncpg_dsn, server_settings

SECRET = "persisted-documents-tests-secret-long-enough"
CONVERSATION = """query Conversation($id: ID!) {
  conversation(id: $id) { __typename id conversationName }
}"""
PING = "mutation Ping { __typename }"
PAGE = "query Page($first: Int!) { conversations(first: $first) { __typename totalCount } }"
NOT_IN_MANIFEST = "query Count { conversations(first: 1) { __typename totalCount } }"


def named(name: str) -> str:
    """A document not in the manifest, distinct by its operation name."""
    return NOT_IN_MANIFEST.replace("query Count", f"query {name}")


JSON_HEADERS = {"Content-Type": "application/json"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token(user: str, **claims: Any) -> str:
    payload = {"sub": user, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, SECRET)


def bearer(user: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, **claims)}"}


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors") or []]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("persisted") / "persisted-documents.json"
    path.write_text(
        json.dumps({sha256(CONVERSATION): CONVERSATION, sha256(PING): PING, sha256(PAGE): PAGE})
    )
    return path


@pytest.fixture(scope="module")
async def conversation_id(database_url: URL) -> uuid.UUID:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await generate_conversation(
            connection, nodes=3, seed=71, owner_id="alice", name="Persisted", visibility="public"
        )
    finally:
        await connection.close()


async def _serve(database_url: URL, **overrides: Any) -> LiveServer:
    server = LiveServer(server_settings(database_url, jwt_secret=SECRET, **overrides))
    await server.start()
    return server


@pytest.fixture(scope="module")
async def open_client(database_url: URL, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    server = await _serve(
        database_url, persisted_documents_file=manifest, persisted_queries_cache_bytes=2_000
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client
    await server.stop()


@pytest.fixture(scope="module")
async def trusted_client(database_url: URL, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    server = await _serve(
        database_url,
        persisted_documents_file=manifest,
        trusted_documents_only=True,
        trusted_documents_admin_bypass=True,
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client
    await server.stop()


@pytest.fixture(scope="module")
async def strict_client(database_url: URL, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    server = await _serve(
        database_url, persisted_documents_file=manifest, trusted_documents_only=True
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client
    await server.stop()


# -- Apollo's automatic persisted queries ---------------------------------------------------------


async def test_apq_not_found_then_registered_on_the_retry(
    open_client: httpx.AsyncClient, conversation_id: uuid.UUID
) -> None:
    document = named("CountApq")
    digest = sha256(document)
    first = await open_client.post("/graphql", json={"extensions": apq(digest)})
    assert first.status_code == 200, first.text
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert first.headers["cache-control"] == "private, no-cache, must-revalidate"

    retry = await open_client.post("/graphql", json={"query": document, "extensions": apq(digest)})
    assert retry.status_code == 200 and "errors" not in retry.json(), retry.text
    assert retry.json()["data"]["conversations"]["__typename"] == "ConversationConnection"

    again = await open_client.post("/graphql", json={"extensions": apq(digest)})
    assert again.json()["data"] == retry.json()["data"]

    over_get = await open_client.get(
        "/graphql",
        params={"extensions": json.dumps(apq(digest)), "operationName": "CountApq"},
        headers=JSON_HEADERS,
    )
    assert over_get.status_code == 200 and over_get.json()["data"] == retry.json()["data"]
    assert over_get.headers["cache-control"] == "public, max-age=60"
    assert set(over_get.headers["vary"].split(", ")) >= {"Authorization", "Accept"}


async def test_a_hash_that_does_not_match_its_query_is_refused_and_not_registered(
    open_client: httpx.AsyncClient,
) -> None:
    document = named("CountMismatch")
    wrong = sha256(document + " ")
    refused = await open_client.post("/graphql", json={"query": document, "extensions": apq(wrong)})
    assert refused.status_code == 400 and codes(refused) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    for digest in (wrong, sha256(document)):
        lookup = await open_client.post("/graphql", json={"extensions": apq(digest)})
        assert codes(lookup) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "persisted_query",
    [
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1, "sha256Hash": "not-a-hash"},
        {"version": 1, "sha256Hash": "A" * 64},
        "not an object",
    ],
)
async def test_malformed_persisted_queries_are_bad_requests(
    open_client: httpx.AsyncClient, persisted_query: Any
) -> None:
    response = await open_client.post(
        "/graphql", json={"extensions": {"persistedQuery": persisted_query}}
    )
    assert response.status_code == 400 and codes(response) == ["BAD_REQUEST"], response.text


async def test_registration_is_bounded_least_recently_used_first(
    open_client: httpx.AsyncClient,
) -> None:
    # The server keeps 2,000 bytes of registered documents: forty ~100-byte ones do not fit.
    documents = [named(f"CountBound{index}") for index in range(40)]
    for document in documents:
        registered = await open_client.post(
            "/graphql", json={"query": document, "extensions": apq(sha256(document))}
        )
        assert "errors" not in registered.json(), registered.text
    oldest = await open_client.post("/graphql", json={"extensions": apq(sha256(documents[0]))})
    assert codes(oldest) == ["PERSISTED_QUERY_NOT_FOUND"]
    newest = await open_client.post("/graphql", json={"extensions": apq(sha256(documents[-1]))})
    assert "errors" not in newest.json(), newest.text


def test_the_registry_holds_at_most_its_budget_and_no_oversized_document() -> None:
    registry = Registered(budget_bytes=1_000, max_document_bytes=300)
    for index in range(500):
        text = f"query Q{index} {{ __typename }}"
        registry.add(sha256(text), text)
        assert registry.used <= 1_000
    assert 0 < len(registry) < 50
    big = "query Big { __typename }" + " " * 400
    registry.add(sha256(big), big)
    assert registry.get(sha256(big)) is None
    assert registry.used == sum(len(d.query) for d in registry._documents.values())


# -- documentId (GraphQL over HTTP) --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["sha256:", ""])
async def test_document_id_runs_the_manifest_document(
    open_client: httpx.AsyncClient, conversation_id: uuid.UUID, prefix: str
) -> None:
    response = await open_client.post(
        "/graphql",
        json={
            "documentId": prefix + sha256(CONVERSATION),
            "variables": {"id": str(conversation_id)},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["conversation"]["conversationName"] == "Persisted"


async def test_document_id_over_get_is_cacheable_by_a_cdn(
    open_client: httpx.AsyncClient, conversation_id: uuid.UUID
) -> None:
    params = {
        "documentId": f"sha256:{sha256(CONVERSATION)}",
        "variables": json.dumps({"id": str(conversation_id)}),
    }
    anonymous = await open_client.get(
        "/graphql", params=params, headers={**JSON_HEADERS, "Accept": "*/*"}
    )
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["data"]["conversation"]["id"] == str(conversation_id)
    assert anonymous.headers["cache-control"] == "public, max-age=60"

    signed_in = await open_client.get(
        "/graphql", params=params, headers={**JSON_HEADERS, **bearer("alice")}
    )
    assert signed_in.json()["data"] == anonymous.json()["data"]
    assert signed_in.headers["cache-control"] == "private, max-age=60"

    missing_variable = await open_client.get(
        "/graphql", params={"documentId": params["documentId"]}, headers=JSON_HEADERS
    )
    assert missing_variable.json().get("errors"), missing_variable.text
    assert missing_variable.headers["cache-control"] == "no-store"


async def test_a_get_by_id_needs_the_csrf_header_like_a_get_with_a_query(
    open_client: httpx.AsyncClient, conversation_id: uuid.UUID
) -> None:
    response = await open_client.get(
        "/graphql",
        params={
            "documentId": f"sha256:{sha256(CONVERSATION)}",
            "variables": json.dumps({"id": str(conversation_id)}),
        },
    )
    assert response.status_code == 400 and codes(response) == ["CSRF_PREVENTED"]


async def test_get_never_runs_a_mutation_even_by_hash(open_client: httpx.AsyncClient) -> None:
    by_id = await open_client.get(
        "/graphql", params={"documentId": f"sha256:{sha256(PING)}"}, headers=JSON_HEADERS
    )
    assert by_id.status_code == 405 and by_id.headers["allow"] == "POST", by_id.text
    assert "cache-control" not in by_id.headers or "max-age" not in by_id.headers["cache-control"]
    over_post = await open_client.post(
        "/graphql", json={"documentId": f"sha256:{sha256(PING)}"}, headers=bearer("alice")
    )
    assert over_post.json()["data"] == {"__typename": "Mutation"}, over_post.text
    assert "max-age" not in over_post.headers.get("cache-control", "")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"documentId": "sha256:" + "0" * 64}, "PERSISTED_DOCUMENT_NOT_FOUND"),
        ({"documentId": "md5:abc"}, "BAD_REQUEST"),
        ({"documentId": 12}, "BAD_REQUEST"),
        ({"documentId": f"sha256:{sha256(PING)}", "query": PING}, "BAD_REQUEST"),
    ],
)
async def test_bad_document_ids_are_refused(
    open_client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    response = await open_client.post("/graphql", json=body)
    assert response.status_code == 400 and codes(response) == [code], response.text


# -- Trusted documents only ----------------------------------------------------------------------


async def test_trusted_mode_runs_manifest_documents_by_id_and_by_hash(
    trusted_client: httpx.AsyncClient, conversation_id: uuid.UUID
) -> None:
    variables = {"id": str(conversation_id)}
    by_id = await trusted_client.post(
        "/graphql", json={"documentId": f"sha256:{sha256(CONVERSATION)}", "variables": variables}
    )
    by_hash = await trusted_client.post(
        "/graphql", json={"extensions": apq(sha256(CONVERSATION)), "variables": variables}
    )
    with_text = await trusted_client.post(
        "/graphql",
        json={
            "query": CONVERSATION,
            "extensions": apq(sha256(CONVERSATION)),
            "variables": variables,
        },
    )
    for response in (by_id, by_hash, with_text):
        assert response.status_code == 200, response.text
        assert response.json()["data"]["conversation"]["conversationName"] == "Persisted"


async def test_trusted_mode_refuses_every_other_operation(
    trusted_client: httpx.AsyncClient,
) -> None:
    plain = await trusted_client.post("/graphql", json={"query": NOT_IN_MANIFEST})
    assert plain.status_code == 400 and codes(plain) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "trusted documents" in plain.json()["errors"][0]["message"]
    digest = sha256(NOT_IN_MANIFEST)
    register = await trusted_client.post(
        "/graphql", json={"query": NOT_IN_MANIFEST, "extensions": apq(digest)}
    )
    assert codes(register) == ["TRUSTED_DOCUMENT_REQUIRED"]
    lookup = await trusted_client.post("/graphql", json={"extensions": apq(digest)})
    assert codes(lookup) == ["PERSISTED_QUERY_NOT_FOUND"]
    over_get = await trusted_client.get(
        "/graphql", params={"query": NOT_IN_MANIFEST}, headers=JSON_HEADERS
    )
    assert codes(over_get) == ["TRUSTED_DOCUMENT_REQUIRED"]
    not_admin = await trusted_client.post(
        "/graphql", json={"query": NOT_IN_MANIFEST}, headers=bearer("bob", lct_admin="yes")
    )
    assert codes(not_admin) == ["TRUSTED_DOCUMENT_REQUIRED"]
    batch = await trusted_client.post(
        "/graphql",
        json=[{"documentId": f"sha256:{sha256(PING)}"}, {"query": NOT_IN_MANIFEST}],
        headers=bearer("alice"),
    )
    assert codes(batch) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_an_admin_token_runs_anything_when_the_bypass_is_on(
    trusted_client: httpx.AsyncClient, strict_client: httpx.AsyncClient
) -> None:
    admin = bearer("root", lct_admin=True)
    allowed = await trusted_client.post("/graphql", json={"query": NOT_IN_MANIFEST}, headers=admin)
    assert allowed.status_code == 200 and "errors" not in allowed.json(), allowed.text
    refused = await strict_client.post("/graphql", json={"query": NOT_IN_MANIFEST}, headers=admin)
    assert codes(refused) == ["TRUSTED_DOCUMENT_REQUIRED"]


# -- The store itself ------------------------------------------------------------------------------


def test_manifest_entries_must_be_the_sha256_of_their_document(tmp_path: Path) -> None:
    path = tmp_path / "persisted-documents.json"
    path.write_text(
        json.dumps({sha256(PING): PING, f"sha256:{sha256(CONVERSATION)}": CONVERSATION})
    )
    assert set(load_manifest(path)) == {sha256(PING), sha256(CONVERSATION)}
    for broken in ({sha256(PING): CONVERSATION}, {"abc": PING}, [PING], {sha256(PING): 3}):
        path.write_text(json.dumps(broken))
        with pytest.raises(ConfigurationError, match="LCT_PERSISTED_DOCUMENTS_FILE"):
            load_manifest(path)
    with pytest.raises(ConfigurationError, match="LCT_PERSISTED_DOCUMENTS_FILE"):
        PersistedDocuments(Settings(_env_file=None, trusted_documents_only=True))


async def test_validation_is_remembered_per_page_size_never_across_them(
    open_client: httpx.AsyncClient,
) -> None:
    document_id = f"sha256:{sha256(PAGE)}"
    for first, code in [(5, None), (5, None), (5000, "PAGE_SIZE_TOO_LARGE"), (5, None), (7, None)]:
        response = await open_client.post(
            "/graphql", json={"documentId": document_id, "variables": {"first": first}}
        )
        errors = response.json().get("errors") or []
        if code is None:
            assert not errors, response.text
        else:
            assert [error["extensions"]["code"] for error in errors] == [code], response.text


async def test_a_persisted_document_is_parsed_and_validated_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from strawberry.http import GraphQLRequestData

    import graph.limits
    from graph.app import extensions_for
    from graph.auth import ANONYMOUS
    from graph.observability import Observability
    from graph.schema import create_schema

    settings = Settings(_env_file=None)
    schema = create_schema(extensions_for(settings, Observability(settings)))
    store = PersistedDocuments(settings)
    validations = []
    validate = graph.limits.validate_document
    measure = graph.limits.limit_errors

    def counting(*args: Any) -> Any:
        validations.append(args)
        return validate(*args)

    def counting_limits(*args: Any) -> Any:
        validations.append(args)
        return measure(*args)

    monkeypatch.setattr(graph.limits, "validate_document", counting)
    monkeypatch.setattr(graph.limits, "limit_errors", counting_limits)
    document = "query ValidatedOnce { __typename }"
    request = GraphQLRequestData(
        query=document, variables=None, operation_name=None, extensions=apq(sha256(document))
    )
    parses = []
    for _ in range(3):
        resolved = store.resolve(request, None, ANONYMOUS)
        assert resolved.extensions is not None
        result = await schema.execute(resolved.query, operation_extensions=resolved.extensions)
        assert result.errors is None and result.data == {"__typename": "Query"}
        parses.append(store.find(sha256(document)).parsed)  # type: ignore[union-attr]
    assert parses[0] is not None and parses[0] is parses[1] is parses[2]
    assert len(validations) == 2, "the standard rules and the limits, once"
    await schema.execute(document)
    assert len(validations) == 3, "text sent as text: the limits every time"


def test_the_benchmark_shows_what_a_hash_saves(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.persisted import main

    assert main(["--requests", "5"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {row["document"] for row in rows} == {"canvas", "traversal", "refetch"}
    for row in rows:
        assert row["unknown hash"] < row["by hash"] < row["text, repeated"], row
