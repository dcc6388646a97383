"""A conversation as an Obsidian JSON Canvas 1.0 document (jsoncanvas.org), and back.

Export: every node is a text card at its stored position and size, its name a heading and its
summary the body (Markdown); every cluster a group around its members' cards; every relationship
between two exported cards an edge labelled with its type, coloured by type, with an arrow at its
`to` end (and at both ends when it is bidirectional). Ids are the rows' ids and every list has a
fixed order, so two exports of an unchanged graph are byte-identical.

Apply: an edited canvas comes back whole. Cards moved or resized become one `move_nodes` call
(logged as canvas edits), edited text becomes node corrections, edges added or removed between two
cards of the canvas become relationships created or deleted, and a changed label or arrow updates
the relationship. Everything runs in the caller's transaction through the write services, which
log every change in `edits_log`. Groups are derived from clusters: they are checked but their own
edits are ignored. A card missing from the canvas is left alone (delete nodes with `deleteNode`).
Problems are `DomainError`s whose `field` is the JSON path of the offending value
(`nodes[3].x`, `edges[0].toNode`), raised before anything is written where the document alone
shows them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Executable, Row, select

from db.models import Cluster, Conversation, Node, Relationship
from graph.filters import NodeFilter, nodes
from graph.permissions import visible_to
from graph.services import nodes as node_service
from graph.services import relationships as relationship_service
from graph.services.common import Actor, lock_conversation, lock_rows
from graph.services.errors import DomainError, ErrorCode, InvalidInput, NotFound

Fetch = Callable[[Executable], Awaitable[list[Row[Any]]]]
T = TypeVar("T")

# Cards and edges beyond which building or reading a canvas runs in a worker thread (~10 ms).
OFF_THE_LOOP_ITEMS = 500

DEFAULT_WIDTH, DEFAULT_HEIGHT = 350, 200
# Cards without a stored position are laid out on a grid, in timeline order.
GRID_COLUMNS, GRID_X, GRID_Y = 10, 400, 260
GROUP_PADDING, GROUP_LABEL_ROOM = 40, 40
NODE_TYPES = ("text", "file", "link", "group")
EDGE_SIDES = ("top", "right", "bottom", "left")
EDGE_ENDS = ("none", "arrow")
COLOR = re.compile(r"[1-6]|#[0-9a-fA-F]{6}")
# JSON Canvas preset colours: 1 red, 2 orange, 3 yellow, 4 green, 5 cyan, 6 purple.
TYPE_COLORS = {
    "contradicts": "1",
    "crux": "1",
    "diverges": "2",
    "questions": "3",
    "supports": "4",
    "resolves": "4",
    "answers": "5",
    "elaborates": "6",
    "builds_on": "6",
}
# The type of a relationship drawn in Obsidian without a label.
DEFAULT_RELATIONSHIP_TYPE = "contextual_related"
GEOMETRY = {"x": "canvas_x", "y": "canvas_y", "width": "canvas_width", "height": "canvas_height"}
MOVE_FIELD = re.compile(r"moves\[(\d+)\]\.(\w+)")


def edge_color(relationship_type: str) -> str:
    """A preset colour per type; types without one get a stable preset from their name."""
    return TYPE_COLORS.get(relationship_type) or str(1 + zlib.crc32(relationship_type.encode()) % 6)


def card_text(name: str, summary: str) -> str:
    return f"# {name}\n\n{summary}"


def parse_card_text(text: str) -> tuple[str, str] | None:
    """(name, summary) from a card written as `card_text` writes it; None when not in that form."""
    heading, _, summary = text.partition("\n")
    if not heading.startswith("# "):
        return None
    return heading[2:].strip(), summary.strip("\n")


# -- Export ----------------------------------------------------------------------------------------


async def export_canvas(
    fetch: Fetch,
    viewer_id: str | None,
    conversation_id: uuid.UUID,
    node_filter: NodeFilter = NodeFilter(),  # noqa: B008 (frozen, so safely shared)
) -> dict[str, Any] | None:
    """The conversation's canvas, or None when it does not exist or the viewer may not read it."""
    visible = await fetch(
        select(Conversation.id).where(Conversation.id == conversation_id, visible_to(viewer_id))
    )
    if not visible:
        return None
    node_rows = await fetch(
        select(
            nodes.c.id,
            nodes.c.node_name,
            nodes.c.summary,
            nodes.c.canvas_x,
            nodes.c.canvas_y,
            nodes.c.canvas_width,
            nodes.c.canvas_height,
        )
        .where(nodes.c.conversation_id == conversation_id, *node_filter.conditions())
        .order_by(nodes.c.timestamp_start.asc().nulls_last(), nodes.c.created_at, nodes.c.id)
    )
    relationship_rows = await fetch(
        select(
            Relationship.id,
            Relationship.from_node_id,
            Relationship.to_node_id,
            Relationship.relationship_type,
            Relationship.is_bidirectional,
        )
        .where(Relationship.conversation_id == conversation_id)
        .order_by(Relationship.created_at, Relationship.id)
    )
    cluster_rows = await fetch(
        select(Cluster.id, Cluster.cluster_name, Cluster.node_ids, Cluster.color)
        .where(Cluster.conversation_id == conversation_id)
        .order_by(Cluster.level, Cluster.created_at, Cluster.id)
    )
    return await off_the_loop(
        build_canvas,
        node_rows,
        relationship_rows,
        cluster_rows,
        size=len(node_rows) + len(relationship_rows),
    )


