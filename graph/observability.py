"""What operators see of a running server: probes, Prometheus metrics, traces and logs.

- `GET /health` answers while the process serves HTTP; `GET /ready` answers 200 only while the
  database answers and is at the Alembic head this code was written for (computed once at
  start-up), 503 with the reason otherwise.
- `GET /metrics` serves the metrics declared below in Prometheus' text format. Each process keeps
  its own figures; `graph.serve --workers N` sets `PROMETHEUS_MULTIPROC_DIR` so that every
  process writes them to files there and any of them serves the sum (prometheus-client's
  multiprocess mode). Operation names come from clients, so they are bounded (`OperationNames`).
- OpenTelemetry traces are on when the standard `OTEL_*` variables ask for an exporter: one span
  per GraphQL operation and one per SQL statement. When they do not, nothing of OpenTelemetry is
  imported and no SQL event is listened to.
- Every request has an id (`X-Request-ID`, validated, or a new one), returned in the response and
  attached to every log line written while serving it; `LCT_LOG_FORMAT=json` writes JSON lines.
  Operations slower than `LCT_SLOW_OPERATION_MS` are logged with their name and time.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import logging.config
import os
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import orjson
import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from db.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

logger = logging.getLogger("lct.operations")

# -- Metrics: adding one is one line here, and `.inc()` / `.observe()` where it happens ---------

# Seconds; a GraphQL operation of this API takes milliseconds to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STATEMENT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)

HTTP_REQUESTS = Counter(
    "lct_http_requests", "HTTP requests by route and status.", ["route", "status"]
)
HTTP_DURATION = Histogram(
    "lct_http_request_duration_seconds",
    "HTTP request time, until the response is sent.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
OPERATIONS = Counter(
    "lct_graphql_operations",
    "GraphQL operations by name and outcome (ok, error, refused).",
    ["operation", "outcome"],
)
OPERATION_DURATION = Histogram(
    "lct_graphql_operation_duration_seconds",
    "GraphQL operation time: parse, validate, execute.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
OPERATION_STATEMENTS = Histogram(
    "lct_graphql_operation_sql_statements",
    "SQL statements per GraphQL operation.",
    ["operation"],
    buckets=STATEMENT_BUCKETS,
)
RENDERED_LISTS = Counter(
    "lct_rendered_lists", "Lists PostgreSQL rendered as JSON (graph/rendering.py)."
)
REFUSED = Counter(
    "lct_graphql_refused",
    "Operations refused by a query limit, by the limit's error code.",
    ["limit"],
)
MASKED_ERRORS = Counter(
    "lct_graphql_masked_errors",
    "Unexpected errors answered as INTERNAL_SERVER_ERROR with an error id.",
)
POOL_IN_USE = Gauge(
    "lct_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "lct_db_pool_connections_waiting",
    "Checkouts waiting for a pool connection (or for a new one to open).",
    multiprocess_mode="livesum",
)
POOL_LIMIT = Gauge(
    "lct_db_pool_connections_limit",
    "Connections the pool may open: pool size plus overflow.",
    multiprocess_mode="livesum",
)

# Seconds; the event loop's heartbeat wakes every 15 ms, a stall over 0.1 s is felt by clients.
STALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
EVENT_LOOP_STALL = Histogram(
    "lct_event_loop_stall_seconds",
    "How late the event loop's heartbeat (every 15 ms) woke: time in which nothing else ran.",
    buckets=STALL_BUCKETS,
)
EVENT_LOOP_WORST_STALL = Gauge(
    "lct_event_loop_worst_stall_seconds",
    "The event loop's worst stall in the last minute (graph/heartbeat.py).",
    multiprocess_mode="livemax",
)
GC_PAUSE = Histogram(
    "lct_gc_pause_seconds",
    "Garbage collections by generation, and how long each held the process.",
    ["generation"],
    buckets=STALL_BUCKETS,
)
LIVE_CONNECTIONS = Gauge(
    "lct_live_websocket_connections",
    "Open graphql-transport-ws connections.",
    multiprocess_mode="livesum",
)
LIVE_SUBSCRIPTIONS = Gauge(
    "lct_live_subscriptions",
    "Active subscriptions, over WebSocket and SSE.",
    multiprocess_mode="livesum",
)
LIVE_EVENTS = Counter(
    "lct_live_events_delivered", "Subscription events handed to a subscriber's connection."
)
LIVE_SLOW_CONSUMERS = Counter(
    "lct_live_slow_consumers",
    "Subscribers cut off for not reading their events fast enough, by where it was noticed"
    " (websocket: connection closed; sse: stream ended; catch_up: subscription ended).",
    ["transport"],
)

# The routes the HTTP metrics name; any other path counts as "other".
ROUTES = ("/graphql", "/health", "/ready", "/metrics")
ASSETS_ROUTE = "/graphiql-assets"
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def route_of(path: str) -> str:
    if path in ROUTES:
        return path
    return ASSETS_ROUTE if path.startswith(ASSETS_ROUTE + "/") else "other"


def count_refusal(error: GraphQLError) -> None:
    """Called by graph/limits.py for every limit error it reports."""
    REFUSED.labels((error.extensions or {}).get("code", "OTHER")).inc()


def count_masked_error() -> None:
    """Called where an unexpected error is masked (graph/masking.py, graph/http.py)."""
    MASKED_ERRORS.inc()


def count_event_delivered() -> None:
    """Called where a subscription event goes to its subscriber (graph/subscriptions.py)."""
    LIVE_EVENTS.inc()


def count_slow_consumer(transport: str) -> None:
    """Called where a subscriber is cut off for falling behind (graph/live_transport.py,
    graph/subscriptions.py)."""
    LIVE_SLOW_CONSUMERS.labels(transport).inc()


# The processes' subscription hubs (graph/subscriptions.py `Live`), sampled into the gauges.
_live: weakref.WeakSet[Any] = weakref.WeakSet()
SAMPLE_SECONDS = 1.0


def watch_live(live: Any) -> None:
    """Called by `graph.subscriptions.Live` when it opens: its connections and subscriptions
    are sampled into the gauges every `SAMPLE_SECONDS` and at every scrape."""
    _live.add(live)


def sample_live() -> None:
    connections = subscriptions = 0
    for live in list(_live):
        hub = getattr(live, "hub", None)
        if hub is None:
            continue
        connections += hub.connections
        subscriptions += sum(
            len(members)
            for channel in list(hub.channels.values())
            for members in channel.members.values()
        )
    LIVE_CONNECTIONS.set(connections)
    LIVE_SUBSCRIPTIONS.set(subscriptions)


async def _sample_every_second() -> None:
    while True:
        sample_live()
        await asyncio.sleep(SAMPLE_SECONDS)


def metrics_registry() -> CollectorRegistry:
    """This process's registry, or the sum over every process's files in multiprocess mode."""
    if not os.environ.get(MULTIPROCESS_DIRECTORY):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def prepare_multiprocess_metrics(workers: int) -> None:
    """For `serve --workers N` (N > 1), before the workers start: a fresh directory where every
    worker writes its metrics. An operator's `PROMETHEUS_MULTIPROC_DIR` is used and emptied of
    an earlier run's files (prometheus-client requires that); else a temporary one is made."""
    if workers <= 1:
        return
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.unlink(os.path.join(directory, name))
        return
    directory = tempfile.mkdtemp(prefix="lct-metrics-")
    os.environ[MULTIPROCESS_DIRECTORY] = directory
    import atexit

    atexit.register(shutil.rmtree, directory, True)


