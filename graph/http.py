"""HTTP hardening in front of the GraphQL view: one ASGI middleware and a view base class.

`SecurityMiddleware`, in order, for every HTTP request:

1. local development mode (no authentication configured) serves only loopback connections whose
   `Host` is a loopback name too (so that DNS rebinding cannot reach it from a web page);
2. a body larger than `LCT_MAX_BODY_BYTES` gets 413, by `Content-Length` or while it streams;
3. CSRF: a request a browser could send cross-site without a CORS preflight is refused, as Apollo
   Server's CSRF prevention does: it must carry a `Content-Type` other than `text/plain`,
   `application/x-www-form-urlencoded` or `multipart/form-data`, or a non-empty
   `GraphQL-Require-Preflight` / `Apollo-Require-Preflight` / `X-Apollo-Operation-Name` header.
   A GET without a `query` parameter (the GraphiQL page) executes nothing and is let through;
4. the bearer token becomes the request's `Viewer` (`request.state.viewer`), or 401;
5. an exception that escapes the app is logged with an id and answered with a generic 500.

WebSockets are refused: this API has no subscriptions, and a socket would bypass 3 and 4.

`SecureGraphQL` is the strawberry view: GraphiQL switchable, no WebSocket protocols, no multipart,
document size and batch size checked before parsing, refusals rendered as GraphQL-shaped JSON, and
401 for an operation refused for want of a token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from db.settings import Settings
from graph import jsonbody
from graph.auth import ANONYMOUS, AuthenticationError, Authenticator, Viewer, is_loopback_host
from graph.graphiql import offline_graphiql_html
from graph.limits import limit_extensions
from graph.masking import MaskUnexpectedErrors, new_error_id
from graph.observability import count_masked_error
from graph.persisted import (
    PersistedDocumentError,
    PersistedDocumentExtension,
    PersistedDocuments,
    PersistedDocumentsView,
)
from graph.storable import RefuseUnstorableInput

logger = logging.getLogger("lct.http")

SIMPLE_CONTENT_TYPES = {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
PREFLIGHT_HEADERS = (
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)
UNAUTHENTICATED = "UNAUTHENTICATED"
# A GET with any of these runs an operation (graph/persisted.py: by its hash).
EXECUTING_PARAMETERS = {"query", "documentId", "extensions"}


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def error_response(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, code), status_code=status, headers=dict(headers or {}))


def unauthenticated(message: str) -> JSONResponse:
    description = message.replace('"', "'")
    return error_response(
        401,
        message,
        UNAUTHENTICATED,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def viewer_of(request: Any) -> Viewer:
    """The request's viewer as the middleware set it; anonymous when it did not run."""
    viewer = getattr(getattr(request, "state", None), "viewer", None)
    return viewer if isinstance(viewer, Viewer) else ANONYMOUS


GRAPHQL_RESPONSE = "application/graphql-response+json"


@functools.lru_cache(maxsize=256)  # clients send the same few
def prefers_graphql_response(accept: str | None) -> bool:
    """Whether `Accept` ranks application/graphql-response+json above application/json."""
    best: dict[str, tuple[float, int]] = {}
    for position, part in enumerate((accept or "").split(",")):
        media_type, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and media_type.lower() not in best:
            best[media_type.lower()] = (quality, -position)
    mine = best.get(GRAPHQL_RESPONSE)
    plain = best.get("application/json") or best.get("application/*") or best.get("*/*")
    return mine is not None and (plain is None or mine > plain)


class BodyTooLarge(Exception):
    pass


def _headers(scope: Scope) -> dict[str, str]:
    return {
        key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
    }


# Every request asks about the same few addresses; parsing one as an IP address is most of the
# middleware's time on a small request.
_is_loopback = functools.lru_cache(maxsize=1024)(is_loopback_host)


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def csrf_safe(method: str, headers: Mapping[str, str], query_string: bytes) -> bool:
    """False for a request that a browser could send cross-site without a preflight."""
    if method == "OPTIONS":
        return True
    if (
        method in ("GET", "HEAD")
        and not EXECUTING_PARAMETERS & parse_qs(query_string.decode("latin-1")).keys()
    ):
        return True
    content_type = headers.get("content-type")
    if content_type is not None:
        essence = content_type.split(";", 1)[0].strip().lower()
        if essence and essence not in SIMPLE_CONTENT_TYPES:
            return True
    return any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)


