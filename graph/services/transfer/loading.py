"""A checked document into PostgreSQL, in one transaction.

Checking and converting the document is pure Python and runs in a worker thread (`prepare`), so
the event loop keeps serving other clients; the rows go in by `COPY`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, any_, bindparam, exists, insert, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiCall, Cluster, Conversation, Edit, Node, Relationship, Utterance
from graph.errors import ErrorCode, InvalidInput, UserFacingError, from_database_error
from graph.services.common import Actor, lock_conversation, word_count
from graph.services.transfer import checking, decoding
from graph.services.transfer.document import MODELS

ID_TAKEN = (
    "An id in this document is already in use. Import it without preserveIds to store it under"
    " fresh ids."
)


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
    a worker thread (`prepare`), so the event loop keeps serving other clients; the rows go in
    by `COPY`, `COPY_ROWS` per statement. The document is left as it was (an operation may pass
    the same variable to two imports)."""
    prepared = await asyncio.to_thread(prepare, document, preserve_ids)
    try:
        return await _write(session, actor, prepared, preserve_ids), prepared.id_map
    finally:
        await _release([prepared.stored_ids, *_lists_of(prepared)])


async def _write(
    session: AsyncSession, actor: Actor, prepared: _Prepared, preserve_ids: bool
) -> Conversation:
    if preserve_ids:
        await refuse_taken_ids(session, prepared.stored_ids)
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


def prepare(document: Any, preserve_ids: bool) -> _Prepared:
    """Checks `document` and turns it into rows; raises `InvalidInput` naming the JSON path of the
    first problem. Every step is a pass over the rows with dict and set look-ups."""
    sections, meta = decoding.sections_of(document)
    conversation_values = decoding.conversation_values(meta)
    checking.check_conversation(conversation_values)
    reader = decoding.Reader(preserve_ids)
    rows = reader.rows(sections)
    checking.check_rows(rows)
    conversation_id = decoding.conversation_id(meta, preserve_ids)
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
    of the first one PostgreSQL refuses (a refused id stays unattributed: `refuse_taken_ids`)."""
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


async def refuse_taken_ids(session: AsyncSession, ids: list[uuid.UUID]) -> None:
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


def _at_path(error: DBAPIError, path: str) -> UserFacingError | None:
    """The typed error for a violation PostgreSQL caught in the row at `path` (`nodes[3].`)."""
    mapped = from_database_error(error)
    if mapped is not None:
        mapped.field = path + mapped.field if mapped.field else path.rstrip(".")
    return mapped


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
