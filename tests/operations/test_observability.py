"""What operators see: /health and /ready, /metrics figures, request ids, JSON logs, traces.

The figures and logs are read from `python -m graph.serve` running as a subprocess (a process of
its own, so its metrics count only what these tests sent); the probes and request ids from the
in-process test server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from graph.observability import OperationNames, request_id_from, traces_exporter_names
from tests.conftest import (
    DatabaseFactory,
    LiveServer,
    alembic_config,
    asyncpg_dsn,
    free_port,
    plain_url,
    server_settings,
)

VIEWER = "local-developer"  # the development-mode user (Settings.dev_user_id)

CANVAS = """
query Canvas($id: ID!) {
  conversation(id: $id) {
    __typename id
    nodes(first: 100) { totalCount nodes { __typename id nodeName level outgoing { id } } }
  }
}
"""
ANONYMOUS = "{ conversations(first: 5) { __typename totalCount } }"
# Nine levels deep; the server under test allows six.
DEEP = """
query Deep($id: ID!) {
  conversation(id: $id) {
    __typename
    rootNodes { children { children { children { children { children { children {
      id
    } } } } } } }
  }
}
"""
BOOM = """
mutation Boom($input: CreateConversationInput!) {
  createConversation(input: $input) {
    __typename
    ... on ConversationPayload { conversation { id } }
    ... on UserError { message code }
  }
}
"""
# A trigger the test adds: inserting a conversation named 'boom' fails inside PostgreSQL, which
# the server can only answer with a masked INTERNAL_SERVER_ERROR.
BOOM_TRIGGER = """
CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.conversation_name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_boom BEFORE INSERT ON conversations
  FOR EACH ROW EXECUTE FUNCTION refuse_boom();
"""
BOOM_INPUT = {"conversationName": "boom", "conversationType": "CHAT", "sourceType": "manual"}


# -- A served subprocess -------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    async def post(
        self, document: str, headers: dict[str, str] | None = None, **variables: Any
    ) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            return await client.post(
                "/graphql", json={"query": document, "variables": variables}, headers=headers
            )

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return samples(response.text)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(figures: dict[Any, float], name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


async def serve(database: URL, *arguments: str, **environment: str) -> Served:
    port = free_port()
    variables = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("LCT_", "OTEL_", "PROMETHEUS_"))
        },
        "DATABASE_URL": plain_url(database),
        "LCT_DEBUG_SQL_COUNT": "1",
        **environment,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graph.serve",
            "--port",
            str(port),
            "--no-demo",
            "--no-migrate",
            *arguments,
        ],
        cwd=tempfile.gettempdir(),  # no .env there
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", process)
    for stream, lines in ((process.stdout, served.stdout), (process.stderr, served.stderr)):
        assert stream is not None
        threading.Thread(target=lines.extend, args=(stream,), daemon=True).start()
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=served.base, timeout=5) as client:
        while True:
            if process.poll() is not None:
                time.sleep(0.5)
                pytest.fail(f"serve exited:\n{''.join(served.stdout + served.stderr)}")
            try:
                if (await client.get("/health")).status_code == 200:
                    return served
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                served.stop()
                pytest.fail(f"no answer within 120 s:\n{''.join(served.stderr)}")
            await asyncio.sleep(0.2)


@dataclass
class Data:
    database: URL
    conversation: uuid.UUID


@pytest.fixture(scope="module")
async def data(database_factory: DatabaseFactory) -> Data:
    database = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(database), "head")
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        conversation = await generate_conversation(
            connection, nodes=30, seed=14, owner_id=VIEWER, name="Observed"
        )
        await connection.execute(BOOM_TRIGGER)
    finally:
        await connection.close()
    return Data(database, conversation)


@dataclass
class Session:
    """What the module's server was sent, and what it answered."""

    served: Served
    canvas: list[dict[str, Any]]
    anonymous: dict[str, Any]
    deep: dict[str, Any]
    boom: dict[str, Any]
    boom_request_id: str