class OperationNames:
    """Bounds the `operation` label: clients choose the names, and every name is a time series.

    An operation without a name is `anonymous`; a document that did not parse, or whose
    `operationName` names no operation in it, is `invalid`; names are cut to `MAX_LENGTH`; once
    `MAX_NAMES` distinct names are seen by a process, further new ones count as `other`.
    """

    MAX_NAMES = 200
    MAX_LENGTH = 64

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def label(self, execution_context: Any) -> str:
        document = execution_context.graphql_document
        if document is None:
            return "invalid"
        name = execution_context.operation_name
        if name is None:
            return "anonymous"
        if not any(
            isinstance(definition, OperationDefinitionNode)
            and definition.name is not None
            and definition.name.value == name
            for definition in document.definitions
        ):
            return "invalid"
        name = name[: self.MAX_LENGTH]
        if name not in self.seen:
            if len(self.seen) >= self.MAX_NAMES:
                return "other"
            self.seen.add(name)
        return name


OPERATION_NAMES = OperationNames()


def outcome_of(result: Any) -> str:
    """`ok`; `refused` (no data, no error with a path: refused before execution); or `error`."""
    if result is None:
        return "error"
    errors = getattr(result, "errors", None)
    if not errors:
        return "ok"
    if getattr(result, "data", None) is None and all(error.path is None for error in errors):
        return "refused"
    return "error"


