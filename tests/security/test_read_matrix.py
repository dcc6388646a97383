"""Every read path, for the owner, the shared user, another user and anonymous, against private,
shared, public and soft-deleted conversations: nothing invisible leaks, not even as a difference
between "hidden" and "missing" (same body, same statement count)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from tests.security.conftest import (
    CONVERSATIONS,
    OTHER,
    OWNER,
    SHARED,
    TABLES,
    VIEWERS,
    Ask,
    World,
    can_read,
)

REFETCH = "query($id: ID!) { node(id: $id) { __typename id } }"
REFETCH_MANY = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
CONVERSATION = """
query($id: ID!, $includeDeleted: Boolean! = false) {
  conversation(id: $id, includeDeleted: $includeDeleted) { __typename id ownerId sharedWith }
}"""
CONVERSATIONS_LIST = """
query($owner: String, $includeDeleted: Boolean! = false) {
  conversations(first: 100, ownerId: $owner, includeDeleted: $includeDeleted) {
    totalCount nodes { __typename id }
  }
}"""
EDITS_LOG = """
query($id: ID!) {
  editsLog(conversationId: $id) {
    __typename
    ... on UserError { message code }
    ... on NotFoundError { field }
    ... on EditsPage { edits { id } }
  }
}"""
EXPORT = """
query($id: ID!) {
  conversationExport(id: $id) {
    __typename
    ... on UserError { message code }
    ... on NotFoundError { field }
  }
}"""
DEEP = """
query($id: ID!) {
  conversation(id: $id) {
    __typename id
    nodes(first: 50) { totalCount nodes {
      id parent { id } children { id } ancestors { id } predecessor { id } successor { id }
      outgoing { id toNode { id } } incoming { id fromNode { id } }
      clusters { id nodes { id } parent { id } } utterances { id } edits { id }
      conversation { id }
    } }
    rootNodes { id }
    utterances(first: 50) { totalCount nodes { id node { id } conversation { id } } }
    relationships(first: 50) { totalCount nodes {
      id fromNode { id } toNode { id } supportingUtterances { id }
    } }
    clusters { id parent { id } children { id } nodes { id } }
    edits(first: 50) { totalCount nodes { id target { __typename ... on Node { id } } } }
    apiCalls(first: 50) { totalCount nodes { id conversation { id } } }
  }
}"""

MATRIX = list(itertools.product(VIEWERS, CONVERSATIONS))


def label(viewer: str | None) -> str:
    return viewer or "anonymous"


def visible_by_id(viewer: str | None, conversation: str, kind: str) -> bool:
    # The owner reaches what lies inside their soft-deleted conversation by id; the conversation
    # itself only when asking for it explicitly.
    if conversation == "deleted":
        return viewer == OWNER and kind != "Conversation"
    return can_read(viewer, conversation)


def ids_in(value: Any) -> set[str]:
    """Every object id anywhere in a response."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                found.add(item)
            else:
                found |= ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= ids_in(item)
    return found


@pytest.mark.parametrize(("viewer", "conversation"), MATRIX)
async def test_refetch_every_type(ask: Ask, world: World, viewer: str | None, conversation: str):
    missing = await ask(REFETCH, as_=viewer, id=str(uuid.uuid4()))
    assert missing.status == 200 and missing.data == {"node": None}, missing.body
    for kind in TABLES:
        row_id = str(world.rows[conversation][kind])
        reply = await ask(REFETCH, as_=viewer, id=row_id)
        if visible_by_id(viewer, conversation, kind):
            assert reply.data == {"node": {"__typename": kind, "id": row_id}}, (kind, reply.body)
        else:
            # Byte for byte what a missing id gets, SQL statement count included.
            assert reply.body == missing.body, (label(viewer), conversation, kind, reply.body)

    ids = [str(world.rows[conversation][kind]) for kind in TABLES]
    many = await ask(REFETCH_MANY, as_=viewer, ids=ids)
    expected = [
        {"__typename": kind, "id": str(world.rows[conversation][kind])}
        if visible_by_id(viewer, conversation, kind)
        else None
        for kind in TABLES
    ]
    assert many.data == {"nodes": expected}, many.body