@pytest.fixture(scope="module")
async def session(data: Data) -> AsyncIterator[Session]:
    served = await serve(
        data.database,
        LCT_LOG_FORMAT="json",
        LCT_SLOW_OPERATION_MS="1",
        LCT_MAX_DEPTH="6",
    )
    try:
        canvas = []
        for _ in range(2):
            response = await served.post(CANVAS, id=str(data.conversation))
            assert response.status_code == 200
            canvas.append(response.json())
            assert "errors" not in canvas[-1], canvas[-1]
        anonymous = (await served.post(ANONYMOUS)).json()
        assert "errors" not in anonymous, anonymous
        deep = (await served.post(DEEP, id=str(data.conversation))).json()
        assert [error["extensions"]["code"] for error in deep["errors"]] == ["QUERY_TOO_DEEP"]
        request_id = f"boom-{uuid.uuid4().hex[:8]}"
        response = await served.post(BOOM, headers={"X-Request-ID": request_id}, input=BOOM_INPUT)
        assert response.headers["x-request-id"] == request_id
        boom = response.json()
        assert [error["extensions"]["code"] for error in boom["errors"]] == [
            "INTERNAL_SERVER_ERROR"
        ]
        yield Session(served, canvas, anonymous, deep, boom, request_id)
    finally:
        served.stop()


# -- /metrics ------------------------------------------------------------------------------------


async def test_metrics_count_exactly_what_was_served(session: Session) -> None:
    figures = await session.served.metrics()
    operations = "lct_graphql_operations_total"
    assert value(figures, operations, operation="Canvas", outcome="ok") == 2
    assert value(figures, operations, operation="anonymous", outcome="ok") == 1
    assert value(figures, operations, operation="Deep", outcome="refused") == 1
    assert value(figures, operations, operation="Boom", outcome="error") == 1
    assert sum(v for (name, _), v in figures.items() if name == operations) == 5

    assert value(figures, "lct_graphql_refused_total", limit="QUERY_TOO_DEEP") == 1
    assert sum(v for (name, _), v in figures.items() if name == "lct_graphql_refused_total") == 1
    assert value(figures, "lct_graphql_masked_errors_total") == 1

    statements = "lct_graphql_operation_sql_statements"
    canvas_statements = [body["extensions"]["sqlStatements"] for body in session.canvas]
    assert all(count > 0 for count in canvas_statements)
    assert value(figures, f"{statements}_sum", operation="Canvas") == sum(canvas_statements)
    assert value(figures, f"{statements}_count", operation="Canvas") == 2
    assert (
        value(figures, f"{statements}_sum", operation="anonymous")
        == (session.anonymous["extensions"]["sqlStatements"])
    )
    assert value(figures, f"{statements}_sum", operation="Deep") == 0
    # the bucket counts are cumulative: "at most le statements"
    smallest = min(canvas_statements)
    assert value(figures, f"{statements}_bucket", operation="Canvas", le="0.0") == 0
    assert value(figures, f"{statements}_bucket", operation="Canvas", le="+Inf") == 2
    assert value(figures, f"{statements}_bucket", operation="Canvas", le=f"{smallest}.0") >= 1

    rendered = sum(
        body["extensions"]["renderedLists"]
        for body in [*session.canvas, session.anonymous, session.boom]
        if "extensions" in body
    )
    assert rendered > 0
    assert value(figures, "lct_rendered_lists_total") == rendered

    durations = "lct_graphql_operation_duration_seconds"
    assert value(figures, f"{durations}_count", operation="Canvas") == 2
    assert 0 < value(figures, f"{durations}_sum", operation="Canvas") < 60

    assert value(figures, "lct_http_requests_total", route="/graphql", status="200") == 5
    assert value(figures, "lct_http_request_duration_seconds_count", route="/graphql") == 5
    assert value(figures, "lct_db_pool_connections_in_use") == 0
    assert value(figures, "lct_db_pool_connections_waiting") == 0
    assert value(figures, "lct_db_pool_connections_limit") == 20  # 2 x LCT_POOL_SIZE

    # the scrape itself is counted once it is answered
    again = await session.served.metrics()
    assert value(again, "lct_http_requests_total", route="/metrics", status="200") == (
        value(figures, "lct_http_requests_total", route="/metrics", status="200") + 1
    )


