"""The reference canvas page at `/canvas/<conversation id>`: plain JS and SVG shipped with the
package (graph/static/canvas/), drawing a conversation and following its changes live."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

CANVAS_DIR = Path(__file__).resolve().parent / "static" / "canvas"


async def canvas_page(_: Request) -> Response:
    # The page reads the conversation id from its own path.
    return HTMLResponse((CANVAS_DIR / "index.html").read_text())


def canvas_routes() -> list[BaseRoute]:
    return [
        Route("/canvas/{conversation_id}", canvas_page, methods=["GET"]),
        Mount("/canvas-assets", app=StaticFiles(directory=CANVAS_DIR), name="canvas-assets"),
    ]
