"""A whole conversation as one JSON document: export, and import into an identical graph.

The same document is how the analysis pipeline delivers an analysed conversation. Inside a document
the `id` of every utterance, node, relationship, cluster and edit is a reference: any unique string
(the export writes the stored UUIDs). On import every reference is remapped to a fresh UUID,
consistently in every field that points at it, so a document can be imported next to the
conversation it came from, or twice; with `preserve_ids` the references must be UUIDs and are kept
(restoring a purged conversation), and a document holding an id already stored anywhere is refused
whole, with one answer that does not depend on whose row holds the id (see `_refuse_taken_ids`).
Ids that point outside the conversation (chunks, threads, claims) are kept as they are. Counters
are recomputed, never trusted from the document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    DateTime,
    Float,
    Integer,
    Text,
    any_,
    bindparam,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiCall, Cluster, Conversation, Edit, Node, Relationship, Utterance
from graph.errors import ErrorCode, InvalidInput, UserFacingError, camel, from_database_error
from graph.services.clusters import check_cluster_values
from graph.services.common import (
    Actor,
    check_json,
    check_text,
    check_unit_interval,
    lock_conversation,
    snapshot,
    word_count,
)
from graph.services.conversations import _check_conversation, _check_utterance
from graph.services.nodes import check_node_values
from graph.services.relationships import check_relationship_values

FORMAT = "lct-graph.conversation"
VERSION = 1
MAX_ROWS = 200_000
ID_TAKEN = (
    "An id in this document is already in use. Import it without preserveIds to store it under"
    " fresh ids."
)

CONVERSATION_SKIP = {
    "id",
    "owner_id",
    "shared_with",
    "deleted_at",
    "updated_at",
    "tsv_search",
    "total_utterances",
    "total_words",
    "total_nodes",
    "total_claims",
}
ROW_SKIP = {"conversation_id", "updated_at", "tsv_search"}

# Columns that hold references to rows of the document (remapped), per section.
REFERENCES: dict[str, dict[str, str]] = {
    "utterances": {"id": "utterances", "node_id": "nodes"},
    "nodes": {
        "id": "nodes",
        "parent_id": "nodes",
        "predecessor_id": "nodes",
        "successor_id": "nodes",
        "children_ids": "nodes",
        "utterance_ids": "utterances",
    },
    "relationships": {
        "id": "relationships",
        "from_node_id": "nodes",
        "to_node_id": "nodes",
        "supporting_utterance_ids": "utterances",
    },
    "clusters": {
        "id": "clusters",
        "parent_cluster_id": "clusters",
        "node_ids": "nodes",
        "child_cluster_ids": "clusters",
    },
    "edits": {"id": "edits", "target_id": "*"},
}
MODELS: dict[str, Any] = {
    "utterances": Utterance,
    "nodes": Node,
    "relationships": Relationship,
    "clusters": Cluster,
    "edits": Edit,
}
ORDER: dict[str, Any] = {
    "utterances": (Utterance.sequence_number,),
    "nodes": (Node.created_at, Node.id),
    "relationships": (Relationship.created_at, Relationship.id),
    "clusters": (Cluster.level, Cluster.created_at, Cluster.id),
    "edits": (Edit.created_at, Edit.id),
}


async def export_conversation(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> dict[str, Any]:
    conversation = await lock_conversation(
        session, conversation_id, actor.user_id, include_deleted=True
    )
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "conversation": {
            key: value
            for key, value in snapshot(conversation).items()
            if key not in {camel(name) for name in CONVERSATION_SKIP}
        },
    }
    for section, model in MODELS.items():
        rows = (
            await session.execute(
                select(model)
                .where(model.conversation_id == conversation.id)
                .order_by(*ORDER[section])
            )
        ).scalars()
        document[section] = [
            {key: value for key, value in snapshot(row).items() if key not in _skipped()}
            for row in rows
        ]
    return document


def _skipped() -> set[str]:
    return {camel(name) for name in ROW_SKIP}


class _Reader:
    """Turns a document section's JSON rows into column values, naming the offending field."""

    def __init__(self, preserve_ids: bool) -> None:
        self.preserve_ids = preserve_ids
        self.ids: dict[str, dict[str, uuid.UUID]] = {section: {} for section in MODELS}
        self.everything: dict[str, uuid.UUID] = {}

    def new_id(self, section: str, reference: Any, path: str) -> uuid.UUID:
        if not isinstance(reference, str) or not reference:
            raise InvalidInput("id must be a non-empty string.", field=path)
        if reference in self.everything:
            raise InvalidInput(
                "Two objects in the document share this id.", field=path, code=ErrorCode.DUPLICATE
            )
        value = _uuid(reference, path) if self.preserve_ids else uuid.uuid4()
        self.ids[section][reference] = value
        self.everything[reference] = value
        return value

    def resolve(self, section: str, reference: Any, path: str) -> uuid.UUID:
        table = self.everything if section == "*" else self.ids[section]
        if isinstance(reference, str) and reference in table:
            return table[reference]
        if section == "*":  # an edit of something since deleted keeps its original target id
            return _uuid(reference, path)
        raise InvalidInput(
            f"This refers to no {section[:-1]} in the document.",
            field=path,
            code=ErrorCode.NOT_FOUND,
        )

    def row(self, section: str, item: Any, path: str) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise InvalidInput("Each entry must be an object.", field=path)
        model = MODELS[section]
        columns = {column.key: column for column in model.__table__.columns}
        references = REFERENCES[section]
        values: dict[str, Any] = {}
        for key, raw in item.items():
            name = _snake(key)
            field = f"{path}.{key}"
            if name == "id":
                continue
            if name not in columns or name in ROW_SKIP:
                raise InvalidInput(f"Unknown field {key}.", field=field)
            if name in references:
                target = references[name]
                if raw is None:
                    values[name] = None
                elif isinstance(raw, list):
                    values[name] = [
                        self.resolve(target, element, f"{field}[{index}]")
                        for index, element in enumerate(raw)
                    ]
                else:
                    values[name] = self.resolve(target, raw, field)
            else:
                values[name] = _decode(columns[name].type, raw, field)
        return values


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _uuid(raw: Any, path: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput("Not a UUID.", field=path) from None


def _decode(kind: Any, raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if isinstance(kind, ARRAY):
        if not isinstance(raw, list):
            raise InvalidInput("Expected a list.", field=path)
        return [_decode(kind.item_type, item, f"{path}[{index}]") for index, item in enumerate(raw)]
    if isinstance(kind, UUID):
        return _uuid(raw, path)
    if isinstance(kind, DateTime):
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            raise InvalidInput("Expected an ISO 8601 date and time.", field=path) from None
        if value.tzinfo is None:
            raise InvalidInput("The date and time needs a UTC offset.", field=path)
        return value
    if isinstance(kind, Boolean):
        if not isinstance(raw, bool):
            raise InvalidInput("Expected true or false.", field=path)
        return raw
    if isinstance(kind, Integer):
        if isinstance(raw, bool) or not isinstance(raw, int) or not -(2**31) <= raw < 2**31:
            raise InvalidInput("Expected a 32-bit integer.", field=path)
        return raw
    if isinstance(kind, Float):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InvalidInput("Expected a number.", field=path)
        return float(raw)
    if isinstance(kind, Text):
        if not isinstance(raw, str):
            raise InvalidInput("Expected a string.", field=path)
        check_text(raw, path)
        return raw
    if isinstance(kind, JSONB):
        check_json(raw, path)
        return raw
    raise InvalidInput("Unsupported value.", field=path)


def _section(document: dict[str, Any], name: str) -> list[Any]:
    items = document.get(name) or []
    if not isinstance(items, list):
        raise InvalidInput(f"{name} must be a list.", field=name)
    return items


async def import_conversation(
    session: AsyncSession, actor: Actor, document: Any, *, preserve_ids: bool = False
) -> tuple[Conversation, dict[str, uuid.UUID]]:
    """Creates the conversation of `document` with everything in it; returns it and the map from
    document references to stored ids."""
    if not isinstance(document, dict):
        raise InvalidInput("The document must be a JSON object.", field="document")
    if document.get("format", FORMAT) != FORMAT or document.get("version", VERSION) != VERSION:
        raise InvalidInput(
            f"Only documents of format {FORMAT} version {VERSION} can be imported.",
            field="document.format",
        )
    sections = {name: _section(document, name) for name in MODELS}
    if sum(len(items) for items in sections.values()) > MAX_ROWS:
        raise InvalidInput(
            f"A document may hold at most {MAX_ROWS} rows.",
            field="document",
            code=ErrorCode.OUT_OF_RANGE,
        )
    reader = _Reader(preserve_ids)
    meta = document.get("conversation")
    if not isinstance(meta, dict):
        raise InvalidInput("conversation must be an object.", field="conversation")
    conversation_columns = {column.key: column for column in Conversation.__table__.columns}
    conversation_values: dict[str, Any] = {}
    for key, raw in meta.items():
        name = _snake(key)
        if name in CONVERSATION_SKIP:
            continue
        if name not in conversation_columns:
            raise InvalidInput(f"Unknown field {key}.", field=f"conversation.{key}")
        conversation_values[name] = _decode(
            conversation_columns[name].type, raw, f"conversation.{key}"
        )
    for required in ("conversation_name", "conversation_type", "source_type", "started_at"):
        if conversation_values.get(required) is None:
            raise InvalidInput(
                f"{camel(required)} is required.",
                field=f"conversation.{camel(required)}",
                code=ErrorCode.REQUIRED,
            )
    try:
        _check_conversation(conversation_values)
    except InvalidInput as error:
        error.field = f"conversation.{error.field}"
        raise
    # References first, so that rows may point forwards and backwards.
    for name, items in sections.items():
        for index, item in enumerate(items):
            reference = item.get("id") if isinstance(item, dict) else None
            reader.new_id(name, reference, f"{name}[{index}].id")
    rows = {
        name: [
            {"id": reader.ids[name][item["id"]], **reader.row(name, item, f"{name}[{index}]")}
            for index, item in enumerate(items)
        ]
        for name, items in sections.items()
    }
    for name, section_rows in rows.items():
        for index, row in enumerate(section_rows):
            _fill_required(name, row)
            CHECKS[name](row, f"{name}[{index}].")
    _as_history(rows["edits"])
    _check_graph(rows)
    conversation_id = (
        _uuid(meta.get("id"), "conversation.id")
        if preserve_ids and meta.get("id")
        else uuid.uuid4()
    )
    if preserve_ids:
        await _refuse_taken_ids(session, [conversation_id, *reader.everything.values()])
    utterances = rows["utterances"]
    conversation = Conversation(
        id=conversation_id,
        owner_id=actor.user_id,
        total_utterances=len(utterances),
        total_words=sum(word_count(row.get("text")) for row in utterances),
        total_nodes=len(rows["nodes"]),
        **conversation_values,
    )
    session.add(conversation)
    try:
        await session.flush()
    except DBAPIError as error:
        located = _at_path(error, "conversation.")
        if located is None:
            raise
        raise located from error
    await lock_conversation(session, conversation.id, actor.user_id)
    # Self references go in after every row exists.
    deferred = {
        "utterances": ("node_id",),
        "nodes": ("parent_id", "predecessor_id", "successor_id"),
        "clusters": ("parent_cluster_id",),
    }
    for name in ("utterances", "nodes", "relationships", "clusters", "edits"):
        later = deferred.get(name, ())
        batch = [
            {
                "conversation_id": conversation.id,
                **{key: value for key, value in row.items() if key not in later},
            }
            for row in rows[name]
        ]
        if name == "nodes":
            for row in batch:
                row.setdefault("chunk_ids", [])
        if name == "clusters":
            for row in batch:
                row.setdefault("node_ids", [])
        if batch:
            await _insert_section(session, name, batch)
    for name, columns in deferred.items():
        model = MODELS[name]
        changes = [
            {"row_id": row["id"], **{column: row.get(column) for column in columns}}
            for row in rows[name]
            if any(row.get(column) is not None for column in columns)
        ]
        if changes:
            await session.execute(
                update(model.__table__)
                .where(model.__table__.c.id == bindparam("row_id"))
                .values({column: bindparam(column) for column in columns}),
                changes,
            )
    await session.flush()
    mapping = {reference: value for reference, value in reader.everything.items()}
    return conversation, mapping


async def _refuse_taken_ids(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    """Refuses the import when any of `ids` is already stored, in any table of any conversation.

    Left to the primary keys, a clash surfaced at whichever insert hit it, and an id taken in
    another table (an utterance's id given to a node) went through. Checked here in one statement,
    whoever owns the row, visible to the caller or not, deleted or not, and answered without naming
    the id: the same answer and statement count for an id of the caller's own conversation and one
    of a stranger's private conversation. That some row somewhere holds the id stays observable;
    that is what choosing one's own ids means."""
    candidates = bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=True)))
    tables = (Conversation, Utterance, Node, Relationship, Cluster, Edit, ApiCall)
    taken = await session.scalar(
        select(or_(*(exists().where(table.id == any_(candidates)) for table in tables)))
    )
    if taken:
        raise InvalidInput(ID_TAKEN, field="document", code=ErrorCode.DUPLICATE)