async def off_the_loop(function: Callable[..., T], *arguments: Any, size: int) -> T:
    """`function(*arguments)`, in a worker thread when `size` makes it a long CPU step, so that
    the event loop goes on serving other requests meanwhile."""
    if size < OFF_THE_LOOP_ITEMS:
        return function(*arguments)
    return await asyncio.to_thread(function, *arguments)


def build_canvas(
    node_rows: list[Any], relationship_rows: list[Any], cluster_rows: list[Any]
) -> dict[str, Any]:
    cards = [text_card(index, row) for index, row in enumerate(node_rows)]
    by_id = {card["id"]: card for card in cards}
    groups = [group for row in cluster_rows if (group := group_around(row, by_id)) is not None]
    groups.sort(key=lambda group: (-group["width"] * group["height"], group["id"]))
    edges = [
        edge(row)
        for row in relationship_rows
        if str(row.from_node_id) in by_id and str(row.to_node_id) in by_id
    ]
    return {"nodes": [*groups, *cards], "edges": edges}


def text_card(index: int, row: Any) -> dict[str, Any]:
    x, y = row.canvas_x, row.canvas_y
    if x is None or y is None:
        x = (index % GRID_COLUMNS) * GRID_X if x is None else x
        y = (index // GRID_COLUMNS) * GRID_Y if y is None else y
    return {
        "id": str(row.id),
        "type": "text",
        "x": x,
        "y": y,
        "width": row.canvas_width or DEFAULT_WIDTH,
        "height": row.canvas_height or DEFAULT_HEIGHT,
        "text": card_text(row.node_name, row.summary),
    }


def group_around(row: Any, cards: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    members = [cards[key] for key in map(str, row.node_ids or ()) if key in cards]
    if not members:
        return None
    left = min(card["x"] for card in members) - GROUP_PADDING
    top = min(card["y"] for card in members) - GROUP_PADDING - GROUP_LABEL_ROOM
    right = max(card["x"] + card["width"] for card in members) + GROUP_PADDING
    bottom = max(card["y"] + card["height"] for card in members) + GROUP_PADDING
    group: dict[str, Any] = {
        "id": str(row.id),
        "type": "group",
        "x": left,
        "y": top,
        "width": right - left,
        "height": bottom - top,
        "label": row.cluster_name,
    }
    if row.color and COLOR.fullmatch(row.color):
        group["color"] = row.color
    return group


def edge(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "fromNode": str(row.from_node_id),
        "fromEnd": "arrow" if row.is_bidirectional else "none",
        "toNode": str(row.to_node_id),
        "toEnd": "arrow",
        "color": edge_color(row.relationship_type),
        "label": row.relationship_type,
    }


# -- Reading an edited canvas ----------------------------------------------------------------------


@dataclass
class Card:
    path: str
    id: uuid.UUID
    geometry: dict[str, int]
    text: str


@dataclass
class Line:
    path: str
    id: str
    from_id: uuid.UUID
    to_id: uuid.UUID
    label: str | None
    bidirectional: bool


@dataclass
class CanvasEdit:
    cards: list[Card] = field(default_factory=list)
    groups: dict[uuid.UUID, str] = field(default_factory=dict)  # cluster id -> path
    lines: list[Line] = field(default_factory=list)


def _integer(item: dict[str, Any], key: str, path: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{path}.{key} must be an integer.", field=f"{path}.{key}")
    return value


def _string(item: dict[str, Any], key: str, path: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidInput(
            f"{path}.{key} must be a non-empty string.",
            field=f"{path}.{key}",
            code=ErrorCode.REQUIRED if value is None else ErrorCode.INVALID,
        )
    return value


def _choice(item: dict[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str | None:
    value = item.get(key)
    if value is not None and value not in choices:
        raise InvalidInput(
            f"{path}.{key} must be one of {', '.join(choices)}.", field=f"{path}.{key}"
        )
    return value


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise InvalidInput(f"{key} must be an array.", field=key)
    return value


def read_canvas(document: Any) -> CanvasEdit:
    """The document checked against JSON Canvas 1.0 and this API's use of it (linear time)."""
    if not isinstance(document, dict):
        raise InvalidInput("The canvas must be a JSON object with `nodes` and `edges`.", field="$")
    edit = CanvasEdit()
    seen: dict[str, str] = {}
    cards: dict[str, Card] = {}
    for index, item in enumerate(_list(document, "nodes")):
        path = f"nodes[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{path} must be an object.", field=path)
        node_id = _string(item, "id", path)
        assert node_id is not None
        if node_id in seen:
            raise InvalidInput(
                f"{path}.id repeats the id of {seen[node_id]}.",
                field=f"{path}.id",
                code=ErrorCode.DUPLICATE,
            )
        seen[node_id] = path
        kind = _choice(item, "type", path, NODE_TYPES)
        geometry = {key: _integer(item, key, path) for key in GEOMETRY}
        for key in ("width", "height"):
            if geometry[key] < 1:
                raise InvalidInput(
                    f"{path}.{key} must be at least 1.",
                    field=f"{path}.{key}",
                    code=ErrorCode.OUT_OF_RANGE,
                )
        color = item.get("color")
        if color is not None and not (isinstance(color, str) and COLOR.fullmatch(color)):
            raise InvalidInput(
                f"{path}.color must be a preset 1-6 or a #rrggbb colour.", field=f"{path}.color"
            )
        if kind is None:
            raise InvalidInput(f"{path}.type is required.", field=f"{path}.type")
        if kind == "text":
            text = _string(item, "text", path, required=False)
            if text is None:
                raise InvalidInput(
                    f"{path}.text is required.", field=f"{path}.text", code=ErrorCode.REQUIRED
                )
            card = Card(path, _row_id(node_id, f"{path}.id", "node"), geometry, text)
            cards[node_id] = card
            edit.cards.append(card)
        elif kind == "group":
            _string(item, "label", path, required=False)
            edit.groups[_row_id(node_id, f"{path}.id", "cluster")] = f"{path}.id"
        else:
            raise NotFound(
                f"{path} is a {kind} node; this conversation has only cards (text nodes) and"
                " groups, so its id is unknown.",
                field=f"{path}.id",
            )
    edge_ids: dict[str, str] = {}
    for index, item in enumerate(_list(document, "edges")):
        path = f"edges[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{path} must be an object.", field=path)
        edge_id = _string(item, "id", path)
        assert edge_id is not None
        if edge_id in edge_ids or edge_id in seen:
            raise InvalidInput(
                f"{path}.id repeats the id of {edge_ids.get(edge_id) or seen[edge_id]}.",
                field=f"{path}.id",
                code=ErrorCode.DUPLICATE,
            )
        edge_ids[edge_id] = path
        ends = {}
        for key in ("fromNode", "toNode"):
            target = _string(item, key, path)
            assert target is not None
            if target not in cards:
                raise NotFound(
                    f"{path}.{key} must be the id of a card (text node) of this canvas.",
                    field=f"{path}.{key}",
                )
            ends[key] = cards[target].id
        for key in ("fromSide", "toSide"):
            _choice(item, key, path, EDGE_SIDES)
        from_end = _choice(item, "fromEnd", path, EDGE_ENDS) or "none"
        to_end = _choice(item, "toEnd", path, EDGE_ENDS) or "arrow"
        color = item.get("color")
        if color is not None and not (isinstance(color, str) and COLOR.fullmatch(color)):
            raise InvalidInput(
                f"{path}.color must be a preset 1-6 or a #rrggbb colour.", field=f"{path}.color"
            )
        label = _string(item, "label", path, required=False)
        edit.lines.append(
            Line(
                path,
                edge_id,
                ends["fromNode"],
                ends["toNode"],
                label.strip() if label and label.strip() else None,
                from_end == "arrow" and to_end == "arrow",
            )
        )
    return edit


def _row_id(value: str, path: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(
            f"{path}: no {what} of this conversation has the id {value[:60]!r}.", field=path
        ) from None


# -- Applying it -----------------------------------------------------------------------------------


@dataclass
class CanvasChanges:
    moved_node_ids: list[uuid.UUID] = field(default_factory=list)
    corrected_node_ids: list[uuid.UUID] = field(default_factory=list)
    created_relationships: list[Relationship] = field(default_factory=list)
    updated_relationship_ids: list[uuid.UUID] = field(default_factory=list)
    deleted_relationship_ids: list[uuid.UUID] = field(default_factory=list)


@contextmanager
def at_path(path: str, rename: Callable[[str | None], str] | None = None) -> Iterator[None]:
    """A service's error re-pointed at the canvas's JSON path."""
    try:
        yield
    except DomainError as error:
        error.field = rename(error.field) if rename is not None else path
        raise


async def apply_canvas(
    session: Any,
    actor: Actor,
    conversation_id: uuid.UUID,
    document: Any,
    base: Any = None,
) -> CanvasChanges:
    """Applies `document`. With `base` (the canvas as exported, before the edit) only what
    differs from `base` is applied, so that changes others made since the export survive;
    without it the canvas is the truth for every card and edge on it."""
    edit = await off_the_loop(read_canvas, document, size=_items(document))
    before: CanvasEdit | None = None
    if base is not None:
        with at_path("", lambda field: f"base.{field}" if field and field != "$" else "base"):
            before = await off_the_loop(read_canvas, base, size=_items(base))
        for card in before.cards:
            card.path = f"base.{card.path}"
    conversation = await lock_conversation(session, conversation_id, actor.user_id)
    card_ids = [card.id for card in edit.cards]
    with at_path("", lambda field: edit.cards[int(field or 0)].path + ".id"):
        stored = await lock_rows(session, Node, conversation, card_ids, "{index}", "node")
    group_ids = list(edit.groups)
    paths = list(edit.groups.values())
    with at_path("", lambda field: paths[int(field or 0)]):
        await lock_rows(session, Cluster, conversation, group_ids, "{index}", "cluster")

    base_cards = {card.id: card for card in before.cards} if before is not None else {}
    changes = CanvasChanges()
    moves: list[node_service.MoveNode] = []
    move_paths: list[str] = []
    corrections: list[tuple[Card, dict[str, Any]]] = []
    for card in edit.cards:
        node = stored[card.id]
        original = base_cards.get(card.id)
        move = {
            column: value
            for key, column in GEOMETRY.items()
            if (value := card.geometry[key]) != getattr(node, column)
            and (original is None or value != original.geometry[key])
        }
        if move:
            moves.append(node_service.MoveNode(node.id, node_service.NodeFields.of(move)))
            move_paths.append(card.path)
        if card.text == card_text(node.node_name, node.summary) or (
            original is not None and card.text == original.text
        ):
            continue
        parsed = _card_fields(card)
        unchanged = _card_fields(original) if original is not None else None
        values = {
            key: value
            for key, value in parsed.items()
            if value != getattr(node, key) and (unchanged is None or value != unchanged.get(key))
        }
        if values:
            corrections.append((card, values))

    def move_path(service_field: str | None) -> str:
        match = MOVE_FIELD.fullmatch(service_field or "")
        if match is None:
            return move_paths[0] if move_paths else "nodes"
        key = {column: key for key, column in GEOMETRY.items()}
        column = re.sub(r"(?<!^)([A-Z])", r"_\1", match.group(2)).lower()
        return f"{move_paths[int(match.group(1))]}.{key.get(column, 'id')}"

    if moves:
        with at_path("", move_path):
            await node_service.move_nodes(session, actor, moves)
        changes.moved_node_ids = [move.id for move in moves]
    for card, values in corrections:
        with at_path(f"{card.path}.text"):
            await node_service.update_node(
                session,
                actor,
                node_service.UpdateNode(card.id, None, node_service.NodeFields.of(values)),
            )
        changes.corrected_node_ids.append(card.id)

    await _apply_edges(session, actor, conversation, edit, before, card_ids, changes)
    return changes


def _items(document: Any) -> int:
    """How many nodes and edges a document holds, whatever its shape."""
    if not isinstance(document, dict):
        return 0
    return sum(
        len(value) for key in ("nodes", "edges") if isinstance(value := document.get(key), list)
    )


def _card_fields(card: Card) -> dict[str, str]:
    parsed = parse_card_text(card.text)
    if parsed is None:
        raise InvalidInput(
            f"{card.path}.text must start with a `# ` heading (the node's name), then a blank"
            " line and the summary.",
            field=f"{card.path}.text",
        )
    return {"node_name": parsed[0], "summary": parsed[1]}


async def _apply_edges(
    session: Any,
    actor: Actor,
    conversation: Conversation,
    edit: CanvasEdit,
    before: CanvasEdit | None,
    card_ids: list[uuid.UUID],
    changes: CanvasChanges,
) -> None:
    on_canvas = set(card_ids)
    existing = {
        row.id: row
        for row in (
            await session.execute(
                select(Relationship)
                .where(Relationship.conversation_id == conversation.id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
        if row.from_node_id in on_canvas and row.to_node_id in on_canvas
    }
    base_lines = {line.id: line for line in before.lines} if before is not None else None
    kept: set[uuid.UUID] = set()
    created: list[Line] = []
    for line in edit.lines:
        original = base_lines.get(line.id) if base_lines is not None else None
        relationship = existing.get(_maybe_uuid(line.id))
        ends = (line.from_id, line.to_id)
        if relationship is None or (relationship.from_node_id, relationship.to_node_id) != ends:
            if original is not None and (original.from_id, original.to_id) == ends:
                continue  # unchanged here, deleted or re-attached by someone else since
            created.append(line)  # new, or re-attached: the old one goes unless kept elsewhere
            continue
        kept.add(relationship.id)
        values: dict[str, Any] = {}
        if (
            line.label is not None
            and line.label != relationship.relationship_type
            and (original is None or line.label != original.label)
        ):
            values["relationship_type"] = line.label
        if line.bidirectional != bool(relationship.is_bidirectional) and (
            original is None or line.bidirectional != original.bidirectional
        ):
            values["is_bidirectional"] = line.bidirectional
        if values:
            with at_path(f"{line.path}.label"):
                await relationship_service.update_relationship(
                    session,
                    actor,
                    relationship_service.UpdateRelationship(
                        relationship.id, None, relationship_service.RelationshipFields(**values)
                    ),
                )
            changes.updated_relationship_ids.append(relationship.id)
    removed = existing.keys() - kept
    if base_lines is not None:  # only what was on the exported canvas can have been removed
        removed = {item for item in removed if str(item) in base_lines}
    for relationship_id in sorted(removed):  # in id order, as rows are locked
        await relationship_service.delete_relationship(session, actor, relationship_id)
        changes.deleted_relationship_ids.append(relationship_id)
    for line in created:
        with at_path(f"{line.path}.label"):
            relationship = await relationship_service.create_relationship(
                session,
                actor,
                relationship_service.CreateRelationship(
                    line.from_id,
                    line.to_id,
                    relationship_service.RelationshipFields(
                        relationship_type=line.label or DEFAULT_RELATIONSHIP_TYPE,
                        is_bidirectional=line.bidirectional,
                    ),
                ),
            )
        changes.created_relationships.append(relationship)


def _maybe_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None  # drawn in Obsidian: a new edge
