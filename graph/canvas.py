"""Obsidian's JSON Canvas, both ways: the `conversationCanvas` query, its `.canvas` download at
`GET /conversations/<id>/canvas`, and the `applyCanvas` mutation (graph/services/canvas.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import strawberry
from sqlalchemy import Executable, Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.scalars import JSON

from db.models import Conversation
from graph.context import Context
from graph.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from graph.filters import NodeFilter, any_of
from graph.mutations.bridge import RelationshipType, out
from graph.mutations.common import parse_id, run_mutation
from graph.relay import parse_uuid
from graph.services.canvas import apply_canvas as apply_canvas_service
from graph.services.canvas import export_canvas

Info = strawberry.Info[Context, None]

CANVAS_DESCRIPTION = (
    "The conversation as an Obsidian JSON Canvas 1.0 document (jsoncanvas.org): a card (text"
    " node) per node at its stored position and size, `# name` then the summary; a group per"
    " cluster around its members; an edge per relationship between two exported cards, labelled"
    " and coloured by type, arrow at `toNode` (both ends when bidirectional). Ids are the rows'"
    " ids, so two exports of an unchanged graph are identical. Null when the conversation is"
    " missing or not visible to you. Download it as a file from"
    " `GET /conversations/<id>/canvas` (same arguments as query parameters)."
)


def node_filter(level: list[int] | None, zoom_level_visible: int | None) -> NodeFilter:
    return NodeFilter(level=any_of(level), zoom_level_visible=zoom_level_visible)


@strawberry.type
class CanvasQuery:
    @strawberry.field(description=CANVAS_DESCRIPTION)
    async def conversation_canvas(
        self,
        info: Info,
        id: strawberry.ID,
        level: Annotated[
            list[int] | None, strawberry.argument(description="Only nodes at these levels.")
        ] = None,
        zoom_level_visible: Annotated[
            int | None, strawberry.argument(description="Only nodes drawn at this zoom level.")
        ] = None,
    ) -> JSON | None:
        document = await export_canvas(
            info.context.fetch,
            info.context.viewer_id,
            parse_uuid(id),
            node_filter(level, zoom_level_visible),
        )
        return document  # type: ignore[return-value]  # JSON is any JSON value


@strawberry.type(description="What an applied canvas changed; every change is in the edits log.")
class ApplyCanvasPayload:
    moved_node_ids: list[strawberry.ID] = strawberry.field(
        description="Cards moved or resized (one `moveNodes`, logged as canvas edits)."
    )
    corrected_node_ids: list[strawberry.ID] = strawberry.field(
        description="Cards whose text changed: their name and summary corrected."
    )
    created_relationships: list[RelationshipType] = strawberry.field(
        description="Edges drawn in the canvas, in its order; an unlabelled one is"
        " `contextual_related`."
    )
    updated_relationship_ids: list[strawberry.ID] = strawberry.field(
        description="Edges whose label (the type) or arrow ends (bidirectional) changed."
    )
    deleted_relationship_ids: list[strawberry.ID] = strawberry.field(
        description="Relationships between two cards of the canvas whose edge was removed."
    )


ApplyCanvasResult = Annotated[
    ApplyCanvasPayload | ValidationError | NotFoundError | ConflictError | ForbiddenError,
    strawberry.union("ApplyCanvasResult"),
]


@strawberry.type
class CanvasMutations:
    @strawberry.mutation(
        description="Takes back a canvas edited in Obsidian (a `conversationCanvas` document):"
        " moved and resized cards, edited text, edges added, removed or relabelled. All or"
        " nothing, in one transaction; an error's `field` is the JSON path in the canvas"
        " (`nodes[3].x`). Cards missing from the canvas are left alone."
    )
    async def apply_canvas(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        canvas: JSON,
        base: Annotated[
            JSON | None,
            strawberry.argument(
                description="The canvas as exported, before the edit: then only what differs"
                " from it is applied, and changes others made since the export survive. Without"
                " it the canvas is the truth for every card and edge on it."
            ),
        ] = None,
        comment: str | None = None,
        confidence: float | None = None,
    ) -> ApplyCanvasResult:
        async def action(session: AsyncSession, actor: Any) -> ApplyCanvasPayload:
            changes = await apply_canvas_service(
                session, actor, parse_id(conversation_id, "conversationId"), canvas, base
            )
            return ApplyCanvasPayload(
                moved_node_ids=[strawberry.ID(str(item)) for item in changes.moved_node_ids],
                corrected_node_ids=[
                    strawberry.ID(str(item)) for item in changes.corrected_node_ids
                ],
                created_relationships=[out(row) for row in changes.created_relationships],
                updated_relationship_ids=[
                    strawberry.ID(str(item)) for item in changes.updated_relationship_ids
                ],
                deleted_relationship_ids=[
                    strawberry.ID(str(item)) for item in changes.deleted_relationship_ids
                ],
            )

        return await run_mutation(info, action, comment=comment, confidence=confidence)


# -- The .canvas download ------------------------------------------------------------------------


def _file_name(name: str) -> str:
    return re.sub(r"[^\w .-]+", "_", name).strip(" .") or "conversation"


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )


def canvas_route(
    session_factory: Callable[[], async_sessionmaker[AsyncSession] | None],
) -> Route:
    """`GET /conversations/<id>/canvas[?level=1&level=2&zoomLevelVisible=3]`: the canvas as a
    `.canvas` file, for the same viewer `/graphql` would serve (graph.http.SecurityMiddleware)."""
    from graph.http import viewer_of

    async def download(request: Request) -> Response:
        try:
            conversation_id = uuid.UUID(request.path_params["conversation_id"])
            levels = [int(value) for value in request.query_params.getlist("level")]
            zoom = request.query_params.get("zoomLevelVisible")
            zoom_level = None if zoom is None else int(zoom)
        except ValueError:
            return _error(
                400,
                "Expected /conversations/<uuid>/canvas with integer `level` and"
                " `zoomLevelVisible` parameters.",
                "BAD_USER_INPUT",
            )
        factory = session_factory()
        if factory is None:
            return _error(503, "The server is starting.", "SERVICE_UNAVAILABLE")
        viewer_id = viewer_of(request).user_id
        async with factory() as session:

            async def fetch(statement: Executable) -> list[Row[Any]]:
                return list((await session.execute(statement)).all())

            document = await export_canvas(
                fetch, viewer_id, conversation_id, node_filter(levels or None, zoom_level)
            )
            if document is None:
                return _error(404, "No such conversation.", "NOT_FOUND")
            name = await session.scalar(
                select(Conversation.conversation_name).where(Conversation.id == conversation_id)
            )
        file_name = f"{_file_name(str(name))}.canvas"
        ascii_name = file_name.encode("ascii", "replace").decode().replace("?", "_")
        return Response(
            orjson.dumps(document, option=orjson.OPT_INDENT_2),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{ascii_name}";'
                f" filename*=UTF-8''{quote(file_name)}",
                "Cache-Control": "private, no-store",
            },
        )

    return Route("/conversations/{conversation_id}/canvas", download, methods=["GET"])