def _check_edit(values: dict[str, Any], prefix: str) -> None:
    check_text(values.get("user_id"), prefix + "userId", required=True)
    check_text(values.get("field_name"), prefix + "fieldName", required=True)
    check_unit_interval(values.get("user_confidence"), prefix + "userConfidence")


# The checks the mutations that create each kind of row apply, given the row's document path.
CHECKS: dict[str, Any] = {
    "utterances": _check_utterance,
    "nodes": check_node_values,
    "relationships": check_relationship_values,
    "clusters": check_cluster_values,
    "edits": _check_edit,
}


def _as_history(edits: list[dict[str, Any]]) -> None:
    """Imported edits are history, not corrections made here: they keep who made them and what
    they changed, but count as exported already, so `exportTrainingEdits` never returns them. A
    document is whatever its sender wrote: it could otherwise put corrections under anyone's name
    into training data, or hand back ones that were exported before. The dataset an edit went to
    is kept only when the document says it was exported."""
    for row in edits:
        if not row.get("exported_for_training"):
            row["training_dataset_id"] = None
        row["exported_for_training"] = True


def _at_path(error: DBAPIError, path: str) -> UserFacingError | None:
    """The typed error for a violation PostgreSQL caught in the row at `path` (`nodes[3].`)."""
    mapped = from_database_error(error)
    if mapped is not None:
        mapped.field = path + mapped.field if mapped.field else path.rstrip(".")
    return mapped