# -- GraphQL errors in the log ------------------------------------------------------------------


def log_errors(errors: list[GraphQLError]) -> None:
    """How the schema logs an operation's errors (`LoggingSchema.process_errors`).

    Strawberry logs every error at ERROR with a traceback, the expected ones included: a value
    refused as `BAD_USER_INPUT`, a document refused by a limit or by validation. Those are the
    client's to fix and are answered to it: here they are one DEBUG line each. An unexpected
    error is logged once, by graph/masking.py, which masks it: at ERROR, with the error id the
    client sees, the request id and the traceback."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    for error in errors:
        if error.original_error is None or isinstance(error.original_error, GraphQLError):
            logger.debug(
                "GraphQL error at %s: %s (%s)",
                ".".join(map(str, error.path or ())) or "-",
                error.message,
                (error.extensions or {}).get("code", "-"),
            )


class LoggingSchema(strawberry.Schema):
    """`strawberry.Schema` with this server's error log (`log_errors`)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


# -- SQL statements per operation --------------------------------------------------------------


class StatementCount:
    value: int = 0


# The statement counter of the operation being served (see `count_statements`).
current_count: contextvars.ContextVar[StatementCount | None] = contextvars.ContextVar(
    "lct_statement_count", default=None
)


def count_statements(engine: AsyncEngine) -> None:
    """Counts every SQL statement into the counter of the operation that ran it."""

    def before_cursor_execute(*_: Any) -> None:
        counter = current_count.get()
        if counter is not None:
            counter.value += 1

    event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


# Per pool, the connections checked out of it that wait idle for their next request (the fast
# path's, graph/operations.py): out of the pool, but not in use.
PARKED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def park(engine: AsyncEngine, change: int) -> None:
    """`change` more (or fewer) connections of `engine` parked; the in-use gauge follows (0:
    only brings it up to date)."""
    pool: Any = engine.sync_engine.pool
    PARKED[pool] = PARKED.get(pool, 0) + change
    POOL_IN_USE.set(pool.checkedout() - PARKED[pool])