# -- Logs ----------------------------------------------------------------------------------------


def json_lines(served: Served) -> list[dict[str, Any]]:
    lines = [line for line in served.stderr if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is JSON


async def test_json_logs_carry_the_request_id(session: Session) -> None:
    await asyncio.sleep(0.2)  # the reader thread
    lines = json_lines(session.served)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)

    error_id = session.boom["errors"][0]["extensions"]["errorId"]
    masked = [line for line in lines if line["logger"] == "lct.errors"]
    assert len(masked) == 1
    assert masked[0]["level"] == "ERROR"
    assert error_id in masked[0]["message"]
    assert masked[0]["request_id"] == session.boom_request_id
    assert "Traceback" in masked[0]["exception"]
    # the one traceback in the log: strawberry's own error log (every error at ERROR, with a
    # traceback) is replaced; the refused Deep query is the client's error, not the server's
    assert [line["logger"] for line in lines if "exception" in line] == ["lct.errors"]
    assert [line for line in lines if line["logger"].startswith("strawberry")] == []

    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    boom_access = [line for line in access if line.get("request_id") == session.boom_request_id]
    assert len(boom_access) == 1
    assert boom_access[0]["method"] == "POST"
    assert boom_access[0]["path"] == "/graphql"
    assert boom_access[0]["status"] == 200
    # every request has its own id, made by the server when the client sent none
    graphql_ids = [line["request_id"] for line in access if line["path"] == "/graphql"]
    assert len(graphql_ids) == len(set(graphql_ids)) == 5


async def test_slow_operations_are_logged_with_name_and_time(session: Session) -> None:
    await asyncio.sleep(0.2)
    slow = [line for line in json_lines(session.served) if line["logger"] == "lct.operations"]
    canvas = [line for line in slow if line["operation"] == "Canvas"]
    assert len(canvas) == 2  # LCT_SLOW_OPERATION_MS=1: every real query is slow
    for line in canvas:
        assert line["level"] == "WARNING"
        assert line["duration_ms"] >= 1
        assert line["sql_statements"] > 0
        assert line["outcome"] == "ok"
        assert line["message"].startswith("slow operation Canvas: ")
    access = {
        line["request_id"]: line
        for line in json_lines(session.served)
        if line["logger"] == "uvicorn.access"
    }
    assert all(access[line["request_id"]]["path"] == "/graphql" for line in canvas)


# -- Request ids ---------------------------------------------------------------------------------


async def test_request_ids_are_taken_when_safe_and_made_otherwise(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        given = "3f1c2a7e-9b1d-4c55-8e7a-0d2f6b4a1c9e"
        response = await client.get("/health", headers={"X-Request-ID": given})
        assert response.headers["x-request-id"] == given

        made = set()
        for unsafe in ("a b", "x" * 129, 'say "hi"', "line\tbreak", ""):
            response = await client.get("/health", headers={"X-Request-ID": unsafe})
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), unsafe
            made.add(response.headers["x-request-id"])
        response = await client.post("/graphql", json={"query": "{ __typename }"})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
        made.add(response.headers["x-request-id"])
        assert len(made) == 6
        # refused before the GraphQL view (body too large) still carries one
        response = await client.post(
            "/graphql", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert request_id_from(b"A" * 128) == "A" * 128


def test_operation_names_are_bounded() -> None:
    names = OperationNames()

    @dataclass
    class Execution:
        document: str | None

        @property
        def graphql_document(self) -> Any:
            from graphql import parse

            return parse(self.document) if self.document is not None else None

        @property
        def operation_name(self) -> str | None:
            from graphql import OperationDefinitionNode, parse

            if self.document is None:
                return None
            first = parse(self.document).definitions[0]
            assert isinstance(first, OperationDefinitionNode)
            return first.name.value if first.name else None

    assert names.label(Execution(None)) == "invalid"
    assert names.label(Execution("{ a }")) == "anonymous"
    long = "Q" * 300
    assert names.label(Execution(f"query {long} {{ a }}")) == long[: OperationNames.MAX_LENGTH]
    for number in range(OperationNames.MAX_NAMES - 1):
        assert names.label(Execution(f"query N{number} {{ a }}")) == f"N{number}"
    assert names.label(Execution("query OneTooMany { a }")) == "other"
    assert names.label(Execution("query N7 { a }")) == "N7"  # seen before: still itself


# -- /health and /ready --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heads() -> Iterator[tuple[str, str]]:
    """The head revision and the one before it."""
    script = ScriptDirectory.from_config(alembic_config(URL.create("postgresql")))
    head = script.get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    yield head.revision, head.down_revision


async def probe(settings_url: URL, path: str) -> httpx.Response:
    server = LiveServer(server_settings(settings_url))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await client.get(path)
    finally:
        await server.stop()


async def test_ready_when_the_database_is_at_head(
    database_url: URL, heads: tuple[str, str]
) -> None:
    response = await probe(database_url, "/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "migration": heads[0]}


async def test_not_ready_when_the_database_is_behind(
    database_factory: DatabaseFactory, heads: tuple[str, str]
) -> None:
    behind = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(behind), heads[1])
    response = await probe(behind, "/ready")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "reason": f"the database is at migration {heads[1]}; this code expects {heads[0]}",
    }