CSRF_MESSAGE = (
    "This request has been blocked as a potential cross-site request forgery (CSRF). Send it"
    " with a Content-Type other than text/plain, application/x-www-form-urlencoded or"
    " multipart/form-data (for example application/json), or with a non-empty"
    f" {', '.join(PREFLIGHT_HEADERS)} header."
)


class SecurityMiddleware:
    """See the module docstring; built once per app with its settings and authenticator."""

    def __init__(self, app: ASGIApp, settings: Settings, authenticator: Authenticator) -> None:
        self.app = app
        self.settings = settings
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._announcing(receive), send)
            return
        if scope["type"] == "websocket":
            # graph/live_transport.py checks the handshake's Origin and authenticates
            # connection_init itself.
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            viewer = self.authenticator.authenticate(headers.get("authorization"))
        except AuthenticationError as error:
            await unauthenticated(error.message)(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = viewer
        await self._call_guarded(scope, receive, send)

    def _announcing(self, receive: Receive) -> Receive:
        async def announcing_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                logger.warning(self.authenticator.describe())
            return message

        return announcing_receive

    def _refusal(self, scope: Scope, headers: Mapping[str, str]) -> Response | None:
        if self.authenticator.development and not self._loopback_only(scope, headers):
            return error_response(
                403,
                "Authentication is not configured (local development mode), so only loopback"
                " connections to a loopback host name are served. Configure LCT_JWT_SECRET,"
                " LCT_JWT_PUBLIC_KEY or LCT_JWKS_FILE to serve anything else.",
                "DEVELOPMENT_MODE_LOOPBACK_ONLY",
            )
        length = headers.get("content-length")
        if length is not None:
            try:
                too_large = int(length) > self.settings.max_body_bytes
            except ValueError:
                return error_response(400, "Content-Length is not a number.", "BAD_REQUEST")
            if too_large:
                return self._too_large()
        if not csrf_safe(scope["method"], headers, scope.get("query_string", b"")):
            return error_response(400, CSRF_MESSAGE, "CSRF_PREVENTED")
        return None

    def _too_large(self) -> JSONResponse:
        return error_response(
            413,
            f"The request body is larger than {self.settings.max_body_bytes:,} bytes.",
            "PAYLOAD_TOO_LARGE",
        )

    @staticmethod
    def _loopback_only(scope: Scope, headers: Mapping[str, str]) -> bool:
        server = scope.get("server")
        client = scope.get("client")
        # No address at all is a Unix socket: local by construction.
        if server is not None and not _is_loopback(server[0]):
            return False
        if client is not None and not _is_loopback(client[0]):
            return False
        host = headers.get("host")
        return host is None or _is_loopback(_host_name(host))

    async def _call_guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.max_body_bytes
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large()(scope, receive, send)
        except Exception:
            error_id = new_error_id()
            count_masked_error()
            logger.exception("unexpected error %s serving %s", error_id, scope.get("path"))
            if started:
                raise
            response = JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Unexpected error; it was logged with id {error_id}.",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id},
                        }
                    ]
                },
                status_code=500,
            )
            await response(scope, receive, send)


def security_middleware(settings: Settings, authenticator: Authenticator) -> list[Middleware]:
    """For `Starlette(middleware=...)`; CORS is added only when origins are configured."""
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", *PREFLIGHT_HEADERS],
                allow_credentials=False,
                max_age=600,
            )
        )
    middleware.append(
        Middleware(SecurityMiddleware, settings=settings, authenticator=authenticator)
    )
    return middleware