def instrument_pool(engine: AsyncEngine) -> None:
    """Keeps the pool gauges current: in use after every checkout and checkin (SQLAlchemy fires
    `checkin` just before the connection is back, hence the -1), waiting around every request
    for a connection (`Engine.raw_connection` is where every checkout starts)."""
    sync_engine = engine.sync_engine
    pool: Any = sync_engine.pool
    POOL_LIMIT.set(pool.size() + max(getattr(pool, "_max_overflow", 0), 0))

    def checked_out(*_: Any) -> None:
        pool = sync_engine.pool
        POOL_IN_USE.set(pool.checkedout() - PARKED.get(pool, 0))  # type: ignore[attr-defined]

    def checked_in(*_: Any) -> None:
        pool = sync_engine.pool
        POOL_IN_USE.set(pool.checkedout() - 1 - PARKED.get(pool, 0))  # type: ignore[attr-defined]

    event.listen(sync_engine, "checkout", checked_out)
    event.listen(sync_engine, "checkin", checked_in)
    raw_connection = sync_engine.raw_connection

    def waiting_raw_connection() -> Any:
        POOL_WAITING.inc()
        try:
            return raw_connection()
        finally:
            POOL_WAITING.dec()

    sync_engine.raw_connection = waiting_raw_connection  # type: ignore[method-assign]


# -- Readiness ---------------------------------------------------------------------------------

READY_TIMEOUT_SECONDS = 2.0
UNDEFINED_TABLE = "42P01"


def expected_heads() -> frozenset[str]:
    """The Alembic head(s) of the migrations shipped with this code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.settings import PROJECT_ROOT

    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    return frozenset(script.get_heads())


async def readiness_problem(engine: AsyncEngine, heads: frozenset[str]) -> str | None:
    """Why the server is not ready to serve, or None."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            versions = frozenset(result.scalars().all())
    except TimeoutError:
        return f"the database did not answer within {READY_TIMEOUT_SECONDS:g} s"
    except Exception as error:
        if any(
            getattr(link, "sqlstate", None) == UNDEFINED_TABLE
            for link in (error, getattr(error, "orig", None))
        ):
            return "the database has no alembic_version table: it is not migrated"
        cause = getattr(error, "orig", None) or error
        return f"the database is unreachable ({type(cause).__name__})"
    if versions != heads:
        found = ", ".join(sorted(versions)) or "none"
        return f"the database is at migration {found}; this code expects {', '.join(sorted(heads))}"
    return None


# -- Request ids and logs ----------------------------------------------------------------------

REQUEST_ID_HEADER = "x-request-id"
# Room for a UUID, a ULID or a load balancer's trace id; nothing a log reader would misread.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=/+@-]{1,128}")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lct_request_id", default=None
)


def request_id_from(value: bytes | None) -> str:
    """The client's `X-Request-ID` when it is valid, else a new id."""
    if value is not None:
        candidate = value.decode("latin-1")
        if VALID_REQUEST_ID.fullmatch(candidate):
            return candidate
    return os.urandom(16).hex()


NO_REQUEST = "-"


class RequestIdFilter(logging.Filter):
    """Gives every record `request_id`: the id of the request being served, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get() or NO_REQUEST
        return True


# The LogRecord's own attributes; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", NO_REQUEST)
        if request_id != NO_REQUEST:
            line["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            line.update(zip(_ACCESS_FIELDS, record.args, strict=False))
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's `log_config`: its own text format, or every logger as JSON lines to stderr."""
    if settings.log_format == "text":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            name: {"handlers": [], "level": "INFO", "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"handlers": ["json"], "level": "INFO"},
    }


def setup_logging(settings: Settings) -> None:
    """At start-up: JSON lines when configured; in text mode the application's own loggers get a
    handler showing the request id, unless logging is configured already (by a test harness or
    an embedding program)."""
    if settings.log_format == "json":
        logging.config.dictConfig(log_config(settings))
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)


