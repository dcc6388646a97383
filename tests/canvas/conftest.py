"""Conversations for the canvas tests, a JWT-verifying server, and the third-party validator."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy.engine import URL

from db.demo import generate_conversation
from tests.conftest import LiveServer, server_settings

with warnings.catch_warnings():  # it declares pydantic v1-style `class Config`
    warnings.simplefilter("ignore", DeprecationWarning)
    import openjsoncanvas

# The development-mode user the default test server acts as (Settings.dev_user_id).
VIEWER = "local-developer"
SECRET = "canvas-tests-secret-that-is-long-enough"

# openjsoncanvas (PyPI) models JSON Canvas 1.0 with pydantic: `Canvas` checks the top level and
# the edges (ids, ends, sides, arrow ends), and each node is checked against its type's model.
NODE_MODELS = {
    "text": openjsoncanvas.TextNode,
    "group": openjsoncanvas.GroupNode,
    "file": openjsoncanvas.FileNode,
    "link": openjsoncanvas.LinkNode,
}


def validate_canvas(document: Any) -> None:
    """Raises unless `document` is a JSON Canvas 1.0 document, as openjsoncanvas reads the spec
    (strictly: an integer is an integer, not "12" or 1.5)."""
    openjsoncanvas.Canvas.model_validate(document, strict=True)
    for node in document.get("nodes", []):
        NODE_MODELS[node["type"]].model_validate(node, strict=True)


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET)


@dataclass(frozen=True)
class Conversations:
    main: uuid.UUID  # 12 nodes with clusters and relationships, the viewer's
    other: uuid.UUID  # the viewer's too: its nodes are foreign to `main`
    foreign: uuid.UUID  # someone else's private one


@pytest.fixture(scope="session")
async def canvas_conversations(db: asyncpg.Connection) -> Conversations:
    main = await generate_conversation(db, nodes=12, seed=91, owner_id=VIEWER, name="Canvas: main")
    other = await generate_conversation(db, nodes=4, seed=92, owner_id=VIEWER, name="Other")
    foreign = await generate_conversation(db, nodes=4, seed=93, owner_id="someone-else")
    return Conversations(main=main, other=other, foreign=foreign)


@pytest.fixture(scope="session")
async def jwt_server(database_url: URL) -> AsyncIterator[str]:
    server = LiveServer(server_settings(database_url, jwt_secret=SECRET))
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture(scope="session")
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        yield client
