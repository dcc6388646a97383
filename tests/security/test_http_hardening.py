"""Authentication, CSRF, CORS, GET, introspection, GraphiQL and development mode over real HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.engine import URL

from tests.conftest import LiveServer, server_settings
from tests.security.conftest import OWNER, SECRET, Ask, token

WHO = "query { conversations(first: 1) { totalCount } }"
CREATE = """
mutation { createConversation(input: {conversationName: "x", conversationType: CHAT,
  sourceType: "app"}) { __typename } }"""


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (f"Bearer {token(OWNER, exp=int(time.time()) - 3600)}", "expired"),
        (f"Bearer {jwt.encode({'sub': OWNER, 'exp': int(time.time()) + 60}, 'x' * 40)}", "sig"),
        (f"Bearer {token(OWNER, aud='someone-else')}", "audience"),
        (f"Bearer {token(OWNER, iss='https://evil.test/')}", "issuer"),
        (f"Bearer {token(OWNER, sub=None)}", "`sub`"),
        ("Bearer not-a-token", "malformed"),
        ("Basic YWxpY2U6c2VjcmV0", "Bearer"),
    ],
)
async def test_bad_tokens_get_401_with_a_graphql_body(
    ask: Ask, authorization: str, reason: str
) -> None:
    reply = await ask(WHO, headers={"Authorization": authorization})
    assert reply.status == 401, reply.body
    assert reply.codes == ["UNAUTHENTICATED"]
    assert reason in reply.errors[0]["message"]
    assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_anonymous_reads_but_a_mutation_needs_a_token(ask: Ask) -> None:
    assert (await ask(WHO)).status == 200
    reply = await ask(CREATE)
    assert reply.status == 401 and reply.codes == ["UNAUTHENTICATED"], reply.body


@pytest.fixture(scope="module")
async def client(secure_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secure_server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_csrf_simple_requests_are_refused(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTED"
    preflighted = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={**headers, "GraphQL-Require-Preflight": "1"},
    )
    # With a header only a preflighted request can carry, it is no longer a CSRF candidate.
    assert preflighted.status_code != 400 or "CSRF" not in preflighted.text


async def test_get_queries_need_a_preflight_header_and_mutations_need_post(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.get("/graphql", params={"query": "{ __typename }"})
    assert plain.status_code == 400 and "CSRF" in plain.text
    ok = await client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"GraphQL-Require-Preflight": "1"},
    )
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}
    mutation = await client.get(
        "/graphql",
        params={"query": CREATE},
        headers={"GraphQL-Require-Preflight": "1", "Authorization": f"Bearer {token(OWNER)}"},
    )
    assert mutation.status_code == 405, mutation.text
    assert mutation.headers["allow"] == "POST"


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/graphql",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers


async def running(url: URL, **settings: Any) -> LiveServer:
    server = LiveServer(server_settings(url, **settings))
    await server.start()
    return server


async def test_cors_allows_configured_origins_only(security_database: URL) -> None:
    server = await running(
        security_database, jwt_secret=SECRET, cors_origins=["https://canvas.example"]
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            headers = {"Access-Control-Request-Method": "POST"}
            allowed = await client.options(
                "/graphql", headers={**headers, "Origin": "https://canvas.example"}
            )
            assert allowed.headers["access-control-allow-origin"] == "https://canvas.example"
            refused = await client.options(
                "/graphql", headers={**headers, "Origin": "https://evil.example"}
            )
            assert "access-control-allow-origin" not in refused.headers
    finally:
        await server.stop()


async def test_introspection_and_graphiql_can_be_switched_off(security_database: URL) -> None:
    introspection = "query { __schema { queryType { name } } }"
    server = await running(
        security_database, jwt_secret=SECRET, introspection=False, graphiql=False
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            body = (await client.post("/graphql", json={"query": introspection})).json()
            assert body.get("data") is None and "introspection" in body["errors"][0]["message"]
            page = await client.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in page.text.lower()
            normal = (await client.post("/graphql", json={"query": WHO})).json()
            assert normal["data"]["conversations"]["totalCount"] >= 0
    finally:
        await server.stop()
    server = await running(security_database, jwt_secret=SECRET)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            body = (await client.post("/graphql", json={"query": introspection})).json()
            assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}
            page = await client.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" in page.text.lower()
    finally:
        await server.stop()


async def test_development_mode_is_announced_and_loopback_only(
    security_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lct.http")
    server = await running(security_database, dev_user_id="dev-user")
    try:
        assert any("NOT configured" in record.getMessage() for record in caplog.records)
        async with httpx.AsyncClient(base_url=server.url) as client:
            mine = 'query { conversations(first: 1, ownerId: "dev-user") { totalCount } }'
            ok = await client.post("/graphql", json={"query": mine})
            assert ok.status_code == 200, ok.text
            # A web page on another name (DNS rebinding) or anything not loopback is refused.
            rebound = await client.post(
                "/graphql", json={"query": mine}, headers={"Host": "attacker.example"}
            )
            assert rebound.status_code == 403
            assert rebound.json()["errors"][0]["extensions"]["code"] == (
                "DEVELOPMENT_MODE_LOOPBACK_ONLY"
            )
    finally:
        await server.stop()


async def test_cross_site_websockets_are_refused(secure_server: LiveServer) -> None:
    """Subscriptions are served over WebSocket (tests/live/); a page of another origin cannot
    open one (cross-site WebSocket hijacking)."""
    import websockets

    url = secure_server.url.replace("http://", "ws://") + "/graphql"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            url, subprotocols=["graphql-transport-ws"], origin="https://attacker.example"
        ) as socket:
            await socket.recv()
    assert refused.value.response.status_code == 403