class RequestMiddleware:
    """Outermost ASGI middleware: the request id (in and out) and the HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (value for name, value in scope["headers"] if name == REQUEST_ID_HEADER.encode()),
            None,
        )
        request_id = request_id_from(given)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = route_of(scope["path"])
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_DURATION.labels(route).observe(time.perf_counter() - started)
            current_request_id.reset(token)


# -- Tracing -----------------------------------------------------------------------------------


def traces_exporter_names(environment: dict[str, str] | None = None) -> list[str]:
    """The trace exporters the standard variables ask for; none means tracing is off.

    `OTEL_TRACES_EXPORTER` names them (`otlp`, `console`, ...; `none` for none); unset, an OTLP
    endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`) means `otlp`.
    `OTEL_SDK_DISABLED=true` switches everything off.
    """
    environment = dict(os.environ) if environment is None else environment
    if environment.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = environment.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = environment.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environment.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    return [name for part in names.split(",") if (name := part.strip()) and name != "none"]


def _exporter(name: str) -> Any:
    """An exporter by its OpenTelemetry entry-point name; `otlp` follows
    `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (default http/protobuf, the one installed)."""
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER asks for {name!r}, which is not installed (installed: otlp"
            " over http/protobuf, console)"
        )
    return next(iter(found)).load()()


class Tracing:
    """An OpenTelemetry tracer provider built from the `OTEL_*` variables, and its two kinds of
    spans. Only built when `traces_exporter_names()` names an exporter."""

    def __init__(self, exporter_names: list[str]) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import propagate, trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        # Resource.create and TracerProvider read OTEL_RESOURCE_ATTRIBUTES, the sampler, limits.
        self.provider = TracerProvider(
            resource=Resource.create({} if named else {"service.name": "lct-graph"})
        )
        for name in exporter_names:
            # BatchSpanProcessor reads OTEL_BSP_*; export happens on its own thread.
            self.provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        self.tracer: Tracer = self.provider.get_tracer("lct-graph")
        self.trace = trace
        self.context = otel_context
        self.propagate = propagate

    def start_operation(self, request: Any) -> tuple[Span, object]:
        """The operation's span, a child of the caller's `traceparent` if it sent one; current
        until `end_operation`, so that the statements' spans are its children."""
        headers = getattr(request, "headers", None)
        parent = self.propagate.extract(headers) if headers is not None else None
        span = self.tracer.start_span(
            "GraphQL operation", context=parent, kind=self.trace.SpanKind.SERVER
        )
        token = self.context.attach(self.trace.set_span_in_context(span, parent))
        return span, token

    def end_operation(
        self, span: Span, token: object, execution_context: Any, label: str, outcome: str
    ) -> None:
        self.context.detach(token)  # type: ignore[arg-type]
        try:
            operation_type = execution_context.operation_type.value
        except Exception:  # no document, or no such operation
            operation_type = None
        span.update_name(f"{operation_type} {label}" if operation_type else label)
        span.set_attribute("graphql.operation.name", label)
        if operation_type:
            span.set_attribute("graphql.operation.type", operation_type)
        span.set_attribute("lct.outcome", outcome)
        if outcome != "ok":
            span.set_status(self.trace.StatusCode.ERROR)
        span.end()

    def instrument(self, engine: AsyncEngine) -> None:
        """A span per SQL statement run inside a traced operation (a readiness probe's is not)."""
        url = engine.url
        attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.namespace": url.database or "",
            "server.address": url.host or "",
            "server.port": url.port or 5432,
        }
        trace, tracer, kind = self.trace, self.tracer, self.trace.SpanKind.CLIENT

        def before(_: Any, __: Any, statement: str, ___: Any, context: Any, ____: bool) -> None:
            if not trace.get_current_span().is_recording():
                return
            operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            context._lct_span = tracer.start_span(
                f"{operation} {attributes['db.namespace']}".strip(),
                kind=kind,
                attributes={
                    **attributes,
                    "db.operation.name": operation,
                    "db.query.text": statement,
                },
            )

        def after(*arguments: Any) -> None:
            span = getattr(arguments[4], "_lct_span", None)
            if span is not None:
                span.end()

        def failed(exception_context: Any) -> None:
            span = getattr(exception_context.execution_context, "_lct_span", None)
            if span is not None:
                span.record_exception(exception_context.original_exception)
                span.set_status(trace.StatusCode.ERROR)
                span.end()

        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", before)
        event.listen(sync_engine, "after_cursor_execute", after)
        event.listen(sync_engine, "handle_error", failed)

    def shutdown(self) -> None:
        """Exports what is buffered; called when the server stops."""
        self.provider.shutdown()


