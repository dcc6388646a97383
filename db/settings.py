"""Settings, read from the environment and from a `.env` file in the working directory.

`DATABASE_URL` keeps the plain name the migration guide uses; every other setting carries the
`LCT_` prefix.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from db.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LCT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "LCT_DATABASE_URL")
    )
    embedded_data_dir: Path = Field(
        default=PROJECT_ROOT / ".lct" / "pgdata",
        description="Where the embedded PostgreSQL keeps its data when DATABASE_URL is unset.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    statement_timeout_ms: int = Field(default=15000, ge=0)
    pool_size: int = Field(default=10, ge=1)
    transaction_pooling: bool = Field(
        default=False,
        description="DATABASE_URL is a pooler in transaction mode (PgBouncer): session settings"
        " are applied per transaction and prepared statements are not kept (db/session.py).",
    )
    demo: bool = Field(default=True, description="Load the demo conversation on start-up.")
    debug_sql_count: bool = Field(
        default=False,
        description="Report each operation's SQL statement count in `extensions.sqlStatements`.",
    )
    render_in_database: bool = Field(
        default=True,
        description="Let PostgreSQL render list items as JSON when it can (graph/rendering.py).",
    )
    compile_operations: bool = Field(
        default=True,
        description="Answer a query asked again by the one statement compiled from its first"
        " answer, when everything it selects renders (graph/operations.py).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json`: log JSON lines (graph/observability.py)."
    )
    slow_operation_ms: int = Field(
        default=1000, ge=0, description="Log operations slower than this (0: none)."
    )
    render_budget_rows: int = Field(
        default=20_000,
        ge=1,
        description="Rendered list items a server process holds at once; requests beyond wait.",
    )

    search_config: str = Field(
        default="english",
        description="The PostgreSQL text-search configuration of full-text search (db/search.py).",
    )

    # Authentication (graph/auth.py). None of the three key settings: local development mode.
    jwt_secret: str | None = Field(default=None, description="HS256 shared secret.")
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key (RS256 / ES256), or a path to a PEM file."
    )
    jwks_file: Path | None = Field(default=None, description="A JWKS (JSON Web Key Set) file.")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Accepted `alg` values; derived from the key kind when unset."
    )
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    admin_claim: str = Field(
        default="lct_admin",
        description="The JWT claim that, when `true`, marks an administrator's token.",
    )
    dev_user_id: str = Field(
        default="local-developer",
        description="The one user of local development mode (no authentication configured).",
    )

    # Query limits (graph/limits.py), each refused before any SQL runs.
    max_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=0)
    max_query_bytes: int = Field(default=20_000, ge=100)
    max_tokens: int = Field(default=2_000, ge=10)
    max_operations: int = Field(default=10, ge=1)
    max_nodes: int = Field(default=500_000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)

    # Persisted operations and trusted documents (graph/persisted.py).
    persisted_documents_file: Path | None = Field(
        default=None,
        description="graphql-codegen's persisted-documents.json (hash -> document).",
    )
    trusted_documents_only: bool = Field(
        default=False,
        description="Run only the documents of LCT_PERSISTED_DOCUMENTS_FILE; refuse all others.",
    )
    trusted_documents_admin_bypass: bool = Field(
        default=False,
        description="With LCT_TRUSTED_DOCUMENTS_ONLY, tokens with the admin claim (and GraphiQL"
        " used with such a token) may still run any operation.",
    )
    persisted_queries_cache_bytes: int = Field(
        default=2_000_000,
        ge=0,
        description="Room for documents registered by automatic persisted queries (0: none).",
    )
    persisted_queries_max_age: int = Field(
        default=60,
        ge=0,
        description="Cache-Control max-age (seconds) of a GET query sent by its hash.",
    )

    # HTTP hardening (graph/http.py).
    introspection: bool = True
    graphiql: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Subscriptions and the change feed (graph/live.py, graph/live_transport.py).
    live_retention_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long changes stay in the feed for subscribers resuming with `since`.",
    )
    live_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each process reads the feed's heads besides LISTEN/NOTIFY.",
    )
    live_max_connections: int = Field(default=10_000, ge=1)
    live_max_subscriptions: int = Field(default=100, ge=1, description="Per connection.")
    live_init_timeout_seconds: float = Field(default=10.0, gt=0)
    live_max_message_bytes: int = Field(default=65_536, ge=1_000)
    live_queue_size: int = Field(
        default=256, ge=1, description="Messages queued per connection before it is closed."
    )
    live_websocket_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate on WebSockets: a zlib stream each way per"
        " connection costs some 40 KB of memory per idle subscriber, and CPU for every message.",
    )

    @field_validator("jwt_algorithms", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`RS256,ES256` in the environment; a JSON list is accepted too."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("search_config")
    @classmethod
    def _configuration_name(cls, value: str) -> str:
        from db.search import CONFIG_NAME

        if not CONFIG_NAME.match(value):
            raise ValueError("a text-search configuration name such as `english` or `simple`")
        return value

    @property
    def auth_configured(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks_file)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# libpq's URL parameters that asyncpg's own URL parser implements: they stay in the URL.
PASSED_THROUGH_PARAMETERS = (
    "host",
    "port",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "target_session_attrs",
    "passfile",
    "krbsrvname",
    "gsslib",
)
# libpq's URL parameters that asyncpg takes as keyword arguments instead (see connect_arguments).
TRANSLATED_PARAMETERS = ("application_name", "options", "connect_timeout")
SUPPORTED_PARAMETERS = tuple(sorted(PASSED_THROUGH_PARAMETERS + TRANSLATED_PARAMETERS))

PARAMETER_VALUES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "target_session_attrs": (
        "any",
        "primary",
        "standby",
        "prefer-standby",
        "read-write",
        "read-only",
    ),
    "ssl_min_protocol_version": ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
    "ssl_max_protocol_version": ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
    "gsslib": ("gssapi", "sspi"),
}


def _parameters(url: URL) -> dict[str, str]:
    """The URL's query parameters, each checked: a supported name, given once, a valid value."""
    parameters = {}
    for name, value in url.query.items():
        if name not in SUPPORTED_PARAMETERS:
            raise ConfigurationError(
                f"DATABASE_URL has an unsupported parameter {name!r}: the supported ones are "
                + ", ".join(SUPPORTED_PARAMETERS)
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"DATABASE_URL gives the parameter {name!r} more than once")
        allowed = PARAMETER_VALUES.get(name)
        if allowed is not None and value not in allowed:
            raise ConfigurationError(
                f"DATABASE_URL has {name}={value!r}: expected one of " + ", ".join(allowed)
            )
        parameters[name] = value
    if "connect_timeout" in parameters:
        timeout = parameters["connect_timeout"]
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = 0.0
        if not 0 < seconds < float("inf"):
            raise ConfigurationError(
                f"DATABASE_URL has connect_timeout={timeout!r}: expected seconds, more than 0"
            )
    return parameters


