"""The ASGI application: Starlette serving the GraphQL schema at `/graphql`.

    uvicorn graph.app:app

`/graphql` answers GET and POST as the GraphQL-over-HTTP spec says (including
`application/graphql-response+json`) and serves GraphiQL to a browser at the same path. Importing
this module starts nothing: the engine (and the embedded PostgreSQL, when `DATABASE_URL` is unset)
is created by the app's lifespan, once, and disposed of when the server stops.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from db.session import create_engine, create_session_factory
from db.settings import Settings, get_settings
from graph import heartbeat
from graph.auth import Authenticator
from graph.canvas import canvas_route
from graph.context import Context
from graph.graphiql import assets_mount
from graph.http import (
    GRAPHQL_RESPONSE,
    SecureGraphQL,
    prefers_graphql_response,
    security_extensions,
    security_middleware,
    viewer_of,
)
from graph.live_canvas import canvas_routes
from graph.live_transport import LiveEndpoints
from graph.masking import unavailable_for_retry
from graph.observability import Observability, RequestMiddleware, current_count
from graph.operations import FastPath, Learning, Operations
from graph.operations import enabled as compiles_operations
from graph.rendering import RenderBudget
from graph.schema import create_schema
from graph.strawberry_adapter import run_extensions_lean

logger = logging.getLogger("lct.app")


class StatementCountExtension(SchemaExtension):
    """Reports `extensions.sqlStatements`, how many SQL statements the operation ran, and
    `extensions.renderedLists`, how many of its lists PostgreSQL rendered (graph/rendering.py)."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        rendered = context.rendered_lists if isinstance(context, Context) else 0
        counter = current_count.get()  # set by graph.observability.OperationObserver
        return {"sqlStatements": counter.value if counter else 0, "renderedLists": rendered}


@dataclass
class Database:
    """What the lifespan builds once per process: the engine and its session factory."""

    engine: AsyncEngine | None = None
    session_factory: async_sessionmaker[AsyncSession] | None = None
    render_budget: RenderBudget | None = None


class GraphQLView(SecureGraphQL):
    """Builds the per-request `Context` and gives back its connection when the response is done."""

    def __init__(
        self, schema: Any, settings: Settings, database: Database, observability: Observability
    ) -> None:
        super().__init__(schema, settings)
        self.database = database
        self.observability = observability
        self.fast: FastPath | None = None

    def answer_compiled(self, operations: Operations) -> None:
        """Serves what `operations` compiled without the executor (graph/operations.py)."""
        self.fast = FastPath(
            operations,
            self.settings,
            lambda: self.database.engine,
            lambda: self.database.render_budget,
            self.observability,
            self.persisted,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.fast is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
        else:
            await self.fast(scope, receive, send, super().__call__)

    async def get_context(self, request: Any, response: Any) -> Context:
        factory = self.database.session_factory
        if factory is None:
            raise RuntimeError("the app's lifespan has not run: no database")
        context = Context(
            request=request,
            response=response,
            settings=self.settings,
            session_factory=factory,
            viewer_id=viewer_id_of(request),
            render_budget=self.database.render_budget,
        )
        request.state.lct_context = context
        return context

    async def get_sub_response(self, request: Any) -> Response:
        sub_response = await super().get_sub_response(request)
        # GraphQL over HTTP: a client asking for the new media type gets its status codes.
        sub_response.lct_graphql_response = prefers_graphql_response(  # type: ignore[attr-defined]
            request.headers.get("accept")
        )
        return sub_response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        modern = getattr(sub_response, "lct_graphql_response", False)
        refused = modern and is_request_error(response_data)
        if refused:
            response_data = {key: value for key, value in response_data.items() if key != "data"}
        response = super().create_response(response_data, sub_response)
        if modern:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if refused and response.status_code == 200:
                response.status_code = 400
            unavailable_for_retry(response_data, response)
        return response

    def after_response(self, request: Any) -> None:
        created = getattr(getattr(request, "state", None), "lct_context", None)
        if isinstance(created, Context):
            created.rendered()
            self.observability.rendered(created)

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        kwargs: dict[str, Any] = {}
        if context is not None:
            kwargs["context"] = context
        if root_value is not None:
            kwargs["root_value"] = root_value
        try:
            return await super().run(request, **kwargs)
        finally:
            created = getattr(getattr(request, "state", None), "lct_context", None)
            if isinstance(created, Context):
                await created.close()


def is_request_error(response_data: Any) -> bool:
    """No data and only errors without a path: the document was refused before execution."""
    if not isinstance(response_data, dict) or response_data.get("data") is not None:
        return False
    errors = response_data.get("errors") or []
    return bool(errors) and all("path" not in error for error in errors)


def viewer_id_of(request: Request) -> str | None:
    """The acting user: set by `graph.http.SecurityMiddleware` (None: anonymous)."""
    return viewer_of(request).user_id


def extensions_for(
    settings: Settings, observability: Observability, operations: Operations | None = None
) -> list[type[SchemaExtension] | Callable[[], Any]]:
    """The schema extensions, as classes or factories (an instance would be shared by requests)."""
    extensions: list[type[SchemaExtension] | Callable[[], Any]] = [
        observability.extension,
        *security_extensions(settings),
    ]
    if settings.debug_sql_count:
        extensions.append(StatementCountExtension)
    if operations is not None:
        extensions.append(lambda: Learning(operations))
    return extensions


def middleware_for(settings: Settings) -> list[Middleware]:
    return [Middleware(RequestMiddleware), *security_middleware(settings, Authenticator(settings))]


def tune_garbage_collection() -> None:
    """Fewer, cheaper collections while a large graph is being built.

    A 1,000-node canvas allocates some 10^6 short-lived objects; at CPython's default threshold
    of 700 that is over a thousand young-generation collections, and the older ones rescan every
    module-level object. Freezing what exists at start-up takes those out of every scan.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    database = Database()
    observability = Observability(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tune_garbage_collection()
        engine = create_engine(settings=settings)
        observability.start(engine)
        database.engine = engine
        database.session_factory = create_session_factory(engine)
        database.render_budget = RenderBudget(settings.render_budget_rows)
        try:
            async with live.running(database.session_factory, database.render_budget):
                yield
        finally:
            if view.fast is not None:
                await view.fast.connections.close()
            database.engine = database.session_factory = None
            observability.stop()
            await engine.dispose()

    operations = Operations() if compiles_operations(settings) else None
    schema = create_schema(extensions_for(settings, observability, operations))
    run_extensions_lean(schema)
    view = GraphQLView(schema, settings, database, observability)
    if operations is not None:
        view.answer_compiled(operations)
    live = LiveEndpoints(settings, Authenticator(settings), view.schema)  # subscriptions

    async def health(_: Request) -> Response:
        return Response("ok", media_type="text/plain")

    application = Starlette(
        routes=[
            *live.routes(),
            *canvas_routes(),  # the reference canvas page
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", observability.ready, methods=["GET"]),
            Route("/metrics", observability.metrics, methods=["GET"]),
            canvas_route(lambda: database.session_factory),
            assets_mount(),  # GraphiQL's scripts, so that the page works offline
        ],
        middleware=middleware_for(settings),
        lifespan=lifespan,
    )
    heartbeat.install(application, settings)
    return application


app = create_app()
