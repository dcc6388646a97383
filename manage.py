#!/usr/bin/env python3
"""The two commands of lct-graph, runnable with nothing but Python 3.11+:

    python3 manage.py serve   # the GraphQL API on http://127.0.0.1:8000/graphql
    python3 manage.py test    # lint, type-check and every test
    python3 manage.py bench   # the benchmark (see README); --help for its options
    python3 manage.py lock    # regenerates requirements.lock after a change of dependencies

Each but `lock` sets up a virtual environment in .venv on first use (and again whenever
requirements.lock or pyproject.toml changes), then runs inside it. The environment is installed
from `requirements.lock` alone: every package pinned with its hashes (`pip install
--require-hashes`), then lct-graph itself without dependencies. The lock is made from
pyproject.toml by `lock` (uv's resolver, for every platform, Python 3.11+); a lock that does not
match pyproject.toml's dependencies is refused with a message saying so. Only the standard library
is used before the environment exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LCT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".lct-installed"


LOCK = ROOT / "requirements.lock"
# The resolver that writes the lock, in a small environment of its own (not in the lock: it has
# to work when the lock is out of date).
LOCK_TOOL = "uv==0.13.8"
LOCK_TOOL_VENV = ROOT / ".lct" / "lock-tool"
DIGEST_LINE = "# pyproject.toml dependencies digest: "


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _declared() -> dict:
    """What the lock is made from: the dependencies, the extras, the build requirements."""
    project = _pyproject()
    return {
        "requires-python": project["project"].get("requires-python"),
        "dependencies": sorted(project["project"].get("dependencies", [])),
        "optional-dependencies": {
            name: sorted(items)
            for name, items in project["project"].get("optional-dependencies", {}).items()
        },
        "build-system": sorted(project.get("build-system", {}).get("requires", [])),
    }


def _declared_digest() -> str:
    return hashlib.sha256(json.dumps(_declared(), sort_keys=True).encode()).hexdigest()


def _name(requirement: str) -> str:
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else requirement


def _locked_names(text: str) -> set[str]:
    return {_name(line) for line in text.splitlines() if re.match(r"[A-Za-z0-9]", line)}


def check_lock() -> str:
    """The lock's text, or exit with what to do when it is missing or out of date."""
    fix = "run `python3 manage.py lock` and commit requirements.lock"
    if not LOCK.exists():
        sys.exit(f"requirements.lock is missing: {fix}")
    text = LOCK.read_text()
    if DIGEST_LINE + _declared_digest() not in text:
        declared = _declared()
        names = {
            _name(item)
            for items in [
                declared["dependencies"],
                declared["build-system"],
                *declared["optional-dependencies"].values(),
            ]
            for item in items
        }
        missing = sorted(names - _locked_names(text))
        detail = f" (not in the lock: {', '.join(missing)})" if missing else ""
        sys.exit(
            f"requirements.lock does not match the dependencies in pyproject.toml{detail}: {fix}"
        )
    return text


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"lct-graph needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    wanted = {
        "lock": _digest(check_lock().encode()),
        "pyproject": _digest((ROOT / "pyproject.toml").read_bytes()),
    }
    try:
        installed = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        installed = None
    if PYTHON.exists() and installed == wanted:
        return
    if STAMP.exists() and (not isinstance(installed, dict) or installed["lock"] != wanted["lock"]):
        # ours, installed from another lock: start again, so that nothing stale stays
        print(f"requirements.lock changed: rebuilding {VENV} ...", flush=True)
        shutil.rmtree(VENV)
        installed = None
    quiet = ["--quiet"] if os.environ.get("CI") or not sys.stdout.isatty() else []
    pip = [str(PYTHON), "-m", "pip", "install", *quiet, "--disable-pip-version-check"]
    if not PYTHON.exists() or installed is None:
        print(f"setting up a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        print("installing the dependencies from requirements.lock ...", flush=True)
        subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True, cwd=ROOT)
    print("installing lct-graph ...", flush=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", "."], check=True, cwd=ROOT)
    STAMP.write_text(json.dumps(wanted))


def lock(arguments: list[str]) -> int:
    """Writes requirements.lock from pyproject.toml (extra arguments go to `uv pip compile`,
    e.g. `--upgrade-package strawberry-graphql`)."""
    tool = LOCK_TOOL_VENV / ("Scripts" if os.name == "nt" else "bin")
    uv = tool / ("uv.exe" if os.name == "nt" else "uv")
    if not uv.exists() or not (LOCK_TOOL_VENV / LOCK_TOOL).exists():
        shutil.rmtree(LOCK_TOOL_VENV, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(LOCK_TOOL_VENV)
        python = tool / ("python.exe" if os.name == "nt" else "python")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                LOCK_TOOL,
            ],
            check=True,
        )
        (LOCK_TOOL_VENV / LOCK_TOOL).touch()
    declared = _declared()
    with tempfile.TemporaryDirectory() as temporary:
        build = Path(temporary) / "build-requirements.in"
        build.write_text("\n".join(declared["build-system"]) + "\n")
        extras = [f"--extra={name}" for name in declared["optional-dependencies"]]
        command = [
            str(uv), "pip", "compile", "pyproject.toml", str(build), *extras,
            "--generate-hashes", "--universal", "--python-version=3.11",
            "--custom-compile-command=python3 manage.py lock",
            "--no-header", "--quiet", f"--output-file={temporary}/requirements.lock",
            *arguments,
        ]  # fmt: skip
        # the current lock's pins are kept unless pyproject.toml needs others (as pip-compile does)
        if LOCK.exists():
            shutil.copy(LOCK, Path(temporary) / "requirements.lock")
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            return 1
        body = (Path(temporary) / "requirements.lock").read_text()
    body = body.replace(str(build), "build-system.requires")
    body = "\n".join(line for line in body.splitlines() if not line.startswith(DIGEST_LINE))
    header = (
        "# Every package lct-graph installs, pinned with its hashes: made from pyproject.toml by\n"
        "#    python3 manage.py lock\n"
        "# Do not edit; change pyproject.toml and run that command again.\n"
        f"{DIGEST_LINE}{_declared_digest()}\n"
    )
    LOCK.write_text(header + body.lstrip("\n") + "\n")
    print(f"wrote {LOCK.name}")
    return 0


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
    commands = {"serve": serve, "test": test, "bench": bench, "lock": lock}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    if sys.argv[1] != "lock":
        ensure_environment()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
