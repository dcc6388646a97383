"""Every object type of the graph, once: its kind, table, model and GraphQL type.

The kind is the name the database uses for the type (`edits_log.target_type`, the change feed,
`node(id:)`'s lookup); the GraphQL type is imported on first use, so that the type modules can
declare their relations against this registry without an import cycle.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import FromClause, Table

from db import models


@dataclass(frozen=True, eq=False)
class Kind:
    name: str
    model: type[models.Base]
    type_name: str
    module: str
    # the order its lists are in unless a field says otherwise: (column, descending), the id last
    natural_order: tuple[tuple[str, bool], ...] = (("id", False),)

    def order(self, source: FromClause) -> list[Any]:
        """The natural order over `source` (the table or an alias of it)."""
        return [
            source.c[column].desc() if descending else source.c[column]
            for column, descending in self.natural_order
        ]

    @property
    def table(self) -> Table:
        return self.model.__table__  # type: ignore[return-value]

    @cached_property
    def graphql_type(self) -> type:
        """The strawberry class whose objects are this table's rows."""
        return getattr(importlib.import_module(self.module), self.type_name)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "conversation",
            models.Conversation,
            "Conversation",
            "graph.conversations",
            (("started_at", True), ("id", True)),
        ),
        Kind(
            "node",
            models.Node,
            "ThreadNode",
            "graph.nodes",
            (("timestamp_start", False), ("id", False)),
        ),
        Kind(
            "relationship",
            models.Relationship,
            "Relationship",
            "graph.relationships",
            (("created_at", False), ("id", False)),
        ),
        Kind(
            "cluster",
            models.Cluster,
            "Cluster",
            "graph.clusters",
            (("level", False), ("cluster_name", False), ("id", False)),
        ),
        Kind(
            "utterance",
            models.Utterance,
            "Utterance",
            "graph.utterances",
            (("sequence_number", False), ("id", False)),
        ),
        Kind("edit", models.Edit, "Edit", "graph.edits", (("created_at", True), ("id", True))),
        Kind(
            "api_call",
            models.ApiCall,
            "ApiCall",
            "graph.api_calls",
            (("started_at", True), ("id", True)),
        ),
    )
}
BY_TYPE_NAME: dict[str, Kind] = {kind.type_name: kind for kind in KINDS.values()}
BY_MODEL: dict[type, Kind] = {kind.model: kind for kind in KINDS.values()}
# The field metadata key of a relation's declaration (graph/relations.py).
RELATION = "lct_relation"
# Columns that no GraphQL field reads and no loader fetches (the search vector is large).
UNREAD_COLUMNS = frozenset({"tsv_search"})


def kind_of(value: Any) -> Kind:
    """The kind of a strawberry object of the graph."""
    return BY_TYPE_NAME[type(value).__name__]


def columns(table: FromClause) -> list[Any]:
    """The columns a loader fetches: all but the unread ones."""
    return [column for column in table.c if column.key not in UNREAD_COLUMNS]
