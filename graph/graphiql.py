"""GraphiQL that works offline: strawberry's page, its CDN assets served by this app.

strawberry's page loads React and GraphiQL from a public CDN. The same files, vendored from the npm
registry, live in `graph/static/graphiql/` under the CDN's own paths; the page is rewritten to load
them from `ASSETS_PATH`, keeping its `integrity` hashes, so the browser still checks every byte.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

ASSETS_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql-assets"
CDN = "https://unpkg.com/"
_CDN_URL = re.compile(re.escape(CDN) + r"[^\"'\s]+")


@lru_cache(maxsize=1)
def offline_graphiql_html() -> str:
    """strawberry's GraphiQL page with every CDN URL pointing at the vendored copy.

    A URL with no vendored copy (a strawberry upgrade that moved to other versions) is left on the
    CDN, so the page still works where the CDN is reachable; the GraphiQL test catches it."""
    html = get_graphql_ide_html("graphiql")
    for url in set(_CDN_URL.findall(html)):
        relative = url.removeprefix(CDN)
        if (ASSETS_DIR / relative).is_file():
            html = html.replace(url, f"{ASSETS_PATH}/{relative}")
    return html


def assets_mount() -> Mount:
    """The route that serves the vendored files (cacheable: each path names a fixed version)."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIR), name="graphiql-assets")
