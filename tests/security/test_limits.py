"""Every query and request limit follows its `LCT_` setting: a server started with each one lowered
serves a request at the limit and refuses one just past it, with the error the README's table
names. The GraphQL document size (`LCT_MAX_QUERY_BYTES`) is held over POST and GET alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql.language import Lexer, Source, TokenKind
from sqlalchemy.engine import URL

from tests.conftest import LiveServer, server_settings
from tests.security.conftest import AUDIENCE, ISSUER, SECRET
from tests.security.test_hostile import refused

LIMITS = {
    "LCT_MAX_DEPTH": 5,
    "LCT_MAX_ALIASES": 3,
    "LCT_MAX_PAGE_SIZE": 10,
    "LCT_MAX_NODES": 50,
    "LCT_MAX_TOKENS": 100,
    "LCT_MAX_OPERATIONS": 2,
    "LCT_MAX_BODY_BYTES": 4000,
    "LCT_MAX_QUERY_BYTES": 1000,
}
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}
# Fields nested 5 and 6 deep (a leaf counts), each list a page of one.
DEPTH_5 = "{ conversations(first: 1) { nodes { nodes(first: 1) { nodes { id } } } } }"
DEPTH_6 = "{ conversations(first: 1) { nodes { nodes(first: 1) { nodes { children { id } } } } } }"


@pytest.fixture(scope="module")
async def limited(security_database: URL) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a server whose limits come from the environment, every one lowered."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LIMITS.items():
            patch.setenv(name, str(value))
        settings = server_settings(
            security_database, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
        )
    server = LiveServer(settings)
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client
    await server.stop()


def aliases(count: int) -> str:
    fields = " ".join(
        f"a{index}: conversations(first: 1) {{ totalCount }}" for index in range(count)
    )
    return f"{{ {fields} }}"


def page(size: int) -> str:
    return f"{{ conversations(first: {size}) {{ totalCount }} }}"


def objects(nodes_per_conversation: int) -> str:
    """5 conversations x (1 + nodes_per_conversation) objects."""
    return (
        "{ conversations(first: 5) { nodes {"
        f" nodes(first: {nodes_per_conversation}) {{ nodes {{ id }} }} }} }} }}"
    )


def tokens(count: int) -> str:
    document = (
        "{ conversations(first: 1, conversationType: ["
        + "CHAT " * (count - 15)
        + "]) { totalCount } }"
    )
    assert token_count(document) == count
    return document


def token_count(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def padded(size: int) -> str:
    """A document of `size` bytes."""
    return "{ __typename }".ljust(size)


def body(size: int) -> bytes:
    """A JSON request body of `size` bytes."""
    start = b'{"query": "{ __typename }"'
    return start + b" " * (size - len(start) - 1) + b"}"


def served(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    for item in result if isinstance(result, list) else [result]:
        assert not item.get("errors") and item.get("data"), item
    return result


async def test_every_limit_follows_its_setting(limited: httpx.AsyncClient) -> None:
    async def ask(document: str) -> httpx.Response:
        return await limited.post("/graphql", json={"query": document})

    for under, over, code in (
        (DEPTH_5, DEPTH_6, "QUERY_TOO_DEEP"),
        (aliases(3), aliases(4), "TOO_MANY_ALIASES"),
        (page(10), page(11), "PAGE_SIZE_TOO_LARGE"),
        (objects(9), objects(10), "QUERY_TOO_COMPLEX"),  # 50 and 55 objects
    ):
        served(await ask(under))
        over_reply = await ask(over)
        assert over_reply.status_code == 200, over_reply.text
        refused(over_reply, code)

    served(await ask(tokens(100)))
    over_reply = await ask(tokens(101))
    (error,) = refused(over_reply, None)["errors"]
    assert error["message"].startswith("Syntax Error: Document contains more than 100 tokens")

    operations = [{"query": "{ __typename }"}] * 3
    assert len(served(await limited.post("/graphql", json=operations[:2]))) == 2
    over_reply = await limited.post("/graphql", json=operations)
    assert over_reply.status_code == 400, over_reply.text
    (error,) = over_reply.json()["errors"]
    assert error["message"].startswith("A batched request may hold at most 2 operations"), error

    headers = {"content-type": "application/json"}
    served(await limited.post("/graphql", content=body(4000), headers=headers))
    over_reply = await limited.post("/graphql", content=body(4001), headers=headers)
    assert over_reply.status_code == 413, over_reply.text
    assert over_reply.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_document_over_the_size_limit_is_refused_over_post_and_get(
    limited: httpx.AsyncClient,
) -> None:
    served(await limited.post("/graphql", json={"query": padded(1000)}))
    served(await limited.get("/graphql", params={"query": padded(1000)}, headers=PREFLIGHT))
    for response in (
        await limited.post("/graphql", json={"query": padded(1001)}),
        await limited.get("/graphql", params={"query": padded(1001)}, headers=PREFLIGHT),
        # A batch is measured operation by operation.
        await limited.post("/graphql", json=[{"query": "{ __typename }"}, {"query": padded(1001)}]),
    ):
        assert response.status_code == 413, response.text
        (error,) = response.json()["errors"]
        assert error == {
            "message": "The GraphQL document is 1,001 bytes; the maximum is 1,000.",
            "extensions": {"code": "PAYLOAD_TOO_LARGE"},
        }


async def test_the_default_document_size_limit(secure_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=secure_server.url, timeout=60) as client:
        served(await client.post("/graphql", json={"query": padded(20_000)}))
        response = await client.post("/graphql", json={"query": padded(20_001)})
        assert response.status_code == 413, response.text
        assert response.json()["errors"][0]["message"] == (
            "The GraphQL document is 20,001 bytes; the maximum is 20,000."
        )
