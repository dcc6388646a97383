"""A property-based fuzzer over every query and mutation of the schema, against a live server.

hypothesis-graphql writes documents that are valid against the schema, one root field at a time
(so every field gets its share), with arguments drawn from strategies for the custom scalars: ids
mostly taken from the loaded data (so that resolvers get past "not found" into the deep code),
`DateTime`s with and without offsets, free-form `JSON`, and strings with any character at all
(NUL, unpaired surrogates). The whole run has a fixed time budget. It fails on any HTTP 5xx and
on any `INTERNAL_SERVER_ERROR`: every input is either served or refused with a typed error.

The server is a process of its own (`graph.serve`), and `SENDERS` threads post the documents
while hypothesis writes the next ones: writing a document costs about as much as serving it, and
the two then run side by side instead of taking turns on one interpreter.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

import asyncpg
import graphql
import httpx
import pytest
from alembic import command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from graph.schema import schema as strawberry_schema
from tests.conftest import alembic_config, asyncpg_dsn
from tests.operations.test_observability import serve

# The whole fuzz (queries and mutations) stays within this many seconds of CI time.
BUDGET_SECONDS = float(os.environ.get("LCT_FUZZ_SECONDS", "120"))
ROUND_EXAMPLES = 50
# A floor that catches a fuzz that stopped reaching the server; a free CI machine serves thousands.
MIN_DOCUMENTS = 100
# Requests in flight at once: the server's process works while this one writes documents.
SENDERS = 4
VIEWER = "local-developer"  # development mode: every request acts as this user
ID_TABLES = (
    "conversations",
    "utterances",
    "nodes",
    "relationships",
    "clusters",
    "edits_log",
    "api_calls_log",
)


@dataclass
class Target:
    url: str
    ids: list[str]
    document: dict[str, Any]  # an export, so that imports get past the document's shape


EXPORT = """
query Export($id: ID!) {
  conversationExport(id: $id) { __typename ... on ConversationExport { document } }
}
"""


@pytest.fixture(scope="module")
async def target(database_factory: Any) -> AsyncIterator[Target]:
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        small = await generate_conversation(
            connection, nodes=2, seed=9, owner_id=VIEWER, utterances_per_node=1
        )
        for seed, owner, visibility in (
            (1, VIEWER, "private"),
            (2, VIEWER, "public"),
            (3, VIEWER, "shared"),
            (4, "someone-else", "public"),
            (5, "someone-else", "private"),
        ):
            await generate_conversation(
                connection, nodes=12, seed=seed, owner_id=owner, visibility=visibility
            )
        await connection.execute(
            "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
            " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
            " total_cost, status, started_at)"
            " SELECT id, 'e', 'f', 'p', 'm', 1, 1, 2, 0, 0, 0, 'ok', now() FROM conversations"
        )
        ids = []
        for table in ID_TABLES:
            rows = await connection.fetch(f"SELECT id::text FROM {table} ORDER BY id LIMIT 40")
            ids.extend(row[0] for row in rows)
    finally:
        await connection.close()
    served = await serve(url, LCT_STATEMENT_TIMEOUT_MS="5000")
    try:
        async with httpx.AsyncClient(base_url=served.base) as client:
            response = await client.post(
                "/graphql", json={"query": EXPORT, "variables": {"id": str(small)}}
            )
        document = response.json()["data"]["conversationExport"]["document"]
        yield Target(served.base, ids, document)
    finally:
        served.stop()


# -- Strategies -----------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec=None), max_size=30)  # NUL and lone surrogates included
NAME = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,10}", fullmatch=True)


def string_node(value: str) -> graphql.StringValueNode:
    return graphql.StringValueNode(value=value)


def json_node(value: Any) -> graphql.ValueNode:
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return string_node(value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(json_node(item) for item in value))
    return graphql.ObjectValueNode(
        fields=tuple(
            graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=json_node(item))
            for key, item in value.items()
        )
    )


def ids_strategy(known: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),  # twice: most ids exist, so resolvers reach the deep code
        st.uuids().map(str),
        ANY_TEXT,
    ).map(string_node)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NAME, children, max_size=4),
    max_leaves=12,
)
JSON_NODES = st.one_of(
    JSON_VALUES.map(json_node),
    st.just(graphql.FloatValueNode(value="1e999")),  # infinity, which jsonb cannot hold
)
DATE_TIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])).map(
        lambda moment: moment.isoformat()
    ),
    st.datetimes().map(lambda moment: moment.isoformat()),  # no offset
    ANY_TEXT,
).map(string_node)


# apiCallStats' exact amounts: decimal text, in range or not, and any text.
DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["0", "-1", "1e999", "NaN", "Infinity", "0.000000000001"]),
    ANY_TEXT,
).map(string_node)


def altered(document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The exported document with one value somewhere in it replaced, or as it is."""
    paths: list[tuple[Any, ...]] = []

    def collect(value: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                collect(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                collect(item, (*path, index))

    collect(document, ())

    def replace(path: tuple[Any, ...], new: Any) -> Any:
        copy = json.loads(json.dumps(document))
        if not path:
            return copy
        holder = copy
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = new
        return copy

    return st.builds(replace, st.sampled_from(paths[1:] or [()]), JSON_VALUES) | st.just(document)


def scalars(known: list[str], document: dict[str, Any]) -> dict[str, Any]:
    ids = ids_strategy(known)
    json_nodes = JSON_NODES | altered(document).map(json_node)
    return {
        "ID": ids,
        "UUID": ids,
        "DateTime": DATE_TIMES,
        "JSON": json_nodes,
        "Decimal": DECIMALS,
        "Money": DECIMALS,
    }


def documents(known: list[str], document: dict[str, Any]) -> st.SearchStrategy[str]:
    """One root field per document, the field drawn first so that every field is covered."""
    sdl = graphql.build_schema(strawberry_schema.as_str())
    custom = scalars(known, document)
    query_fields = sorted(sdl.query_type.fields) if sdl.query_type else []
    mutation_fields = sorted(sdl.mutation_type.fields) if sdl.mutation_type else []
    options: dict[str, Any] = {"custom_scalars": custom, "codec": None}
    return st.one_of(
        [queries(sdl, fields=[name], **options) for name in query_fields]
        + [mutations(sdl, fields=[name], **options) for name in mutation_fields]
    )


# -- The fuzz -------------------------------------------------------------------------------------


def post_body(document: str) -> bytes:
    # ASCII JSON: a lone surrogate travels as its `\ud800` escape, as a client's JSON would send it
    return json.dumps({"query": document}, ensure_ascii=True).encode()


def check(response: httpx.Response, document: str) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:2000], document)
    body = response.json()
    for item in body if isinstance(body, list) else [body]:
        for error in item.get("errors") or ():
            code = (error.get("extensions") or {}).get("code")
            assert code != "INTERNAL_SERVER_ERROR", (error, document)


