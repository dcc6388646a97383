"""The read API's object types, built from the ORM rows the write services return.

Mutation payloads return the same types queries do (`graph.nodes.ThreadNode`, ...), so a client
selects the same fields either way. Those types are filled straight from a row's columns
(`graph.relay.from_row`); an ORM object is turned into that mapping here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from graph.api_calls import ApiCall as ApiCallType
from graph.clusters import Cluster as ClusterType
from graph.conversations import Conversation as ConversationType
from graph.edits import Edit as EditType
from graph.nodes import ThreadNode as NodeType
from graph.registry import BY_MODEL
from graph.relationships import Relationship as RelationshipType
from graph.relay import from_row
from graph.utterances import Utterance as UtteranceType


def _columns(row: Any) -> dict[str, Any]:
    return {
        attribute.key: getattr(row, attribute.key) for attribute in inspect(row).mapper.column_attrs
    }


def out(row: Any) -> Any:
    """The read type's object for an ORM row of any table (its type from the registry)."""
    return from_row(BY_MODEL[type(row)].graphql_type, _columns(row))


__all__ = [
    "ApiCallType",
    "ClusterType",
    "ConversationType",
    "EditType",
    "NodeType",
    "RelationshipType",
    "UtteranceType",
    "out",
]