async def _insert_section(session: AsyncSession, section: str, batch: list[dict[str, Any]]) -> None:
    """Inserts a section's rows; when PostgreSQL refuses the batch, finds the row it refused so the
    error names its document path. The search (one row at a time, each in a savepoint) runs only
    on failure; a refused id stays unattributed (see `_refuse_taken_ids`)."""
    try:
        async with session.begin_nested():
            await _insert(session, MODELS[section], batch)
    except DBAPIError as error:
        mapped = from_database_error(error)
        if mapped is None:
            raise
        if mapped.field == "id" and mapped.code is ErrorCode.DUPLICATE:
            raise mapped from error
        for index, row in enumerate(batch):
            try:
                async with session.begin_nested():
                    await _insert(session, MODELS[section], [row])
            except DBAPIError as row_error:
                located = _at_path(row_error, f"{section}[{index}].")
                if located is None:
                    raise
                raise located from row_error
        raise mapped from error


def _fill_required(section: str, row: dict[str, Any]) -> None:
    """Server defaults apply to absent keys only when every row of the batch lacks them; give
    the columns a document may leave out their defaults explicitly."""
    defaults: dict[str, dict[str, Any]] = {
        "nodes": {"node_type": "conversational_thread", "level": 1, "children_ids": []},
        "relationships": {"strength": 1.0, "confidence": 1.0, "is_bidirectional": False},
        "clusters": {"auto_generated": True, "child_cluster_ids": []},
        "edits": {"user_confidence": 1.0, "exported_for_training": False},
        "utterances": {"language": "en"},
    }
    for key, value in defaults.get(section, {}).items():
        if row.get(key) is None:
            row[key] = value


