"""Every order of every list, page by page, against SQL's ORDER BY, on both ways a page is served.

Each case runs three ways: a page whose items PostgreSQL renders (graph/rendering), the same page
from a server whose resolvers build every field (`LCT_RENDER_IN_DATABASE=false`), and, for the
lists of a conversation, the page nested in a rendered list of conversations, where PostgreSQL
builds the whole connection (cursors and `pageInfo` included) inside the conversations'
statement; `extensions.renderedLists` confirms which one served it. The expected
order is written here as SQL, independently of graph/pagination.py: the key, NULLs last ascending
(first descending), then the id in the same direction. The data has NULLs and ties on purpose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from db.base import Base
from db.demo import generate_conversation

OWNER = "ordering-owner"  # public conversations of their own, so other tests' rows stay out
PAGE = 7

ITEMS = "__typename id conversation { id }"
SERVED = ("rendered", "resolved", "nested")
# The conversations list is a root list: it has no parent to be nested in.
CONVERSATION_SERVED = ("rendered", "resolved")

NODES = """
query ($id: ID!, $first: Int!, $after: String, $orderBy: NodeOrderField!, $direction: Direction!) {
  conversation(id: $id) {
    __typename
    list: nodes(first: $first, after: $after, orderBy: $orderBy, direction: $direction) {
      __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
    }
  }
}
"""

UTTERANCES = """
query ($id: ID!, $first: Int!, $after: String, $orderBy: UtteranceOrderField!,
       $direction: Direction!) {
  conversation(id: $id) {
    __typename
    list: utterances(first: $first, after: $after, orderBy: $orderBy, direction: $direction) {
      __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
    }
  }
}
"""

RELATIONSHIPS = """
query ($id: ID!, $first: Int!, $after: String, $orderBy: RelationshipOrderField!,
       $direction: Direction!) {
  conversation(id: $id) {
    __typename
    list: relationships(first: $first, after: $after, orderBy: $orderBy, direction: $direction) {
      __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
    }
  }
}
"""

API_CALLS = """
query ($id: ID!, $first: Int!, $after: String, $orderBy: ApiCallOrderField!,
       $direction: Direction!) {
  conversation(id: $id) {
    __typename
    list: apiCalls(first: $first, after: $after, orderBy: $orderBy, direction: $direction) {
      __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
    }
  }
}
"""

# Edits have one order (createdAt); only the direction is chosen.
EDITS = """
query ($id: ID!, $first: Int!, $after: String, $direction: Direction!) {
  conversation(id: $id) {
    __typename
    list: edits(first: $first, after: $after, direction: $direction) {
      __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
    }
  }
}
"""

CONVERSATIONS = """
query ($owner: String!, $first: Int!, $after: String, $orderBy: ConversationOrderField!,
       $direction: Direction!) {
  list: conversations(ownerId: $owner, first: $first, after: $after, orderBy: $orderBy,
                      direction: $direction) {
    __typename totalCount pageInfo { hasNextPage endCursor } nodes { ITEMS }
  }
}
"""


@dataclass(frozen=True)
class Listing:
    document: str
    table: str
    fields: tuple[str, ...]  # the order fields, as the enum names them


LISTINGS = {
    "nodes": Listing(
        NODES, "nodes", ("NODE_NAME", "CREATED_AT", "UPDATED_AT", "LEVEL", "TIMESTAMP_START")
    ),
    "utterances": Listing(
        UTTERANCES, "utterances", ("TIMESTAMP_START", "CREATED_AT", "SEQUENCE_NUMBER")
    ),
    "relationships": Listing(
        RELATIONSHIPS, "relationships", ("STRENGTH", "RELATIONSHIP_TYPE", "CREATED_AT")
    ),
    "apiCalls": Listing(API_CALLS, "api_calls_log", ("TOTAL_COST", "STARTED_AT")),
    "edits": Listing(EDITS, "edits_log", ("CREATED_AT",)),
    "conversations": Listing(
        CONVERSATIONS,
        "conversations",
        ("CONVERSATION_NAME", "CREATED_AT", "UPDATED_AT", "STARTED_AT"),
    ),
}

CASES = [
    pytest.param(name, field, direction, served, id=f"{name}-{field}-{direction}-{served}")
    for name, listing in LISTINGS.items()
    for field in listing.fields
    for direction in ("ASC", "DESC")
    for served in (CONVERSATION_SERVED if name == "conversations" else SERVED)
]


@dataclass(frozen=True)
class Ordered:
    conversation: uuid.UUID  # 40 nodes, with NULLs and ties in every order column
    others: list[uuid.UUID]  # OWNER's other conversations


# Row n (1-based, in id order) of each table gets NULLs (where the column allows them) and ties
# by n's remainders.
ODD_VALUES = [
    """UPDATE nodes SET
         node_name = CASE WHEN n % 4 = 0 THEN 'Same name' ELSE node_name END,
         timestamp_start = CASE n % 5 WHEN 0 THEN NULL WHEN 1 THEN 42.5 ELSE timestamp_start END,
         level = CASE WHEN n % 7 = 0 THEN 3 ELSE level END,
         created_at = $2::timestamptz + (n % 3) * interval '1 second',
         updated_at = $2::timestamptz + (n % 5) * interval '1 microsecond'
       FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
             FROM nodes WHERE conversation_id = $1) numbered
       WHERE id = row_id""",
    """UPDATE utterances SET
         timestamp_start = CASE n % 6 WHEN 0 THEN NULL WHEN 1 THEN 7.25 ELSE timestamp_start END,
         timestamp_end = CASE WHEN n % 6 IN (0, 1) THEN NULL ELSE timestamp_end END,
         created_at = $2::timestamptz + (n % 4) * interval '1 second'
       FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
             FROM utterances WHERE conversation_id = $1) numbered
       WHERE id = row_id""",
    """UPDATE relationships SET
         strength = CASE n % 5 WHEN 1 THEN 0.5 ELSE strength END,
         created_at = $2::timestamptz + (n % 3) * interval '1 second'
       FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
             FROM relationships WHERE conversation_id = $1) numbered
       WHERE id = row_id""",
    # copies tie with their originals on every column but the id
    """INSERT INTO edits_log (id, conversation_id, target_type, target_id, field_name, old_value,
         new_value, edit_type, user_comment, user_id, user_confidence, exported_for_training,
         training_dataset_id, created_at)
       SELECT gen_random_uuid(), conversation_id, target_type, target_id, field_name, old_value,
         new_value, edit_type, user_comment, user_id, user_confidence, exported_for_training,
         training_dataset_id, created_at
       FROM edits_log, generate_series(1, 4) WHERE conversation_id = $1""",
    """UPDATE edits_log SET created_at = CASE n % 4 WHEN 1 THEN $2::timestamptz ELSE created_at END
       FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
             FROM edits_log WHERE conversation_id = $1) numbered
       WHERE id = row_id""",
    """INSERT INTO api_calls_log (id, conversation_id, endpoint, feature, provider, model,
         prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost,
         latency_ms, status, error_message, started_at, completed_at, request_id)
       SELECT gen_random_uuid(), conversation_id, endpoint, feature, provider, model,
         prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost, total_cost,
         latency_ms, status, error_message, started_at, completed_at, request_id
       FROM api_calls_log, generate_series(1, 6) WHERE conversation_id = $1""",
    """UPDATE api_calls_log SET started_at = $2::timestamptz + (n % 3) * interval '1 second'
       FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
             FROM api_calls_log WHERE conversation_id = $1) numbered
       WHERE id = row_id AND n % 2 = 0""",
]

ODD_CONVERSATIONS = """
UPDATE conversations SET
  conversation_name = CASE WHEN n % 2 = 0 THEN 'Twin' ELSE conversation_name END,
  started_at = CASE WHEN n % 3 = 0 THEN $2::timestamptz ELSE started_at END,
  created_at = CASE n % 4 WHEN 1 THEN $2::timestamptz ELSE created_at END,
  updated_at = CASE n % 3 WHEN 2 THEN $2::timestamptz ELSE updated_at END
