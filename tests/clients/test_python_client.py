"""The Python client README recommends, generated, type-checked and run against the live server.

ariadne-codegen (pinned in `clients/python/requirements-codegen.txt`, installed by the test into a
virtual environment of its own, since it pins an older graphql-core than the server's) generates
`lct_client` from the committed `schema.graphql` and `clients/python/queries.graphql` with the
config in `clients/python/pyproject.toml`. mypy --strict checks the package and
`clients/python/example.py`, which the live test then runs: a conversation and nodes created with
enum and typed inputs, the canvas read page by page, a node's values sent back as read, and the
result union's typed errors (a stale version, an invalid value).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
REQUIREMENTS = CLIENT / "requirements-codegen.txt"
TOOL_VENV = CLIENT / ".codegen-venv"
TOOL_BIN = TOOL_VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = TOOL_VENV / ".lct-installed"


def codegen_installed() -> Path:
    """ariadne-codegen in its own virtual environment, installed again only when the pinned
    requirements change."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == digest):
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOL_VENV)
        subprocess.run(
            [str(TOOL_BIN / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
            check=True,
            timeout=600,
        )
        STAMP.write_text(digest)
    return TOOL_BIN / "ariadne-codegen"


def mypy(*targets: str | Path, cwd: Path = CLIENT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CLIENT / "pyproject.toml"), *targets],
        cwd=cwd,
        env={**os.environ, "MYPYPATH": str(CLIENT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def generated() -> Iterator[ModuleType]:
    tool = codegen_installed()
    result = subprocess.run(
        [str(tool), "--config", "pyproject.toml"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(CLIENT))
    try:
        import example

        yield example
    finally:
        sys.path.remove(str(CLIENT))
        generated_modules = ("lct_client", "example")
        for name in [name for name in sys.modules if name.split(".")[0] in generated_modules]:
            del sys.modules[name]


def test_client_and_program_type_check_with_mypy_strict(generated: ModuleType) -> None:
    result = mypy("example.py", "lct_client")
    assert result.returncode == 0, result.stdout + result.stderr


WRONG = """
from lct_client.input_types import UpdateNodeInput

change = UpdateNodeInput(id="x", expected_updated_at=None, dialogue_type="multi-party")
"""


def test_a_wrong_program_fails_the_check(generated: ModuleType, tmp_path: Path) -> None:
    """The check can fail: `expectedUpdatedAt` is required, and the stored lower-case text is no
    `DialogueType`."""
    (tmp_path / "wrong.py").write_text(WRONG)
    result = mypy(tmp_path / "wrong.py", cwd=tmp_path)
    assert result.returncode != 0
    assert 'Argument "expected_updated_at" to "UpdateNodeInput" has incompatible type "None"' in (
        result.stdout
    ), result.stdout
    assert 'Argument "dialogue_type" to "UpdateNodeInput" has incompatible type' in (
        result.stdout
    ), result.stdout


async def test_client_against_the_live_server(generated: ModuleType, live_server: str) -> None:
    example = generated
    from lct_client.client import LctClient
    from lct_client.enums import DialogueType, ErrorCode
    from lct_client.update_node import (
        UpdateNodeUpdateNodeConflictError,
        UpdateNodeUpdateNodeValidationError,
    )

    async with LctClient(url=f"{live_server}/graphql") as client:
        conversation_id = await example.create_conversation(client, "Generated client")
        chunk = uuid.uuid4()
        created = [
            await example.create_node(client, conversation_id, f"node {index}", chunk)
            for index in range(5)
        ]

        nodes, pages = await example.canvas_nodes(client, conversation_id, page_size=2)
        assert pages == 3
        assert sorted(node.id for node in nodes) == sorted(created)
        first = nodes[0]
        assert first.chunk_ids == [chunk]
        assert first.dialogue_type is DialogueType.MULTI_PARTY
        assert (first.level, first.is_bookmark, first.canvas_width) == (1, False, 350)

        renamed = example.echo(first).model_copy(update={"node_name": "renamed"})
        assert (await example.update_node(client, renamed)).startswith("saved renamed at ")

        # The same version again is stale now: a typed ConflictError, nothing written.
        stale = (await client.update_node(example.echo(first))).update_node
        assert isinstance(stale, UpdateNodeUpdateNodeConflictError)
        assert stale.code is ErrorCode.STALE and stale.current_updated_at is not None
        assert stale.current_updated_at > first.updated_at

        refetched = (await client.refetch_node(first.id)).node
        assert refetched is not None and refetched.typename__ == "ThreadNode"
        assert refetched.node_name == "renamed"  # type: ignore[union-attr]

        emptied = example.echo(first).model_copy(
            update={"node_name": "", "expected_updated_at": stale.current_updated_at}
        )
        invalid = (await client.update_node(emptied)).update_node
        assert isinstance(invalid, UpdateNodeUpdateNodeValidationError)
        assert (invalid.field, invalid.code) == ("nodeName", ErrorCode.REQUIRED)
        assert await example.update_node(client, emptied) == "invalid nodeName: REQUIRED"
