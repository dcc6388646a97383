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

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
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
    text,
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
from graph.services.hierarchy import in_listed_order
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
        self.columns = {
            section: {column.key: column for column in model.__table__.columns}
            for section, model in MODELS.items()
        }
        self._snake: dict[str, str] = {}
        self._plans: dict[str, dict[str, tuple[str, str | None, Any]]] = {
            section: {} for section in MODELS
        }

    def snake(self, key: str) -> str:
        """`_snake`, computed once per distinct key of the document."""
        name = self._snake.get(key)
        if name is None:
            name = self._snake[key] = _snake(key)
        return name

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
        plans = self._plans[section]
        values: dict[str, Any] = {}
        for key, raw in item.items():
            plan = plans.get(key)
            if plan is None:
                plan = self._plan(section, key, path)
            name, target, decode = plan
            if name == "id":
                continue
            # Paths are built only for an error: the checks are pure, so the failing one is
            # run again with the value's path.
            try:
                values[name] = self._value(target, decode, raw, "")
            except InvalidInput:
                self._value(target, decode, raw, f"{path}.{key}")
                raise
        return values

    def _value(self, target: str | None, decode: Any, raw: Any, field: str) -> Any:
        if target is None:
            return decode(raw, field)
        if raw is None:
            return None
        if isinstance(raw, list):
            return [
                self.resolve(target, element, field and f"{field}[{index}]")
                for index, element in enumerate(raw)
            ]
        return self.resolve(target, raw, field)

    def _plan(self, section: str, key: str, path: str) -> tuple[str, str | None, Any]:
        """How a key of the section's rows is read: its column, the section its references
        point into (None for a plain value), and the plain value's decoder."""
        name = self.snake(key)
        columns = self.columns[section]
        if name != "id" and (name not in columns or name in ROW_SKIP):
            raise InvalidInput(f"Unknown field {key}.", field=f"{path}.{key}")
        target = REFERENCES[section].get(name)
        decode = _decoder(columns[name].type) if target is None else None
        plan = self._plans[section][key] = (name, target, decode)
        return plan


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _uuid(raw: Any, path: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput("Not a UUID.", field=path) from None


def _decode(kind: Any, raw: Any, path: str) -> Any:
    return _decoder(kind)(raw, path)


def _decoder(kind: Any) -> Callable[[Any, str], Any]:
    """The function that checks a JSON value for a column of type `kind` and converts it."""
    if isinstance(kind, ARRAY):
        decode_item = _decoder(kind.item_type)

        def decode_list(raw: Any, path: str) -> Any:
            if raw is None:
                return None
            if not isinstance(raw, list):
                raise InvalidInput("Expected a list.", field=path)
            return [decode_item(item, f"{path}[{index}]") for index, item in enumerate(raw)]

        return decode_list
    for types, decode in _DECODERS:
        if isinstance(kind, types):
            return decode
    return _unsupported


def _decode_uuid(raw: Any, path: str) -> Any:
    return None if raw is None else _uuid(raw, path)


def _decode_datetime(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise InvalidInput("Expected an ISO 8601 date and time.", field=path) from None
    if value.tzinfo is None:
        raise InvalidInput("The date and time needs a UTC offset.", field=path)
    return value


def _decode_boolean(raw: Any, path: str) -> Any:
    if raw is not None and not isinstance(raw, bool):
        raise InvalidInput("Expected true or false.", field=path)
    return raw


def _decode_integer(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not -(2**31) <= raw < 2**31:
        raise InvalidInput("Expected a 32-bit integer.", field=path)
    return raw


def _decode_float(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidInput("Expected a number.", field=path)
    return float(raw)


def _decode_text(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("Expected a string.", field=path)
    check_text(raw, path)
    return raw


def _decode_json(raw: Any, path: str) -> Any:
    if raw is not None:
        check_json(raw, path)
    return raw


def _unsupported(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    raise InvalidInput("Unsupported value.", field=path)


_DECODERS: tuple[tuple[type[Any], Callable[[Any, str], Any]], ...] = (
    (UUID, _decode_uuid),
    (DateTime, _decode_datetime),
    (Boolean, _decode_boolean),
    (Integer, _decode_integer),
    (Float, _decode_float),
    (Text, _decode_text),
    (JSONB, _decode_json),
)


def _section(document: dict[str, Any], name: str) -> list[Any]:
    items = document.get(name) or []
    if not isinstance(items, list):
        raise InvalidInput(f"{name} must be a list.", field=name)
    return items


@dataclass
class _Section:
    """A section's rows ready for `COPY`: one group per set of columns, each row with its index in
    the document (for error paths) and its values as a record."""

    name: str
    rows: list[dict[str, Any]]
    groups: dict[tuple[str, ...], list[tuple[int, tuple[Any, ...]]]] = dataclasses.field(
        default_factory=dict
    )


@dataclass
class _Prepared:
    """Everything `import_conversation` writes, checked and converted off the event loop."""

    conversation_id: uuid.UUID
    conversation_values: dict[str, Any]
    sections: dict[str, _Section]
    stored_ids: list[uuid.UUID]
    id_map: dict[str, str]
    total_utterances: int
    total_words: int
    total_nodes: int
    # per table, the self references set once every row exists: "id" and each column, a list
    deferred: dict[str, dict[str, list[Any]]]


# Self references go in after every row of their table exists; utterances.node_id is not one:
# nodes are written first.
DEFERRED = {
    "nodes": ("parent_id", "predecessor_id", "successor_id"),
    "clusters": ("parent_cluster_id",),
}
WRITE_ORDER = ("nodes", "utterances", "relationships", "clusters", "edits")
COPY_ROWS = 500


async def import_conversation(
    session: AsyncSession, actor: Actor, document: Any, *, preserve_ids: bool = False
) -> tuple[Conversation, dict[str, str]]:
    """Creates the conversation of `document` with everything in it; returns it and the map from
    document references to stored ids.

    Work is linear in the document's size. Checking and converting it is pure Python and runs in
    a worker thread (`_prepare`), so the event loop keeps serving other clients; the rows go in
    by `COPY`, `COPY_ROWS` per statement. The document is left as it was (an operation may pass
    the same variable to two imports)."""
    prepared = await asyncio.to_thread(_prepare, document, preserve_ids)
    try:
        return await _write(session, actor, prepared, preserve_ids), prepared.id_map
    finally:
        await _release([prepared.stored_ids, *_lists_of(prepared)])


async def _write(
    session: AsyncSession, actor: Actor, prepared: _Prepared, preserve_ids: bool
) -> Conversation:
    if preserve_ids:
        await _refuse_taken_ids(session, prepared.stored_ids)
    conversation = Conversation(
        id=prepared.conversation_id,
        owner_id=actor.user_id,
        total_utterances=prepared.total_utterances,
        total_words=prepared.total_words,
        total_nodes=prepared.total_nodes,
        **prepared.conversation_values,
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
    driver = await _driver_connection(session)
    for name in WRITE_ORDER:
        await _copy_section(session, driver, prepared.sections[name])
    for name, columns in prepared.deferred.items():
        if columns["id"]:
            await _set_references(session, name, columns)
    await session.flush()
    return conversation


def _prepare(document: Any, preserve_ids: bool) -> _Prepared:
    """Checks `document` and turns it into rows; raises `InvalidInput` naming the JSON path of the
    first problem. Every step is a pass over the rows with dict and set look-ups."""
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
        name = reader.snake(key)
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
        check = CHECKS[name]
        for index, row in enumerate(section_rows):
            _fill_required(name, row)
            check(row, f"{name}[{index}].")
    _as_history(rows["edits"])
    _check_graph(rows)
    conversation_id = (
        _uuid(meta.get("id"), "conversation.id")
        if preserve_ids and meta.get("id")
        else uuid.uuid4()
    )
    deferred = {name: _deferred_columns(rows[name], columns) for name, columns in DEFERRED.items()}
    return _Prepared(
        conversation_id=conversation_id,
        conversation_values=conversation_values,
        sections={
            name: _records(name, section_rows, conversation_id)
            for name, section_rows in rows.items()
        },
        stored_ids=[conversation_id, *reader.everything.values()],
        id_map={reference: str(value) for reference, value in reader.everything.items()},
        total_utterances=len(rows["utterances"]),
        total_words=sum(word_count(row.get("text")) for row in rows["utterances"]),
        total_nodes=len(rows["nodes"]),
        deferred=deferred,
    )


def _deferred_columns(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> dict[str, list[Any]]:
    """The rows that carry a self reference, column by column (for one `unnest` update), taken out
    of the rows so that the `COPY` leaves them null."""
    changes: dict[str, list[Any]] = {"id": [], **{column: [] for column in columns}}
    for row in rows:
        values = [row.pop(column, None) for column in columns]
        if any(value is not None for value in values):
            changes["id"].append(row["id"])
            for column, value in zip(columns, values, strict=True):
                changes[column].append(value)
    return changes


def _records(section: str, rows: list[dict[str, Any]], conversation_id: uuid.UUID) -> _Section:
    """The section's rows as `COPY` records. A column a row leaves out gets the column's default:
    rows are grouped by the columns with a server default they carry (usually one group)."""
    table = MODELS[section].__table__
    defaulted = {column.key for column in table.columns if column.server_default is not None}
    later = set(DEFERRED.get(section, ()))
    present: set[str] = set()
    for row in rows:
        row["conversation_id"] = conversation_id
        if row.get("created_at") is None:
            row.pop("created_at", None)
        if section == "nodes":
            row.setdefault("chunk_ids", [])
        if section == "clusters":
            row.setdefault("node_ids", [])
        present.update(row)
    plain = sorted(present - defaulted - later)
    optional = sorted(defaulted)
    encoders = {
        column.key: encoder
        for column in table.columns
        if (encoder := _json_encoder(column.type)) is not None
    }
    prepared = _Section(section, rows)
    json_positions_of: dict[tuple[str, ...], list[tuple[int, Any]]] = {}
    for index, row in enumerate(rows):
        columns = (*plain, *(key for key in optional if key in row))
        json_positions = json_positions_of.get(columns)
        if json_positions is None:
            json_positions = json_positions_of[columns] = [
                (position, encoders[name])
                for position, name in enumerate(columns)
                if name in encoders
            ]
        record = tuple(map(row.get, columns))
        if json_positions:
            values = list(record)
            for position, encode in json_positions:
                values[position] = encode(values[position])
            record = tuple(values)
        prepared.groups.setdefault(columns, []).append((index, record))
    return prepared


def _json_encoder(kind: Any) -> Callable[[Any], Any] | None:
    """How a jsonb value goes into a binary `COPY` record: the engine's connections take jsonb as
    JSON text (SQLAlchemy's codec); asyncpg encodes every other type itself (None)."""
    if isinstance(kind, JSONB):
        return lambda value: None if value is None else json.dumps(value)
    if isinstance(kind, ARRAY) and isinstance(kind.item_type, JSONB):
        return lambda value: None if value is None else [json.dumps(item) for item in value]
    return None


async def _driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, in the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _copy_section(session: AsyncSession, driver: Any, section: _Section) -> None:
    """Writes the section with `COPY`, `COPY_ROWS` rows per statement, each in a savepoint. When
    PostgreSQL refuses a statement, its rows are inserted one at a time to find the one refused,
    so that the error names its document path."""
    table = MODELS[section.name].__table__.name
    for columns, records in section.groups.items():
        for start in range(0, len(records), COPY_ROWS):
            chunk = records[start : start + COPY_ROWS]
            try:
                async with session.begin_nested():
                    await session.connection()  # emits the SAVEPOINT before the driver's COPY
                    await driver.copy_records_to_table(
                        table, records=[record for _, record in chunk], columns=columns
                    )
            except (
                asyncpg.exceptions.IntegrityConstraintViolationError,
                asyncpg.exceptions.DataError,
            ):
                await _locate(session, section, [index for index, _ in chunk])
                raise


async def _locate(session: AsyncSession, section: _Section, indexes: list[int]) -> None:
    """Inserts the rows at `indexes` one at a time, each in a savepoint, and raises the typed error
    of the first one PostgreSQL refuses (a refused id stays unattributed: `_refuse_taken_ids`)."""
    model = MODELS[section.name]
    for index in indexes:
        try:
            async with session.begin_nested():
                await _insert(session, model, [dict(section.rows[index])])
        except DBAPIError as error:
            mapped = from_database_error(error)
            if mapped is None:
                raise
            if mapped.field == "id" and mapped.code is ErrorCode.DUPLICATE:
                raise mapped from error
            located = _at_path(error, f"{section.name}[{index}].")
            if located is None:
                raise
            raise located from error


async def _set_references(
    session: AsyncSession, section: str, columns: dict[str, list[Any]]
) -> None:
    """One `UPDATE ... FROM unnest(...)` setting the self references of a table's new rows."""
    table = MODELS[section].__table__.name
    names = [name for name in columns if name != "id"]
    uuids = ARRAY(UUID(as_uuid=True))
    statement = text(
        f"UPDATE {table} SET {', '.join(f'{name} = v.{name}' for name in names)} "
        f"FROM unnest({', '.join(f':{name}' for name in columns)}) "
        f"AS v({', '.join(columns)}) WHERE {table}.id = v.id"
    ).bindparams(*(bindparam(name, type_=uuids) for name in columns))
    await session.execute(statement, columns)


def _lists_of(prepared: _Prepared) -> list[list[Any]]:
    lists: list[list[Any]] = []
    for section in prepared.sections.values():
        lists.extend(section.groups.values())
        lists.append(section.rows)
    return lists


async def _release(lists: list[list[Any]]) -> None:
    """Empties the lists a slice at a time: dropping 10^5 rows at once would hold the event loop
    for as long as it takes to free a million objects."""
    for items in lists:
        while items:
            del items[-COPY_ROWS:]
            await asyncio.sleep(0)


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


def _fill_required(section: str, row: dict[str, Any]) -> None:
    """Server defaults apply to absent keys only when every row of the batch lacks them; give
    the columns a document may leave out their defaults explicitly."""
    for key, value in DEFAULTS[section].items():
        if row.get(key) is None:
            row[key] = list(value) if isinstance(value, list) else value


DEFAULTS: dict[str, dict[str, Any]] = {
    "nodes": {"node_type": "conversational_thread", "level": 1, "children_ids": []},
    "relationships": {"strength": 1.0, "confidence": 1.0, "is_bidirectional": False},
    "clusters": {"auto_generated": True, "child_cluster_ids": []},
    "edits": {"user_confidence": 1.0, "exported_for_training": False},
    "utterances": {"language": "en"},
}


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
    """The consistency rules a hand-made document could break, each checked in one pass."""
    nodes = {row["id"]: (index, row) for index, row in enumerate(rows["nodes"])}
    _refuse_loops(nodes, "parent_id", "The node hierarchy loops.", "nodes[{index}].parentId")
    _children_follow_parents(nodes, "parent_id", "children_ids")
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
    _refuse_loops(
        clusters,
        "parent_cluster_id",
        "The cluster hierarchy loops.",
        "clusters[{index}].parentClusterId",
    )
    _children_follow_parents(clusters, "parent_cluster_id", "child_cluster_ids")
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
            if node.get("utterance_ids") is None:
                node["utterance_ids"] = []
            node["utterance_ids"].append(row["id"])
        elif listed_by != claimed:
            raise InvalidInput(
                "nodeId names a node whose utteranceIds do not list this utterance.",
                field=f"utterances[{index}].nodeId",
            )


def _refuse_loops(
    table: dict[uuid.UUID, tuple[int, dict[str, Any]]], parent: str, message: str, path: str
) -> None:
    """Refuses a hierarchy with a cycle, naming the first row (in document order) whose chain of
    parents loops. Each row is walked once: a walk stops at a row already known to reach a root."""
    reaches_root: set[uuid.UUID] = set()
    for row_id, (index, _row) in table.items():
        walked: list[uuid.UUID] = []
        on_walk: set[uuid.UUID] = set()
        current: uuid.UUID | None = row_id
        while current is not None and current not in reaches_root:
            if current in on_walk:
                raise InvalidInput(message, field=path.format(index=index), code=ErrorCode.CYCLE)
            walked.append(current)
            on_walk.add(current)
            current = table[current][1].get(parent)
        reaches_root.update(walked)


def _children_follow_parents(
    table: dict[uuid.UUID, tuple[int, dict[str, Any]]], parent: str, children: str
) -> None:
    """Each row's children array lists exactly the rows whose parent it is: in the document's
    order where the document lists them, then the others in document order."""
    below: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row_id, (_index, row) in table.items():
        parent_id = row.get(parent)
        if parent_id is not None:
            below.setdefault(parent_id, []).append(row_id)
    for row_id, (_index, row) in table.items():
        row[children] = in_listed_order(row.get(children), below.get(row_id, []))