async def test_not_ready_when_the_database_is_not_migrated(
    database_factory: DatabaseFactory,
) -> None:
    empty = await database_factory.create()
    response = await probe(empty, "/ready")
    assert response.status_code == 503
    assert response.json()["reason"] == (
        "the database has no alembic_version table: it is not migrated"
    )


async def test_not_ready_but_alive_when_the_database_is_unreachable(database_url: URL) -> None:
    nowhere = database_url.set(host="127.0.0.1", port=free_port(), query={})
    server = LiveServer(server_settings(nowhere))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            ready = await client.get("/ready")
            health = await client.get("/health")
    finally:
        await server.stop()
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("the database is unreachable (")
    assert health.status_code == 200
    assert health.text == "ok"


# -- Tracing -------------------------------------------------------------------------------------


def test_tracing_is_switched_on_by_the_standard_variables() -> None:
    assert traces_exporter_names({}) == []
    assert traces_exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert traces_exporter_names({"OTEL_TRACES_EXPORTER": "console, otlp"}) == ["console", "otlp"]
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert traces_exporter_names(endpoint) == ["otlp"]
    assert traces_exporter_names({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []


async def test_no_opentelemetry_when_tracing_is_off(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        response = await client.post("/graphql", json={"query": "{ conversations { totalCount } }"})
    assert response.status_code == 200
    if traces_exporter_names():
        pytest.skip("this environment sets OTEL_* variables that switch tracing on")
    assert not [name for name in sys.modules if name.startswith("opentelemetry.sdk")]


def console_spans(output: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (indented JSON objects) among other output."""
    spans, current = [], None
    for line in output.splitlines():
        if line == "{":
            current = [line]
        elif current is not None:
            current.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(current)))
                current = None
    return spans


async def test_a_span_per_operation_and_per_statement(data: Data) -> None:
    served = await serve(
        data.database,
        "--no-access-log",
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="lct-graph-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    try:
        response = await served.post(
            CANVAS,
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            id=str(data.conversation),
        )
        body = response.json()
        assert "errors" not in body, body
        unnamed = (await served.post(ANONYMOUS)).json()
        assert "errors" not in unnamed
    finally:
        served.stop()  # SIGTERM: the server flushes its spans as it stops
    # uvicorn stops gracefully, then re-raises the signal
    assert served.process.returncode in (0, -signal.SIGTERM), "".join(served.stderr)
    spans = console_spans("".join(served.stdout))

    operation = [span for span in spans if span["name"] == "query Canvas"]
    assert len(operation) == 1
    canvas = operation[0]
    assert canvas["kind"] == "SpanKind.SERVER"
    assert canvas["context"]["trace_id"] == f"0x{trace_id}"
    assert canvas["parent_id"] == f"0x{parent_id}"
    assert canvas["attributes"]["graphql.operation.name"] == "Canvas"
    assert canvas["attributes"]["graphql.operation.type"] == "query"
    assert canvas["resource"]["attributes"]["service.name"] == "lct-graph-test"

    statements = [span for span in spans if span["parent_id"] == canvas["context"]["span_id"]]
    assert len(statements) == body["extensions"]["sqlStatements"] > 0
    for statement in statements:
        assert statement["kind"] == "SpanKind.CLIENT"
        assert statement["context"]["trace_id"] == f"0x{trace_id}"
        assert statement["attributes"]["db.system.name"] == "postgresql"
        assert (
            statement["attributes"]["db.query.text"]
            .lstrip()
            .upper()
            .startswith(statement["attributes"]["db.operation.name"])
        )

    anonymous = [span for span in spans if span["name"] == "query anonymous"]
    assert len(anonymous) == 1
    assert anonymous[0]["parent_id"] is None  # no traceparent: a trace of its own
    children = [s for s in spans if s["parent_id"] == anonymous[0]["context"]["span_id"]]
    assert len(children) == unnamed["extensions"]["sqlStatements"]
    # every span is one of those: no statement outside an operation was traced
    assert len(spans) == 2 + len(statements) + len(children)


class Collector:
    """An OTLP/HTTP trace receiver: keeps the bodies POSTed to /v1/traces."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    found.extend(scope_spans.spans)
        return found


async def test_an_otlp_endpoint_alone_switches_tracing_on(data: Data) -> None:
    collector = Collector()
    try:
        served = await serve(
            data.database,
            "--no-access-log",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        try:
            body = (await served.post(CANVAS, id=str(data.conversation))).json()
            assert "errors" not in body, body
        finally:
            served.stop()
        spans = collector.spans()
    finally:
        collector.server.shutdown()
    operations = [span for span in spans if span.name == "query Canvas"]
    assert len(operations) == 1
    statements = [span for span in spans if span.parent_span_id == operations[0].span_id]
    assert len(statements) == len(spans) - 1 == body["extensions"]["sqlStatements"]


# -- serve --workers N ---------------------------------------------------------------------------


async def test_workers_share_their_metrics(data: Data) -> None:
    served = await serve(data.database, "--no-access-log", "--workers", "2", LCT_POOL_SIZE="3")
    try:
        for _ in range(12):  # a connection each, so the kernel spreads them over the workers
            response = await served.post("query Ping { __typename }")
            assert response.json()["data"] == {"__typename": "Query"}
        for _ in range(3):  # whichever worker answers the scrape, it reports the sum
            figures = await served.metrics()
            assert (
                value(figures, "lct_graphql_operations_total", operation="Ping", outcome="ok") == 12
            )
            # each worker's gauge is summed: 2 workers x 2 x LCT_POOL_SIZE
            assert value(figures, "lct_db_pool_connections_limit") == 12
    finally:
        served.stop()


# -- The pool gauges -----------------------------------------------------------------------------


async def test_pool_gauges_show_connections_in_use_and_waiting(data: Data) -> None:
    """A lock the test holds on `conversations` keeps requests on their connections: with a pool
    of 1 + 1 overflow, two requests hold both and a third waits for one."""
    served = await serve(data.database, "--no-access-log", LCT_POOL_SIZE="1")
    locker = await asyncpg.connect(asyncpg_dsn(data.database))

    async def figures_become(in_use: int, waiting: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            figures = await served.metrics()
            seen = (
                value(figures, "lct_db_pool_connections_in_use"),
                value(figures, "lct_db_pool_connections_waiting"),
            )
            if seen == (in_use, waiting):
                return
            assert time.monotonic() < deadline, f"in use, waiting: {seen}"
            await asyncio.sleep(0.05)

    try:
        await figures_become(0, 0)
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        blocked = [asyncio.create_task(served.post(ANONYMOUS))]
        await figures_become(1, 0)
        blocked.append(asyncio.create_task(served.post(ANONYMOUS)))
        await figures_become(2, 0)
        blocked.append(asyncio.create_task(served.post(ANONYMOUS)))
        await figures_become(2, 1)
        await transaction.rollback()
        for response in await asyncio.gather(*blocked):
            assert "errors" not in response.json(), response.text
        await figures_become(0, 0)
    finally:
        await locker.close()
        served.stop()