@pytest.mark.parametrize(("viewer", "conversation"), MATRIX)
async def test_conversation_root_field(
    ask: Ask, world: World, viewer: str | None, conversation: str
):
    conversation_id = str(world.conversations[conversation])
    # each document asked twice: the executor answers it first, its compiled statement next
    # (graph/operations.py), and neither tells hidden from missing
    for include_deleted, served in itertools.product((False, True), ("executor", "compiled")):
        if served == "executor":
            documents = [f"# {uuid.uuid4()}\n{CONVERSATION}" for _ in range(2)]
        missing = await ask(
            documents[0], as_=viewer, id=str(uuid.uuid4()), includeDeleted=include_deleted
        )
        reply = await ask(
            documents[1], as_=viewer, id=conversation_id, includeDeleted=include_deleted
        )
        assert (reply.body["extensions"].get("compiled") is True) is (served == "compiled")
        visible = can_read(viewer, conversation) or (
            conversation == "deleted" and viewer == OWNER and include_deleted
        )
        if visible:
            found = reply.data["conversation"]
            assert found["id"] == conversation_id, reply.body
            # Who else may read it is the owner's business.
            assert found["sharedWith"] == ([SHARED] if viewer == OWNER else None), found
        else:
            assert reply.body == missing.body, (label(viewer), conversation, reply.body)


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_conversations_list_and_total_count(ask: Ask, world: World, viewer: str | None):
    for include_deleted, owner in itertools.product((False, True), (None, OWNER)):
        reply = await ask(
            CONVERSATIONS_LIST, as_=viewer, owner=owner, includeDeleted=include_deleted
        )
        expected = {
            str(world.conversations[name])
            for name in CONVERSATIONS
            if can_read(viewer, name) or (name == "deleted" and include_deleted and viewer == OWNER)
        }
        page = reply.data["conversations"]
        assert {item["id"] for item in page["nodes"]} == expected, (label(viewer), reply.body)
        assert page["totalCount"] == len(expected), (label(viewer), page["totalCount"])


@pytest.mark.parametrize(("viewer", "conversation"), MATRIX)
async def test_edits_log_and_export(ask: Ask, world: World, viewer: str | None, conversation: str):
    conversation_id = str(world.conversations[conversation])
    for document, name in ((EDITS_LOG, "editsLog"), (EXPORT, "conversationExport")):
        missing = await ask(document, as_=viewer, id=str(uuid.uuid4()))
        reply = await ask(document, as_=viewer, id=conversation_id)
        result = reply.data[name]
        if name == "editsLog" and can_read(viewer, conversation):
            assert result["__typename"] == "EditsPage", result
        elif name == "conversationExport" and viewer == OWNER:
            assert result["__typename"] == "ConversationExport", result
        elif can_read(viewer, conversation):
            # Readable but not the reader's to export: refused, and saying so leaks nothing.
            assert result["__typename"] == "ForbiddenError", result
        else:
            assert reply.body == missing.body, (label(viewer), conversation, name, reply.body)


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_nested_traversals_stop_at_the_boundary(ask: Ask, world: World, viewer: str | None):
    """The public conversation holds rows that point into the private one (parent, chain,
    children, relationships both ways, a cluster's members and parent, an utterance's node, an
    edit's target): only the owner gets across."""
    reply = await ask(DEEP, as_=viewer, id=str(world.conversations["public"]))
    assert not reply.errors, reply.errors
    seen = ids_in(reply.data)
    assert str(world.conversations["public"]) in seen
    for name in ("private", "shared", "deleted"):
        leaked = seen & world.all_ids[name]
        if viewer == OWNER and name == "private":
            # The positive control: the references really do lead across for the owner.
            assert str(world.rows["private"]["ThreadNode"]) in leaked
            assert str(world.rows["private"]["Cluster"]) in leaked
        else:
            assert not leaked, (label(viewer), name, leaked)


async def test_shared_user_sees_shared_but_not_private_despite_shared_with(ask: Ask, world: World):
    """`shared_with` on a private conversation grants nothing: visibility decides."""
    reply = await ask(DEEP, as_=SHARED, id=str(world.conversations["shared"]))
    assert reply.data["conversation"]["id"] == str(world.conversations["shared"])
    hidden = await ask(DEEP, as_=SHARED, id=str(world.conversations["private"]))
    assert hidden.data == {"conversation": None}, hidden.body
    other = await ask(DEEP, as_=OTHER, id=str(world.conversations["shared"]))
    assert other.data == {"conversation": None}, other.body
