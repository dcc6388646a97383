"""The document format: its sections, the tables they fill, and which fields are references."""

from __future__ import annotations

from typing import Any

from db.models import Cluster, Edit, Node, Relationship, Utterance

FORMAT = "lct-graph.conversation"
VERSION = 1
MAX_ROWS = 200_000

# Columns of the conversation a document does not set: ownership, sharing, state, counters.
CONVERSATION_SKIP = {
    "id",
    "owner_id",
    "shared_with",
    "deleted_at",
    "updated_at",
    "tsv_search",
    "total_utterances",
    "total_words",
    "total_nodes",
    "total_claims",
}
# Columns of the rows that the database keeps.
ROW_SKIP = {"conversation_id", "updated_at", "tsv_search"}

# Columns that hold references to rows of the document (remapped), per section.
REFERENCES: dict[str, dict[str, str]] = {
    "utterances": {"id": "utterances", "node_id": "nodes"},
    "nodes": {
        "id": "nodes",
        "parent_id": "nodes",
        "predecessor_id": "nodes",
        "successor_id": "nodes",
        "children_ids": "nodes",
        "utterance_ids": "utterances",
    },
    "relationships": {
        "id": "relationships",
        "from_node_id": "nodes",
        "to_node_id": "nodes",
        "supporting_utterance_ids": "utterances",
    },
    "clusters": {
        "id": "clusters",
        "parent_cluster_id": "clusters",
        "node_ids": "nodes",
        "child_cluster_ids": "clusters",
    },
    "edits": {"id": "edits", "target_id": "*"},
}
MODELS: dict[str, Any] = {
    "utterances": Utterance,
    "nodes": Node,
    "relationships": Relationship,
    "clusters": Cluster,
    "edits": Edit,
}
