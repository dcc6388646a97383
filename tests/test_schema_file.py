"""`schema.graphql` is generated from the code; this fails when the committed file is stale."""

from __future__ import annotations

import subprocess
import sys

from db.settings import PROJECT_ROOT

COMMAND = "strawberry export-schema graph.schema:schema --output schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "strawberry", "export-schema", "graph.schema:schema"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (PROJECT_ROOT / "schema.graphql").read_text()
    assert committed.rstrip("\n") == generated.rstrip("\n"), (
        f"schema.graphql is stale: run `{COMMAND}` and commit it"
    )
