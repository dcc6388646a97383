"""Every package the code imports is a declared dependency: the runtime code's among the project's
dependencies, the tests' among those or the `dev` extra. A package that only arrives as somebody
else's dependency can disappear with that package's next release."""

from __future__ import annotations

import ast
import re
import shutil
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

from db.settings import PROJECT_ROOT

RUNTIME = ("db", "graph", "alembic")  # bench runs in the development environment
# ours, and the Python client the tests generate and run from clients/python
FIRST_PARTY = {"db", "graph", "bench", "tests", "manage", "example", "lct_client"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {normalise(re.split(r"[\s\[<>=!~;]", item, maxsplit=1)[0]) for item in requirements}

    runtime = names(project["dependencies"])
    return runtime, runtime | names(project["optional-dependencies"]["dev"])


def imported(paths: list[Path]) -> dict[str, Path]:
    """Top-level module name -> a file that imports it (absolute imports only)."""
    found: dict[str, Path] = {}
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], path)
    return found


def undeclared(paths: list[Path], allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, path in sorted(imported(paths).items()):
        if module in FIRST_PARTY or module in sys.stdlib_module_names or module == "__future__":
            continue
        providers = {normalise(name) for name in distributions.get(module, [])}
        if not providers:
            problems.append(
                f"{module} (imported by {path.relative_to(PROJECT_ROOT)}) comes from no package"
            )
        elif not providers & allowed:
            problems.append(
                f"{module} (imported by {path.relative_to(PROJECT_ROOT)}) comes from"
                f" {', '.join(sorted(providers))}, which pyproject.toml does not declare"
            )
    return problems


def python_files(*tops: str) -> list[Path]:
    return [path for top in tops for path in sorted((PROJECT_ROOT / top).rglob("*.py"))]


def test_runtime_imports_are_dependencies() -> None:
    runtime, _ = declared()
    assert undeclared(python_files(*RUNTIME), runtime) == []


def test_test_imports_are_dependencies() -> None:
    _, development = declared()
    files = [*python_files("tests", "bench"), PROJECT_ROOT / "manage.py"]
    assert undeclared(files, development) == []


def test_the_lock_matches_pyproject() -> None:
    import manage

    assert manage.DIGEST_LINE in manage.check_lock()


def test_a_lock_that_does_not_match_is_refused(tmp_path: Path, monkeypatch: Any) -> None:
    import manage

    shutil.copy(PROJECT_ROOT / "requirements.lock", tmp_path / "requirements.lock")
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    added = pyproject.replace(
        "dependencies = [\n", 'dependencies = [\n    "not-in-the-lock>=1",\n', 1
    )
    assert added != pyproject
    (tmp_path / "pyproject.toml").write_text(added)
    monkeypatch.setattr(manage, "ROOT", tmp_path)
    monkeypatch.setattr(manage, "LOCK", tmp_path / "requirements.lock")
    with pytest.raises(SystemExit) as refused:
        manage.check_lock()
    message = str(refused.value)
    assert "not-in-the-lock" in message and "python3 manage.py lock" in message
