"""A checked document into PostgreSQL, in one transaction.

Checking and converting the document is pure Python and runs in a worker thread (`prepare`), so
the event loop keeps serving other clients; the rows go in by `COPY`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, any_, bindparam, exists, insert, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiCall, Cluster, Conversation, Edit, Node, Relationship, Utterance
from graph.services.common import Actor, lock_conversation, word_count
from graph.services.database_errors import from_database_error
from graph.services.errors import DomainError, ErrorCode, InvalidInput
from graph.services.transfer.checking import check_conversation, check_rows
from graph.services.transfer.decoding import (
    Reader,
    conversation_id,
    conversation_values,
    sections_of,
)
from graph.services.transfer.document import MODELS

ID_TAKEN = (
    "An id in this document is already in use. Import it without preserveIds to store it under"
    " fresh ids."
)


@dataclass
class _Section:
    """A section's rows ready for one `COPY`: every row with the same columns, as a record."""

    name: str
    rows: list[dict[str, Any]]
    columns: tuple[str, ...] = ()
    records: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)


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


# Nodes go first: utterances, relationships and clusters point at them. A self reference needs
# no order: PostgreSQL checks foreign keys at the end of the statement, when every row of the
# `COPY` exists.
WRITE_ORDER = ("nodes", "utterances", "relationships", "clusters", "edits")
SELF_REFERENCES = {
    "nodes": ("parent_id", "predecessor_id", "successor_id"),
    "clusters": ("parent_cluster_id",),
}
# A `COPY` encodes its records on the event loop: it gets a turn at least this often.
SLICE_SECONDS = 0.005
# Locating a refused row: below this many rows, one INSERT each.
LOCATE_ROWS = 16
RELEASE_ROWS = 500


async def import_conversation(
    session: AsyncSession, actor: Actor, document: Any, *, preserve_ids: bool = False
) -> tuple[Conversation, dict[str, str]]:
    """Creates the conversation of `document` with everything in it; returns it and the map from
    document references to stored ids.

    Work is linear in the document's size. Checking the document and turning it into records is
    pure Python and runs in worker threads (`prepare`, `_records`), so the event loop keeps
    serving other clients; each section goes in by one `COPY`, so that the tables' statement
    triggers (the change feed, the search vector) run once per section. The document is left
    as it was (an operation may pass the same variable to two imports)."""
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
    defaults = await _server_defaults(session)
    await asyncio.to_thread(_all_records, prepared, defaults)
    driver = await _driver_connection(session)
    for name in WRITE_ORDER:
        await _copy_section(session, driver, prepared.sections[name])
    await session.flush()
    return conversation


def prepare(document: Any, preserve_ids: bool) -> _Prepared:
    """Checks `document` and turns it into rows; raises `InvalidInput` naming the JSON path of the
    first problem. Every step is a pass over the rows with dict and set look-ups."""
    sections, meta = sections_of(document)
    values = conversation_values(meta)
    check_conversation(values)
    reader = Reader(preserve_ids)
    rows = reader.rows(sections)
    check_rows(rows)
    stored_as = conversation_id(meta, preserve_ids)
    return _Prepared(
        conversation_id=stored_as,
        conversation_values=values,
        sections={name: _Section(name, section_rows) for name, section_rows in rows.items()},
        stored_ids=[stored_as, *reader.everything.values()],
        id_map={reference: str(value) for reference, value in reader.everything.items()},
        total_utterances=len(rows["utterances"]),
        total_words=sum(word_count(row.get("text")) for row in rows["utterances"]),
        total_nodes=len(rows["nodes"]),
    )