FROM (SELECT id AS row_id, row_number() OVER (ORDER BY id) AS n
      FROM conversations WHERE owner_id = $1) numbered
WHERE id = row_id
"""

TIE = "2030-01-02T03:04:05.123456+00:00"


@pytest.fixture(scope="module")
async def ordered(db: asyncpg.Connection) -> Ordered:
    from datetime import datetime

    tie = datetime.fromisoformat(TIE)
    conversation = await generate_conversation(
        db, nodes=40, seed=71, owner_id=OWNER, visibility="public", name="Ordered"
    )
    others = [
        await generate_conversation(
            db, nodes=2, seed=72 + index, owner_id=OWNER, visibility="public"
        )
        for index in range(13)
    ]
    async with db.transaction():
        # skips the trigger that would overwrite every updated_at written here with now()
        await db.execute("SET LOCAL session_replication_role = replica")
        for statement in ODD_VALUES:
            await db.execute(statement, conversation, *([tie] if "$2" in statement else []))
        await db.execute(ODD_CONVERSATIONS, OWNER, tie)
    return Ordered(conversation=conversation, others=others)


def order_by(column: str, direction: str) -> str:
    if direction == "ASC":
        return f"{column} ASC NULLS LAST, id ASC"
    return f"{column} DESC NULLS FIRST, id DESC"


async def expected_ids(
    db: asyncpg.Connection, listing: Listing, field: str, direction: str, ordered: Ordered
) -> list[str]:
    column = field.lower()
    if listing.table == "conversations":
        where, key = "owner_id = $1 AND deleted_at IS NULL", OWNER
    else:
        where, key = "conversation_id = $1", str(ordered.conversation)
    rows = await db.fetch(
        f"SELECT id FROM {listing.table} WHERE {where} ORDER BY {order_by(column, direction)}",
        key,
    )
    return [str(row["id"]) for row in rows]


async def walk(
    graphql: Any, document: str, conversation_id: str, **variables: Any
) -> tuple[list[str], list[Any]]:
    """Every page from the first to the one without a next page: the ids, and the responses."""
    seen: list[str] = []
    responses = []
    after = None
    while True:
        response = await graphql(document, first=PAGE, after=after, **variables)
        assert not response.errors, response.errors
        responses.append(response)
        page = page_of(response.data, conversation_id)
        assert len(page["nodes"]) <= PAGE
        seen += [item["id"] for item in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, responses
        assert len(page["nodes"]) == PAGE
        after = page["pageInfo"]["endCursor"]
        assert len(responses) < 1000, "the pages never end"


def nested(document: str) -> str:
    """The document with its conversation found in a rendered list of the owner's ones."""
    return (
        document.replace("$id: ID!, ", "")
        .replace(
            "conversation(id: $id) {",
            f'nested: conversations(ownerId: "{OWNER}", first: 50) {{ nodes {{ id',
        )
        .rstrip()[: -len("}")]
        + "}\n}"
    )


