"""Compiled operations (graph/operations.py): a document the executor answered without an error
is answered the next time by one statement, which must say what the executor would say.

Every document here gets a text the server has not seen (a comment with a fresh UUID), so the
first request is the executor's and the test knows which answer is which: with
`LCT_DEBUG_SQL_COUNT` a compiled answer carries `extensions.compiled`. The field-by-field
comparison of both answers is in test_rendering.py (`compare`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from tests.conftest import (
    LiveServer,
    alembic_config,
    asyncpg_dsn,
    graphql_client,
    server_settings,
)
from tests.read.conftest import VIEWER


def new(document: str) -> str:
    return f"# {uuid.uuid4()}\n{document}"


def compiled(response: Any) -> bool:
    return bool((response.body.get("extensions") or {}).get("compiled"))


HEADER = """query($id: ID!) {
  conversation(id: $id) { id conversationName nodes(first: 3) { totalCount nodes { id } } }
}"""


async def test_one_statement_serves_every_id(graphql, graphql_resolved, conversations):
    document = new(HEADER)
    first = await graphql(document, id=str(conversations.small))
    assert not compiled(first) and first.data["conversation"]["id"] == str(conversations.small)
    for conversation_id in (conversations.large, conversations.small, uuid.uuid4()):
        answer = await graphql(document, id=str(conversation_id))
        assert compiled(answer) and answer.statements == 1, answer.body
        expected = await graphql_resolved(document, id=str(conversation_id))
        assert answer.data == expected.data
    # another user's private conversation: as missing as a missing one
    hidden = await graphql(document, id=str(conversations.foreign))
    assert compiled(hidden) and hidden.data == {"conversation": None}


@pytest.mark.parametrize("given", ["nope", 5, "", None, ["x"], {"id": 1}])
async def test_a_bad_id_is_answered_by_the_executor(graphql, conversations, given):
    document = new(HEADER)
    learned = await graphql(document, id=str(conversations.small))
    again = await graphql(document, id=str(conversations.small))
    assert not compiled(learned) and compiled(again)
    bad = await graphql(document, id=given)
    assert not compiled(bad) and bad.errors and bad.data in (None, {"conversation": None}), bad.body


PAGE = """query($id: ID!, $first: Int) {
  conversation(id: $id) { nodes(first: $first) { nodes { id } } }
}"""


async def test_other_variables_are_part_of_the_key(graphql, conversations):
    document = new(PAGE)
    small = str(conversations.large)
    for first in (2, 2, 3, 3):
        answer = await graphql(document, id=small, first=first)
        assert len(answer.data["conversation"]["nodes"]["nodes"]) == first
    assert [compiled(await graphql(document, id=small, first=first)) for first in (2, 3)] == [
        True,
        True,
    ]
    # 1 and true are equal in Python, not in GraphQL: `true` is not an Int
    refused = await graphql(document, id=small, first=True)
    assert not compiled(refused) and refused.errors and refused.data is None
    too_many = await graphql(document, id=small, first=10**6)
    assert not compiled(too_many) and too_many.errors


async def test_what_changed_is_what_is_answered(graphql, db: asyncpg.Connection):
    conversation_id = await generate_conversation(
        db, nodes=3, seed=71, owner_id=VIEWER, name="Before"
    )
    document = new("query($id: ID!) { conversation(id: $id) { conversationName } }")
    await graphql(document, id=str(conversation_id))
    await db.execute(
        "UPDATE conversations SET conversation_name = 'After' WHERE id = $1", conversation_id
    )
    answer = await graphql(document, id=str(conversation_id))
    assert compiled(answer) and answer.data == {"conversation": {"conversationName": "After"}}
    await db.execute("UPDATE conversations SET deleted_at = now() WHERE id = $1", conversation_id)
    deleted = await graphql(document, id=str(conversation_id))
    assert compiled(deleted) and deleted.data == {"conversation": None}


async def test_a_dead_connection_is_answered_by_the_executor(
    database_url: URL, conversations, db: asyncpg.Connection
):
    # a server of its own, whose connections its application_name tells apart
    name = f"lct-test-{uuid.uuid4().hex[:8]}"
    server = LiveServer(server_settings(database_url.update_query_dict({"application_name": name})))
    await server.start()
    try:
        async with graphql_client(server.url) as graphql:
            document = "query($id: ID!) { conversation(id: $id) { id } }"
            await graphql(document, id=str(conversations.small))
            assert compiled(await graphql(document, id=str(conversations.small)))
            killed = await db.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            assert killed >= 1
            answers = [await graphql(document, id=str(conversations.small)) for _ in range(3)]
    finally:
        await server.stop()
    for answer in answers:
        assert answer.data == {"conversation": {"id": str(conversations.small)}}, answer.body
    assert compiled(answers[-1])


@pytest.mark.parametrize(
    "document",
    [
        "query($id: ID!) { node(id: $id) { id } }",  # not a relation declaration (yet)
        'query($id: ID!) { conversation(id: $id) { id } search(query: "x") { totalCount } }',
    ],
)
async def test_what_does_not_render_stays_with_the_executor(graphql, conversations, document):
    document = new(document)
    for _ in range(3):
        answer = await graphql(document, id=str(conversations.small))
        assert not answer.errors and not compiled(answer), answer.body


async def test_typename_alone_needs_no_statement(graphql):
    document = new("{ __typename t: __typename }")
    await graphql(document)
    answer = await graphql(document)
    assert answer.body == {
        "data": {"__typename": "Query", "t": "Query"},
        "extensions": {"sqlStatements": 0, "renderedLists": 0, "compiled": True},
    }


async def test_mutations_are_never_compiled(graphql):
    document = new(
        'mutation { createConversation(input: {conversationName: "m",'
        ' conversationType: TRANSCRIPT, sourceType: "test"}) { __typename } }'
    )
    for _ in range(2):
        answer = await graphql(document)
        assert not answer.errors and not compiled(answer), answer.body


async def test_the_setting_switches_it_off(database_url: URL, conversations):
    server = LiveServer(server_settings(database_url, compile_operations=False))
    await server.start()
    try:
        async with graphql_client(server.url) as graphql:
            document = new(HEADER)
            answers = [await graphql(document, id=str(conversations.small)) for _ in range(3)]
    finally:
        await server.stop()
    assert [compiled(answer) for answer in answers] == [False, False, False]
    assert all(answer.data == answers[0].data for answer in answers)


SLOW_CALLS = "query($id: ID!) { conversation(id: $id) { apiCalls(first: 50) { nodes { id } } } }"
BOTH = " b: conversation(id: $id) { conversationName } }"


async def test_a_cancelled_statement_is_reported_not_run_again(database_factory: Any) -> None:
    """A compiled statement that `statement_timeout` cancels is answered as the executor answers
    a cancelled statement, by the fast path: run again by the executor, it would take as long
    again before being cancelled again."""
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        quick, slow = [
            await generate_conversation(connection, nodes=2, seed=seed, owner_id=VIEWER)
            for seed in (1, 2)
        ]
        for conversation_id, feature in ((quick, "quick"), (slow, "slow")):
            await connection.execute(
                "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
                " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
                " total_cost, status, started_at)"
                " SELECT $1, 'e', $2, 'p', 'm', 1, 1, 2, 0, 0, 0, 'ok', now()"
                " FROM generate_series(1, 12)",
                conversation_id,
                feature,
            )
        # every slow call read takes 0.2 s, and is counted
        await connection.execute(
            """
            CREATE SEQUENCE slow_reads;
            CREATE FUNCTION slow_read() RETURNS boolean LANGUAGE sql VOLATILE
                AS $$ SELECT nextval('slow_reads') > 0 AND pg_sleep(0.2) IS NOT NULL $$;
            ALTER TABLE api_calls_log RENAME TO api_calls_log_rows;
            CREATE VIEW api_calls_log AS SELECT * FROM api_calls_log_rows
                WHERE feature <> 'slow' OR slow_read();
            """
        )
        server = LiveServer(server_settings(url, statement_timeout_ms=500))
        await server.start()
        try:
            async with graphql_client(server.url) as graphql:
                executor = await graphql(new(SLOW_CALLS), id=str(slow))
                before = await connection.fetchval("SELECT last_value FROM slow_reads")
                document = new(SLOW_CALLS)
                learned = await graphql(document, id=str(quick))
                again = await graphql(document, id=str(quick))
                cancelled = await graphql(document, id=str(slow))
                after = await connection.fetchval("SELECT last_value FROM slow_reads")
                # two root fields read the database: which one ran long is the executor's to say
                both = new(SLOW_CALLS.replace("conversation(", "a: conversation(")[:-1] + BOTH)
                learned_both = [await graphql(both, id=str(quick)) for _ in range(2)]
                handed_on = await graphql(both, id=str(slow))
        finally:
            await server.stop()
    finally:
        await connection.close()
    (reported,) = executor.errors
    assert reported["extensions"]["code"] == "STATEMENT_TIMEOUT", executor.body
    assert reported["path"][0] == "conversation"
    assert not compiled(learned) and compiled(again) and not again.errors, again.body
    assert len(again.data["conversation"]["apiCalls"]["nodes"]) >= 12
    assert compiled(cancelled), cancelled.body
    (error,) = cancelled.errors
    assert error["message"] == reported["message"]
    assert error["extensions"] == {"code": "STATEMENT_TIMEOUT"}
    assert error["path"] == ["conversation"] and error["locations"] == [{"line": 2, "column": 19}]
    assert cancelled.data == {"conversation": None}
    # one statement read slow calls, for about 0.5 s (0.2 s each), not two for about 1 s
    assert after - before <= 4, (before, after)
    assert compiled(learned_both[1]) and not compiled(handed_on), handed_on.body
    (error,) = handed_on.errors
    assert error["extensions"]["code"] == "STATEMENT_TIMEOUT" and error["path"][0] == "a"
