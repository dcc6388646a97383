"""The write services are a domain that knows no GraphQL: none of them loads strawberry or
graphql-core, directly or through what it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "graph" / "services"
API_PACKAGES = ("strawberry", "graphql")
# Still importing graph.errors' aliases until the coordinator switches them (another helper is
# splitting transfer.py); they are checked for direct imports only.

# Run in a fresh interpreter: the test process has loaded strawberry long ago.
PROBE = """
import importlib, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            raise ImportError(f"{{name}} imported by the domain")
        return None
sys.meta_path.insert(0, Refuse())
for module in {modules!r}:
    importlib.import_module(module)
"""


def service_modules() -> list[str]:
    """The modules under graph/services/, packages' modules included, as dotted names."""
    names = []
    for path in SERVICES.rglob("*.py"):
        parts = path.relative_to(SERVICES).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(name for name in names if name)


def test_no_service_module_imports_an_api_package_itself() -> None:
    offenders = []
    for name in service_modules():
        path = SERVICES / f"{name.replace('.', '/')}.py"
        if not path.exists():
            path = SERVICES / name.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            offenders += [(name, item) for item in imported if item.split(".")[0] in API_PACKAGES]
    assert offenders == []


def test_service_modules_load_without_strawberry_or_graphql() -> None:
    modules = [f"graph.services.{name}" for name in service_modules()]
    assert "graph.services.nodes" in modules
    probe = PROBE.format(packages=API_PACKAGES, modules=modules)
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=SERVICES.parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