class RequireViewerForMutations(SchemaExtension):
    """A mutation needs an authenticated viewer: without a token it is refused (HTTP 401)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        viewer_id = getattr(context.context, "viewer_id", None)
        if context.operation_type == OperationType.MUTATION and viewer_id is None:
            context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Authentication required: mutations need an"
                        " `Authorization: Bearer <token>` header.",
                        extensions={"code": UNAUTHENTICATED},
                    )
                ],
            )
        yield


def security_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories for `strawberry.Schema(extensions=...)`: limits, masking, mutations' 401."""

    def masking() -> SchemaExtension:
        return MaskUnexpectedErrors(settings.statement_timeout_ms)

    return [
        PersistedDocumentExtension,
        *limit_extensions(settings),
        RequireViewerForMutations,
        RefuseUnstorableInput,
        masking,
    ]


class SecureGraphQL(PersistedDocumentsView, GraphQL[Any, Any]):
    """The strawberry ASGI view with this API's HTTP rules (see the module docstring)."""

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(),
            multipart_uploads_enabled=False,
        )
        self.settings = settings
        self.persisted = PersistedDocuments(settings)

    @property
    def graphql_ide_html(self) -> str:
        return offline_graphiql_html()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope=scope, receive=receive)
        try:
            try:
                response = await self.run(request)
            except PersistedDocumentError as error:
                response = error.response()
            except HTTPException as error:
                if "not allowed when using GET" in error.reason:
                    # GraphQL over HTTP: an operation GET cannot carry is 405, naming POST.
                    response = error_response(
                        405,
                        "Mutations are not accepted over GET; send them with POST.",
                        "METHOD_NOT_ALLOWED",
                        {"Allow": "POST"},
                    )
                else:
                    response = error_response(error.status_code, error.reason, _code_for(error))
            await send_response(response, scope, receive, send)
        finally:
            self.after_response(request)

    def after_response(self, request: Request) -> None:
        """Runs once the response is sent, or could not be."""

    def encode_json(self, data: object) -> bytes:
        # orjson: fast, and it splices the fragments PostgreSQL rendered (graph/rendering.py)
        return orjson.dumps(data)

    def _validate_batch_request(
        self, request_data: list[GraphQLRequestData], protocol: GraphQLRequestProtocol
    ) -> None:
        limit = self.settings.max_operations
        if len(request_data) > limit:
            raise HTTPException(
                400,
                f"A batched request may hold at most {limit} operations; this one holds"
                f" {len(request_data)}.",
            )
        super()._validate_batch_request(request_data, protocol)

    def decode_json(self, data: str | bytes) -> object:
        return jsonbody.decode(data)

    async def parse_http_body(self, request: Any) -> Any:
        await jsonbody.parse_ahead(request)  # a large body without holding the event loop
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            size = len((item.query or "").encode(errors="surrogatepass"))
            if size > self.settings.max_query_bytes:
                raise HTTPException(
                    413,
                    f"The GraphQL document is {size:,} bytes; the maximum is"
                    f" {self.settings.max_query_bytes:,}.",
                )
        return data

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        if any(_has_code(item, UNAUTHENTICATED) for item in _as_list(response_data)):
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="lct-graph"'
        return response


# A large body goes out in pieces: the server waits for the socket to drain before each one,
# so a slow reader holds one piece in the write buffer instead of the whole body.
RESPONSE_CHUNK_BYTES = 256 * 1024


async def send_response(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    body = response.body
    if type(response) is not Response or response.background is not None:
        await response(scope, receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    view = memoryview(body)
    for start in range(0, max(len(body), 1), RESPONSE_CHUNK_BYTES):
        end = start + RESPONSE_CHUNK_BYTES
        await send(
            {
                "type": "http.response.body",
                "body": bytes(view[start:end]),
                "more_body": end < len(body),
            }
        )


def _as_list(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


def _has_code(item: Any, code: str) -> bool:
    errors = item.get("errors") if isinstance(item, dict) else None
    return any((error.get("extensions") or {}).get("code") == code for error in errors or ())


def _code_for(error: HTTPException) -> str:
    return {
        400: "BAD_REQUEST",
        401: UNAUTHENTICATED,
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "PAYLOAD_TOO_LARGE",
    }.get(error.status_code, "BAD_REQUEST")