async def _insert(session: AsyncSession, model: Any, batch: list[dict[str, Any]]) -> None:
    """Bulk insert; absent or null `created_at` keeps the database default, so rows are grouped by
    the columns they carry (one executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in batch:
        if row.get("created_at") is None:
            row.pop("created_at", None)
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for keys, group in groups.items():
        await session.execute(
            insert(model.__table__), [{key: row.get(key) for key in keys} for row in group]
        )


def _check_graph(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The consistency rules a hand-made document could break."""
    nodes = {row["id"]: (index, row) for index, row in enumerate(rows["nodes"])}
    for node_id, (index, row) in nodes.items():
        seen = {node_id}
        parent = row.get("parent_id")
        while parent is not None:
            if parent in seen:
                raise InvalidInput(
                    "The node hierarchy loops.",
                    field=f"nodes[{index}].parentId",
                    code=ErrorCode.CYCLE,
                )
            seen.add(parent)
            parent = nodes[parent][1].get("parent_id")
    # children_ids follow parent_id; the document's order is kept where it agrees.
    for node_id, (_index, row) in nodes.items():
        children = [
            child
            for child in row.get("children_ids") or []
            if nodes.get(child, (0, {}))[1].get("parent_id") == node_id
        ]
        children += [
            other
            for other, (_i, other_row) in nodes.items()
            if other_row.get("parent_id") == node_id and other not in children
        ]
        row["children_ids"] = children
    # The chain follows predecessor_id.
    successors: dict[uuid.UUID, uuid.UUID] = {}
    for node_id, (index, row) in nodes.items():
        predecessor = row.get("predecessor_id")
        if predecessor is None:
            continue
        if predecessor == node_id or predecessor in successors:
            raise InvalidInput(
                "Two nodes follow the same predecessor, or a node follows itself.",
                field=f"nodes[{index}].predecessorId",
            )
        successors[predecessor] = node_id
    for node_id, (_index, row) in nodes.items():
        row["successor_id"] = successors.get(node_id)
    clusters = {row["id"]: (index, row) for index, row in enumerate(rows["clusters"])}
    for cluster_id, (index, row) in clusters.items():
        seen = {cluster_id}
        parent = row.get("parent_cluster_id")
        while parent is not None:
            if parent in seen:
                raise InvalidInput(
                    "The cluster hierarchy loops.",
                    field=f"clusters[{index}].parentClusterId",
                    code=ErrorCode.CYCLE,
                )
            seen.add(parent)
            parent = clusters[parent][1].get("parent_cluster_id")
    for cluster_id, (_index, row) in clusters.items():
        children = [
            c
            for c in row.get("child_cluster_ids") or []
            if clusters.get(c, (0, {}))[1].get("parent_cluster_id") == cluster_id
        ]
        children += [
            other
            for other, (_i, other_row) in clusters.items()
            if other_row.get("parent_cluster_id") == cluster_id and other not in children
        ]
        row["child_cluster_ids"] = children
    for index, row in enumerate(rows["clusters"]):
        members = row.get("node_ids") or []
        if len(set(members)) != len(members):
            raise InvalidInput(
                "A node is listed twice.",
                field=f"clusters[{index}].nodeIds",
                code=ErrorCode.DUPLICATE,
            )
    # An utterance belongs to one node. Nodes' utteranceIds and utterances' nodeId state that one
    # fact from either side: each completes the other, and they may not contradict each other.
    owner: dict[uuid.UUID, uuid.UUID] = {}
    for node_id, (index, row) in nodes.items():
        for position, utterance_id in enumerate(row.get("utterance_ids") or []):
            if utterance_id in owner:
                raise InvalidInput(
                    "This utterance is already listed by a node; it can belong to one only.",
                    field=f"nodes[{index}].utteranceIds[{position}]",
                    code=ErrorCode.DUPLICATE,
                )
            owner[utterance_id] = node_id
    for index, row in enumerate(rows["utterances"]):
        claimed, listed_by = row.get("node_id"), owner.get(row["id"])
        if claimed is None:
            row["node_id"] = listed_by
        elif listed_by is None:
            node = nodes[claimed][1]
            node["utterance_ids"] = [*(node.get("utterance_ids") or []), row["id"]]
        elif listed_by != claimed:
            raise InvalidInput(
                "nodeId names a node whose utteranceIds do not list this utterance.",
                field=f"utterances[{index}].nodeId",
            )