async def _server_defaults(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """What PostgreSQL would give each column with a server default in this transaction (`now()`
    included), by section, in one statement: one `COPY` carries every column of every row, so a
    row that leaves a column out gets its default from here."""
    columns = [
        (section, column)
        for section, model in MODELS.items()
        for column in model.__table__.columns
        if column.server_default is not None and not column.primary_key
    ]
    values = (
        await session.execute(
            select(
                *(
                    literal_column(str(column.server_default.arg.text), type_=column.type)
                    for _, column in columns
                )
            )
        )
    ).one()
    defaults: dict[str, dict[str, Any]] = {section: {} for section in MODELS}
    for (section, column), value in zip(columns, values, strict=True):
        defaults[section][column.key] = value
    return defaults


def _all_records(prepared: _Prepared, defaults: dict[str, dict[str, Any]]) -> None:
    for name, section in prepared.sections.items():
        _records(section, prepared.conversation_id, defaults[name])


def _records(section: _Section, conversation_id: uuid.UUID, defaults: dict[str, Any]) -> None:
    """The section's rows as `COPY` records, all with the same columns: those any row carries and
    those with a server default, which a row that leaves them out (or, for `created_at`, sends
    null) gets from `defaults`."""
    table = MODELS[section.name].__table__
    rows = section.rows
    present: set[str] = set(defaults)
    for row in rows:
        row["conversation_id"] = conversation_id
        if row.get("created_at") is None:
            row.pop("created_at", None)
        if section.name == "nodes":
            row.setdefault("chunk_ids", [])
        if section.name == "clusters":
            row.setdefault("node_ids", [])
        present.update(row)
    columns = tuple(sorted(present))
    encoders = [
        (position, encoder)
        for position, name in enumerate(columns)
        if (encoder := _json_encoder(table.columns[name].type)) is not None
    ]
    fallback = tuple(defaults.get(name) for name in columns)
    records = []
    for row in rows:
        values = [row.get(name, default) for name, default in zip(columns, fallback, strict=True)]
        for position, encode in encoders:
            values[position] = encode(values[position])
        records.append(tuple(values))
    section.columns = columns
    section.records = records


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


REFUSED = (asyncpg.exceptions.IntegrityConstraintViolationError, asyncpg.exceptions.DataError)


async def _copy_section(session: AsyncSession, driver: Any, section: _Section) -> None:
    """Writes the section with one `COPY` in a savepoint. When PostgreSQL refuses it, `_locate`
    finds the row refused, so that the error names its document path."""
    if not section.records:
        return
    try:
        await _copy(session, driver, section, section.records)
    except REFUSED:
        await _locate(session, driver, section, _without_self_references(section))
        raise


async def _copy(
    session: AsyncSession, driver: Any, section: _Section, records: list[tuple[Any, ...]]
) -> None:
    table = MODELS[section.name].__table__.name
    async with session.begin_nested():
        await session.connection()  # emits the SAVEPOINT before the driver's COPY
        await driver.copy_records_to_table(table, records=_paced(records), columns=section.columns)


async def _paced(records: list[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    """The records, with a turn for the event loop every `SLICE_SECONDS`: asyncpg encodes them on
    the loop, and waits for nothing while PostgreSQL keeps up."""
    since = time.perf_counter()
    for index, record in enumerate(records):
        yield record
        if index % 256 == 255 and time.perf_counter() - since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            since = time.perf_counter()


def _without_self_references(section: _Section) -> list[tuple[int, tuple[Any, ...]]]:
    """The records with their index, self references left null: while the refused row is looked
    for, a row may be written before the row it points at."""
    positions = [
        position
        for position, name in enumerate(section.columns)
        if name in SELF_REFERENCES.get(section.name, ())
    ]
    if not positions:
        return list(enumerate(section.records))
    located = []
    for index, record in enumerate(section.records):
        values = list(record)
        for position in positions:
            values[position] = None
        located.append((index, tuple(values)))
    return located


async def _locate(
    session: AsyncSession,
    driver: Any,
    section: _Section,
    records: list[tuple[int, tuple[Any, ...]]],
) -> None:
    """Raises the typed error of the first of `records` PostgreSQL refuses, given those before
    it: halves are written by `COPY` and kept when accepted, so the search writes each row at
    most twice over; the last few rows go in one INSERT each (a refused id stays unattributed:
    `refuse_taken_ids`). Returns when every row is accepted."""
    if len(records) > LOCATE_ROWS:
        half = len(records) // 2
        for part in (records[:half], records[half:]):
            try:
                await _copy(session, driver, section, [record for _, record in part])
            except REFUSED:
                await _locate(session, driver, section, part)
                return
        return
    model = MODELS[section.name]
    references = SELF_REFERENCES.get(section.name, ())
    for index, _record in records:
        row = {key: value for key, value in section.rows[index].items() if key not in references}
        try:
            async with session.begin_nested():
                await _insert(session, model, [row])
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


def _lists_of(prepared: _Prepared) -> list[list[Any]]:
    lists: list[list[Any]] = []
    for section in prepared.sections.values():
        lists.append(section.records)
        lists.append(section.rows)
    return lists


async def _release(lists: list[list[Any]]) -> None:
    """Empties the lists a slice at a time: dropping 10^5 rows at once would hold the event loop
    for as long as it takes to free a million objects."""
    for items in lists:
        while items:
            del items[-RELEASE_ROWS:]
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


def _at_path(error: DBAPIError, path: str) -> DomainError | None:
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