def page_of(data: dict[str, Any], conversation_id: str) -> Any:
    if "list" in data:
        return data["list"]
    if "nested" in data:
        (found,) = [item for item in data["nested"]["nodes"] if item["id"] == conversation_id]
        return found["list"]
    return data["conversation"]["list"]


@pytest.mark.parametrize(("name", "field", "direction", "served"), CASES)
async def test_pages_follow_the_sql_order(
    graphql, graphql_resolved, db, ordered, name, field, direction, served
):
    listing = LISTINGS[name]
    items = "__typename id" if name == "conversations" else ITEMS
    document = listing.document.replace("ITEMS", items)
    variables: dict[str, Any] = {"direction": direction}
    if name == "conversations":
        variables["owner"] = OWNER
    else:
        variables["id"] = str(ordered.conversation)
    if name != "edits":
        variables["orderBy"] = field
    if served == "nested":
        document = nested(document)
        del variables["id"]
    post = graphql_resolved if served == "resolved" else graphql

    seen, responses = await walk(post, document, str(ordered.conversation), **variables)

    expected = await expected_ids(db, listing, field, direction, ordered)
    assert len(expected) > 2 * PAGE or name == "conversations"
    assert len(seen) == len(set(seen)), "an item came twice"
    assert seen == expected
    for response in responses:
        page = page_of(response.data, str(ordered.conversation))
        assert page["totalCount"] == len(expected)
        rendered = response.body["extensions"]["renderedLists"]
        assert (rendered > 0) is (served != "resolved"), response.body["extensions"]


async def test_the_data_has_nulls_and_ties_in_every_order_column(db, ordered):
    """Guards the fixture: an order that meets no NULL and no tie proves little."""
    for listing in LISTINGS.values():
        if listing.table == "conversations":
            where, key = "owner_id = $1", OWNER
        else:
            where, key = "conversation_id = $1", str(ordered.conversation)
        for field in listing.fields:
            column = field.lower()
            nulls, distinct, total = await db.fetchrow(
                f"SELECT count(*) FILTER (WHERE {column} IS NULL), count(DISTINCT {column}),"
                f" count(*) FROM {listing.table} WHERE {where}",
                key,
            )
            if column != "sequence_number":  # unique per conversation
                assert distinct + (1 if nulls else 0) < total, (listing.table, column, "no tie")
            # every column that can hold NULL holds one here
            nullable = Base.metadata.tables[listing.table].columns[column].nullable
            assert (nulls > 0) is nullable, (listing.table, column, nulls)