# -- The application's parts -------------------------------------------------------------------


@dataclass(eq=False)
class Observability:
    """One per app: started by the lifespan with the engine, used by the routes, the middleware
    and the schema extension."""

    settings: Settings
    engine: AsyncEngine | None = None
    heads: frozenset[str] = frozenset()
    tracing: Tracing | None = None
    sampler: asyncio.Task[None] | None = None

    def start(self, engine: AsyncEngine) -> None:
        setup_logging(self.settings)
        self.engine = engine
        self.sampler = asyncio.get_running_loop().create_task(_sample_every_second())
        self.heads = expected_heads()
        count_statements(engine)
        instrument_pool(engine)
        exporters = traces_exporter_names()
        if exporters:
            self.tracing = Tracing(exporters)
            self.tracing.instrument(engine)

    def stop(self) -> None:
        self.engine = None
        if self.sampler is not None:
            self.sampler.cancel()
            self.sampler = None
        if self.tracing is not None:
            self.tracing.shutdown()
            self.tracing = None

    def extension(self) -> SchemaExtension:
        """A factory for `strawberry.Schema(extensions=...)`: one extension per operation."""
        return OperationObserver(self)

    async def ready(self, _: Request) -> Response:
        if self.engine is None:
            problem: str | None = "the server is starting or stopping"
        else:
            problem = await readiness_problem(self.engine, self.heads)
        if problem is not None:
            return JSONResponse({"ready": False, "reason": problem}, status_code=503)
        return JSONResponse({"ready": True, "migration": ", ".join(sorted(self.heads))})

    async def metrics(self, request: Request) -> Response:
        sample_live()
        if self.engine is not None:
            park(self.engine, 0)  # this process's figure as it is now, whatever event set it last
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics_registry()), headers={"Content-Type": content_type})

    def operation_done(
        self, name: str, label: str, outcome: str, seconds: float, statements: int
    ) -> None:
        """Records an operation served: its metrics, and a log line when it was slow."""
        OPERATIONS.labels(label, outcome).inc()
        OPERATION_DURATION.labels(label).observe(seconds)
        OPERATION_STATEMENTS.labels(label).observe(statements)
        slow_ms = self.settings.slow_operation_ms
        if slow_ms and seconds * 1000 >= slow_ms:
            milliseconds = round(seconds * 1000, 1)
            logger.warning(
                "slow operation %s: %s ms, %d SQL statements, %s",
                name,
                milliseconds,
                statements,
                outcome,
                extra={
                    "operation": name,
                    "duration_ms": milliseconds,
                    "sql_statements": statements,
                    "outcome": outcome,
                },
            )

    def rendered(self, context: Any) -> None:
        """The request is done: count the lists PostgreSQL rendered for it."""
        lists = getattr(context, "rendered_lists", 0)
        if lists:
            RENDERED_LISTS.inc(lists)


class OperationObserver(SchemaExtension):
    """Per GraphQL operation: counts its SQL statements, records its metrics, logs it when slow
    and, with tracing on, wraps it in a span."""

    def __init__(self, observability: Observability) -> None:
        self.observability = observability

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        counter = StatementCount()
        current_count.set(counter)
        tracing = self.observability.tracing
        traced = None
        if tracing is not None:
            request = getattr(self.execution_context.context, "request", None)
            traced = tracing.start_operation(request)
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            context = self.execution_context
            label = OPERATION_NAMES.label(context)
            outcome = outcome_of(context.result)
            if tracing is not None and traced is not None:
                tracing.end_operation(*traced, context, label, outcome)
            # past the label cap the log still names it (a name from the parsed document)
            name = label if label != "other" else str(context.operation_name)[:200]
            self.observability.operation_done(name, label, outcome, seconds, counter.value)