def to_async_url(raw: str) -> URL:
    """Turns the user's `postgresql://user:pass@host:port/db` into an asyncpg URL.

    The driver is this code's business, so any `postgres://` or `postgresql+driver://` form is
    accepted and rewritten. Query parameters are libpq's (`?sslmode=require`) and stay in the URL
    as written; only those asyncpg can honour are accepted (`SUPPORTED_PARAMETERS`), and
    `connect_arguments` turns them into what asyncpg takes.
    """
    if not raw.strip():
        raise ConfigurationError(
            "DATABASE_URL is set but empty: unset it to use the embedded PostgreSQL, or give "
            "postgresql://user:password@host:port/dbname"
        )
    try:
        url = make_url(raw.strip())
        port = url.port
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(
            "DATABASE_URL is malformed: expected postgresql://user:password@host:port/dbname"
        ) from None
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"DATABASE_URL has an impossible port {port}: expected 1-65535")
    backend = url.get_backend_name()
    if backend not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"DATABASE_URL must point at PostgreSQL (postgresql://...), not {backend!r}"
        )
    if not url.database:
        raise ConfigurationError("DATABASE_URL names no database: add /dbname at the end")
    _parameters(url)
    return url.set(drivername="postgresql+asyncpg")


def connect_arguments(url: URL) -> dict[str, Any]:
    """`asyncpg.connect()` keyword arguments that reach a URL from `to_async_url`, parameters
    and all.

    asyncpg reads libpq's SSL and session parameters from a connection URL itself (`dsn`), the
    way libpq does. Three it does not know: `application_name` and `options` become
    `server_settings` (sent at start-up, as libpq sends them) and `connect_timeout` becomes
    `timeout`. SQLAlchemy would instead hand every URL parameter to asyncpg as a keyword argument,
    so an engine gets these as `connect_args` and the URL without its query.
    """
    query = _parameters(url)
    arguments: dict[str, Any] = {}
    server_settings = {
        name: query.pop(name) for name in ("application_name", "options") if name in query
    }
    if server_settings:
        arguments["server_settings"] = server_settings
    if "connect_timeout" in query:
        arguments["timeout"] = float(query.pop("connect_timeout"))
    dsn = url.set(drivername="postgresql", query=query)
    arguments["dsn"] = dsn.render_as_string(hide_password=False)
    return arguments


def resolve_database_url(settings: Settings | None = None) -> URL:
    """The asyncpg URL of the configured server, starting the embedded one when none is set."""
    settings = settings or get_settings()
    if settings.database_url is not None:
        return to_async_url(settings.database_url)
    from db.embedded import embedded_url

    return to_async_url(embedded_url(settings.embedded_data_dir))