async def test_no_document_is_a_server_error(target: Target) -> None:
    # hypothesis is synchronous: the fuzz gets a thread, the event loop stays free
    served, seconds = await asyncio.to_thread(run_fuzz, target)
    print(f"fuzz: {served} documents in {seconds:.0f} s")
    assert served >= MIN_DOCUMENTS, (
        f"only {served} documents in the budget: the fuzz reached too little"
    )


def run_fuzz(target: Target) -> tuple[int, float]:
    """Rounds of `ROUND_EXAMPLES` fresh documents each until the budget is spent: hypothesis has
    no time limit of its own. Each document is posted by one of `SENDERS` threads; a round ends
    when its answers are all checked, so a failure names its document within the round."""
    started = time.monotonic()
    served = 0
    headers = {"content-type": "application/json"}
    modern = {**headers, "accept": "application/graphql-response+json"}
    strategy = documents(target.ids, target.document)
    local = threading.local()
    clients: list[httpx.Client] = []

    def send(document: str, prefer_modern: bool) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=target.url, timeout=60)
            clients.append(local.client)
        response = local.client.post(
            "/graphql", content=post_body(document), headers=modern if prefer_modern else headers
        )
        check(response, document)

    with ThreadPoolExecutor(SENDERS) as senders:
        pending: list[Future[None]] = []

        @settings(
            max_examples=ROUND_EXAMPLES,
            deadline=None,
            database=None,
            phases=(Phase.generate,),  # shrinking would replay over HTTP past the budget
            suppress_health_check=list(HealthCheck),
        )
        @given(document=strategy, prefer_modern=st.booleans())
        def fuzz(document: str, prefer_modern: bool) -> None:
            pending.append(senders.submit(send, document, prefer_modern))

        while time.monotonic() - started < BUDGET_SECONDS:
            fuzz()
            for answered in pending:
                answered.result()  # raises the failed check
            served += len(pending)
            pending.clear()
    for client in clients:
        client.close()
    return served, time.monotonic() - started


def test_every_root_field_is_fuzzed() -> None:
    """The fuzz draws from the schema itself: a new query or mutation is covered without edits."""
    sdl = graphql.build_schema(strawberry_schema.as_str())
    assert sdl.query_type is not None and sdl.mutation_type is not None
    assert len(sdl.mutation_type.fields) > 10 and len(sdl.query_type.fields) > 5
    assert str(uuid.uuid4())  # the id strategy's fallback
