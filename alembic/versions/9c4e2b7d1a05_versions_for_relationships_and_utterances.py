"""updated_at on relationships and utterances, so every edited row has a version.

Revision ID: 9c4e2b7d1a05
Revises: 5d1f0c3a9b27
Create Date: 2026-11-24 06:10:00

Optimistic concurrency compares the `updatedAt` a client last saw with the row's. Nodes, clusters
and conversations had one; relationships and utterances (whose text and speaker attribution are
corrected on the canvas) get one here, kept current by the same trigger function.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4e2b7d1a05"
down_revision: str | Sequence[str] | None = "5d1f0c3a9b27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("relationships", "utterances")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=True,
            ),
        )
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lct_set_updated_at()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_set_updated_at ON {table}")
        op.drop_column(table, "updated_at")
