"""NOT NULL on the columns that always have a value: timestamps, flags, counters, level, sizes.

Revision ID: 4f7a1c9e2d63
Revises: 2d53642fc09d
Create Date: 2026-12-01 08:00:00

Each of these columns has a default and the API never clears it, so in practice it is never
empty; saying so in the database lets the GraphQL schema declare the fields non-null, which
generated clients rely on. Rows an older version left empty get the column's default first
(`updated_at` takes the row's `created_at`). The backfill runs with the table's triggers off
(`updated_at`'s, the search vectors'), so it does not make every touched row look edited.
Downgrading drops the NOT NULLs and
keeps the values.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4f7a1c9e2d63"
down_revision: str | Sequence[str] | None = "2d53642fc09d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# column -> the SQL value an empty one is filled with (the column's default)
COLUMNS: dict[str, dict[str, str]] = {
    "conversations": {
        "created_at": "now()",
        "updated_at": "coalesce(created_at, now())",
        "visibility": "'private'",
        "total_utterances": "0",
        "total_words": "0",
        "total_nodes": "0",
        "total_claims": "0",
    },
    "utterances": {"created_at": "now()", "updated_at": "coalesce(created_at, now())"},
    "nodes": {
        "created_at": "now()",
        "updated_at": "coalesce(created_at, now())",
        "node_type": "'conversational_thread'",
        "level": "1",
        "is_bookmark": "false",
        "is_contextual_progress": "false",
        "is_tangent": "false",
        "is_crux": "false",
        "canvas_width": "350",
        "canvas_height": "200",
    },
    "relationships": {
        "created_at": "now()",
        "updated_at": "coalesce(created_at, now())",
        "strength": "1",
        "confidence": "1",
        "is_bidirectional": "false",
    },
    "clusters": {
        "created_at": "now()",
        "updated_at": "coalesce(created_at, now())",
        "auto_generated": "true",
    },
    "edits_log": {"created_at": "now()", "exported_for_training": "false"},
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        # No trigger fires for the fill: neither `updated_at`'s nor those that keep derived data
        # (search vectors) current, which would touch other tables' rows for nothing.
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        # Every right-hand side sees the row as it was: an empty created_at and updated_at both
        # become the transaction's now().
        assignments = ", ".join(
            f"{column} = coalesce({column}, {value})" for column, value in columns.items()
        )
        empty = " OR ".join(f"{column} IS NULL" for column in columns)
        op.execute(f"UPDATE {table} SET {assignments} WHERE {empty}")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        op.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {column} SET NOT NULL" for column in columns)
        )


def downgrade() -> None:
    for table, columns in reversed(COLUMNS.items()):
        op.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {column} DROP NOT NULL" for column in columns)
        )
