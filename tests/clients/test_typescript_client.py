"""The TypeScript client README recommends, generated and type-checked as a user would.

graphql-codegen's client preset generates the client from the committed `schema.graphql` with the
config in `clients/typescript/codegen.ts` (`strictScalars`, the README's scalar mapping), and
`tsc --strict` checks `clients/typescript/src/program.ts` against it: the canvas query, the
`updateNode` result union (branching on `__typename`, `... on UserError` for the rest) and a
refetch by id, with every value read from the canvas sent back in `UpdateNodeInput` as it was read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.clients.node import matches_lock, npm_installed, run_node

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "typescript"
TSC = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
CODEGEN = CLIENT / "node_modules" / "@graphql-codegen" / "cli" / "cjs" / "bin.js"


@pytest.fixture(scope="module")
def generated() -> Path:
    npm_installed(CLIENT)
    result = run_node(CODEGEN, "--config", "codegen.ts", cwd=CLIENT)
    assert result.returncode == 0, result.stdout + result.stderr
    return CLIENT / "src" / "gql"


def tsc(project: Path) -> tuple[int, str]:
    result = run_node(TSC, "--project", project, "--strict", "--noEmit", cwd=CLIENT)
    return result.returncode, result.stdout + result.stderr


def test_generated_client_has_every_scalar_typed(generated: Path) -> None:
    types = (generated / "graphql.ts").read_text()
    canvas = types.split("export type CanvasQuery = ", 1)[1].split("\n", 1)[0]
    assert "updatedAt: string," in canvas  # DateTime, and non-null
    assert "chunkIds: Array<string>," in canvas  # UUID
    assert "dialogueType: DialogueType | null," in canvas  # the enum, as the input takes it
    assert "clusterInfo?: unknown;" in types  # JSON
    assert re.search(r"\bany\b", types) is None


def test_program_type_checks_with_tsc_strict(generated: Path) -> None:
    status, output = tsc(CLIENT / "tsconfig.json")
    assert status == 0, output


WRONG = """
import type {{ CanvasQuery, UpdateNodeInput }} from "{gql}/graphql";

type CanvasNode = NonNullable<CanvasQuery["conversation"]>["nodes"]["nodes"][number];

export function wrong(node: CanvasNode): UpdateNodeInput {{
  const width: string = node.canvasWidth;
  return {{ id: node.id, expectedUpdatedAt: node.updatedAt, nodeName: width,
            dialogueType: "multi-party" }};
}}
"""


def test_a_wrong_program_fails_the_check(generated: Path, tmp_path: Path) -> None:
    """The check can fail: the stored lower-case value is no `DialogueType`, and a size is no
    string."""
    (tmp_path / "wrong.ts").write_text(WRONG.format(gql=generated.as_posix()))
    settings = {"extends": (CLIENT / "tsconfig.json").as_posix(), "include": ["wrong.ts"]}
    (tmp_path / "tsconfig.json").write_text(json.dumps(settings))
    status, output = tsc(tmp_path / "tsconfig.json")
    assert status != 0
    assert "wrong.ts(7,9): error TS2322: Type 'number' is not assignable to type 'string'." in (
        output
    ), output
    assert '"multi-party"' in output, output


def test_node_modules_is_checked_against_the_lock(generated: Path, tmp_path: Path) -> None:
    """What decides whether `npm ci` runs again: the installed tree npm recorded, package by
    package, against the committed lock."""
    (tmp_path / "node_modules").mkdir()
    lock = json.loads((CLIENT / "package-lock.json").read_text())
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    installed = json.loads((CLIENT / "node_modules" / ".package-lock.json").read_text())
    recorded = tmp_path / "node_modules" / ".package-lock.json"

    recorded.write_text(json.dumps(installed))
    assert matches_lock(tmp_path)  # the test's own install matches, so it is not redone

    changed = json.loads(json.dumps(installed))
    changed["packages"]["node_modules/typescript"]["version"] = "5.0.0"
    recorded.write_text(json.dumps(changed))
    assert not matches_lock(tmp_path)

    missing = json.loads(json.dumps(installed))
    del missing["packages"]["node_modules/graphql"]
    recorded.write_text(json.dumps(missing))
    assert not matches_lock(tmp_path)
