"""GIN indexes on nodes.children_ids and clusters.child_cluster_ids.

Revision ID: bee3b2142479
Revises: 9c4e2b7d1a05
Create Date: 2026-11-24 06:20:00

The API finds a node's or a cluster's parent by member (`children_ids @> ARRAY[id]`, in
graph/services/hierarchy.py) over the whole table; without an index every such lookup scans it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "bee3b2142479"
down_revision: str | Sequence[str] | None = "9c4e2b7d1a05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("idx_nodes_children_ids", "nodes", "children_ids"),
    ("idx_clusters_child_cluster_ids", "clusters", "child_cluster_ids"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], postgresql_using="gin")


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
