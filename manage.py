#!/usr/bin/env python3
"""The two commands of lct-graph, runnable with nothing but Python 3.11+:

    python3 manage.py serve   # the GraphQL API on http://127.0.0.1:8000/graphql
    python3 manage.py test    # lint, type-check and every test
    python3 manage.py bench   # the benchmark (see README); --help for its options

Either sets up a virtual environment in .venv on first use (and again whenever pyproject.toml
changes), then runs inside it. Only the standard library is used before that point.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LCT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".lct-installed"


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"lct-graph needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    digest = _requirements_digest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PYTHON.exists():
        print(f"setting up a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing lct-graph and its dependencies ...", flush=True)
    quiet = ["--quiet"] if os.environ.get("CI") or not sys.stdout.isatty() else []
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True, cwd=ROOT
    )
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", *quiet, "-e", ".[dev]"], check=True, cwd=ROOT
    )
    STAMP.write_text(digest)


def run(*command: str) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


def serve(arguments: list[str]) -> int:
    return run(str(PYTHON), "-m", "graph.serve", *arguments)


def bench(arguments: list[str]) -> int:
    return run(str(PYTHON), "-m", "bench", *arguments)


def test(arguments: list[str]) -> int:
    checks = [
        (str(BIN / "ruff"), "check", "."),
        (str(BIN / "ruff"), "format", "--check", "."),
        (str(BIN / "mypy"),),
    ]
    for check in checks:
        print("$", " ".join(Path(check[0]).name if i == 0 else p for i, p in enumerate(check)))
        if run(*check) != 0:
            return 1
    return run(str(PYTHON), "-m", "pytest", *arguments)


def main() -> int:
    commands = {"serve": serve, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    ensure_environment()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
