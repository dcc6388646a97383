"""Revision 732e0cd9a870 creates exactly the schema of tests/data/initial-schema.md.

The expectation is parsed from a verbatim copy of the spec (shared/spec/initial-schema.md), so the
comparison below is the spec, line by line, against PostgreSQL's catalog. Types and defaults are
written in several spellings in the spec (`integer` and `int4[]`, `float8`, `'private'`); the
server itself turns them into its canonical spelling by creating the spec's columns in a scratch
schema, so no hand-written mapping stands between the spec and the catalog.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from tests.conftest import asyncpg_dsn

SPEC_PATH = Path(__file__).parent / "data" / "initial-schema.md"
INITIAL = "732e0cd9a870"
GENERATED_UUID = "generated uuid"
# The spec allows either generator for ids (see its second paragraph).
UUID_GENERATORS = {"gen_random_uuid()", "uuid_generate_v4()"}


@dataclass(frozen=True)
class SpecColumn:
    name: str
    type: str
    not_null: bool
    default: str | None


@dataclass
class Spec:
    tables: dict[str, list[SpecColumn]] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)
    constraints: list[tuple[str, str, str]] = field(default_factory=list)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_spec(text: str) -> Spec:
    """The tables, index statements and constraints of the spec's markdown."""
    spec = Spec()
    section = ""
    table: str | None = None
    in_sql = False
    for line in text.splitlines():
        if line.startswith("## "):
            section, table = line[3:].strip(), None
            continue
        if line.startswith("### "):
            table = line[4:].strip()
            spec.tables[table] = []
            continue
        if line.startswith("```"):
            in_sql = not in_sql and section.startswith("Indexes")
            continue
        if in_sql and line.strip():
            spec.indexes.append(line.strip())
            continue
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = _cells(line)
        if table is not None and len(cells) == 4 and cells[0] != "column":
            name, type_, null, default = cells
            spec.tables[table].append(SpecColumn(name, type_, null == "not null", default or None))
        elif section.startswith("Constraints") and len(cells) == 3 and cells[0] != "table":
            spec.constraints.append((cells[0], cells[1], cells[2].strip("`")))
    return spec


@dataclass(frozen=True)
class Catalog:
    """One line per column, index and constraint, in the spec's notation."""

    tables: list[str]
    columns: list[str]
    indexes: list[str]
    constraints: list[str]
    primary_keys: list[str]


COLUMNS_QUERY = """
SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod) AS type,
       c.is_nullable, c.column_default
FROM information_schema.columns c
JOIN pg_attribute a
  ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
 AND a.attname = c.column_name
WHERE c.table_schema = $1 AND c.table_name <> 'alembic_version'
ORDER BY c.table_name, c.ordinal_position
"""

CONSTRAINTS_QUERY = """
SELECT t.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname <> 'alembic_version'
  AND k.contype <> 'n' -- PostgreSQL 18 lists NOT NULL here; the columns compare nullability
ORDER BY t.relname, k.conname
"""

INDEXES_QUERY = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = $1 AND tablename <> 'alembic_version'
ORDER BY indexname
"""


def column_line(table: str, column: str, type_: str, nullable: bool, default: str | None) -> str:
    return f"{table}.{column} | {type_} | {'null' if nullable else 'not null'} | {default or ''}"


async def read_catalog(connection: asyncpg.Connection, schema: str = "public") -> Catalog:
    columns = []
    for row in await connection.fetch(COLUMNS_QUERY, schema):
        default = row["column_default"]
        if row["column_name"] == "id" and default in UUID_GENERATORS:
            default = GENERATED_UUID
        columns.append(
            column_line(
                row["table_name"],
                row["column_name"],
                row["type"],
                row["is_nullable"] == "YES",
                default,
            )
        )
    constraints, primary_keys = [], []
    for row in await connection.fetch(CONSTRAINTS_QUERY, schema):
        line = f"{row['relname']} | {row['conname']} | {row['definition']}"
        (primary_keys if row["contype"] == "p" else constraints).append(line)
    primary_key_names = {line.split(" | ")[1] for line in primary_keys}
    indexes = [
        # The spec writes pg_indexes.indexdef without the schema and the default btree method.
        row["indexdef"].replace(f" ON {schema}.", " ON ").replace(" USING btree ", " ")
        for row in await connection.fetch(INDEXES_QUERY, schema)
        if row["indexname"] not in primary_key_names
    ]
    tables = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema
    )
    return Catalog(
        tables=[row["tablename"] for row in tables if row["tablename"] != "alembic_version"],
        columns=columns,
        indexes=indexes,
        constraints=constraints,
        primary_keys=primary_keys,
    )


async def expected_catalog(connection: asyncpg.Connection, spec: Spec) -> Catalog:
    """The spec's catalog: its columns created by the server in a scratch schema, read back."""
    schema = f"spec_{uuid.uuid4().hex[:8]}"
    await connection.execute(f"CREATE SCHEMA {schema}")
    try:
        for table, columns in spec.tables.items():
            definitions = []
            for column in columns:
                definition = f'"{column.name}" {column.type}'
                if column.not_null:
                    definition += " NOT NULL"
                if column.default == GENERATED_UUID:
                    definition += " DEFAULT gen_random_uuid()"
                elif column.default:
                    definition += f" DEFAULT {column.default}"
                definitions.append(definition)
            await connection.execute(f"CREATE TABLE {schema}.{table} ({', '.join(definitions)})")
        scratch = await read_catalog(connection, schema)
    finally:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    return Catalog(
        tables=sorted(spec.tables),
        columns=scratch.columns,
        indexes=sorted(spec.indexes),
        constraints=sorted(
            f"{t} | {name} | {definition}" for t, name, definition in spec.constraints
        ),
        primary_keys=sorted(f"{t} | {t}_pkey | PRIMARY KEY (id)" for t in spec.tables),
    )


def differences(expected: Catalog, actual: Catalog) -> list[str]:
    """Every line the catalog lacks (`- `) or has beyond the spec (`+ `), by part."""
    found = []
    for part in ("tables", "columns", "indexes", "constraints", "primary_keys"):
        for line in difflib.ndiff(getattr(expected, part), getattr(actual, part)):
            if line.startswith(("- ", "+ ")):
                found.append(f"{part}: {line}")
    return found


@pytest.fixture(scope="module")
def spec() -> Spec:
    return parse_spec(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
async def initial_database(database_factory, alembic_config_for):
    url = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config_for(url), INITIAL)
    return url


def test_the_spec_parses_completely(spec: Spec) -> None:
    """Every table, index statement and constraint row of the spec was read."""
    text = SPEC_PATH.read_text(encoding="utf-8")
    assert list(spec.tables) == re.findall(r"^### (\w+)$", text, re.MULTILINE)
    assert len(spec.tables) == 7
    column_rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") == 5 and not line.startswith("| column ")
    ]
    assert sum(len(columns) for columns in spec.tables.values()) == len(column_rows) == 138
    assert len(spec.indexes) == text.count("\nCREATE INDEX ") == 28
    assert len(spec.constraints) == len(re.findall(r"^\| \w+ \| \w+ \| `", text, re.MULTILINE))
    assert len(spec.constraints) == 21
    assert spec.tables["nodes"][0] == SpecColumn("id", "uuid", True, GENERATED_UUID)
    assert SpecColumn("zoom_level_visible", "int4[]", False, None) in spec.tables["nodes"]


async def test_initial_revision_matches_the_spec_line_by_line(initial_database, spec) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(initial_database))
    try:
        expected = await expected_catalog(connection, spec)
        actual = await read_catalog(connection)
    finally:
        await connection.close()
    assert differences(expected, actual) == []
    # The lists are the spec's own lines, not empty ones that agree trivially.
    assert len(actual.columns) == sum(len(columns) for columns in spec.tables.values())
    assert "nodes.zoom_level_visible | integer[] | null | " in actual.columns
    assert "relationships.strength | double precision | null | '1'::double precision" in (
        actual.columns
    )
    assert "conversations.visibility | text | null | 'private'::text" in actual.columns
    assert len(actual.indexes) == 28 and len(actual.constraints) == 21


async def test_initial_ids_use_uuid_ossp_where_the_server_has_it(initial_database) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(initial_database))
    try:
        available = await connection.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'uuid-ossp'"
        )
        installed = await connection.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'uuid-ossp'"
        )
        defaults = await connection.fetch(
            "SELECT DISTINCT column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'id'"
        )
        generated = await connection.fetchval(
            "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
            " started_at, owner_id) VALUES ('c', 'chat', 'slack', now(), 'o') RETURNING id"
        )
    finally:
        await connection.close()
    assert installed == available
    expected = "uuid_generate_v4()" if available else "gen_random_uuid()"
    assert [row["column_default"] for row in defaults] == [expected]
    assert isinstance(generated, uuid.UUID)


async def test_initial_revision_has_no_triggers(initial_database) -> None:
    """The original filled nothing by itself; the triggers belong to a later revision."""
    connection = await asyncpg.connect(asyncpg_dsn(initial_database))
    try:
        triggers = await connection.fetchval(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND NOT t.tgisinternal"
        )
    finally:
        await connection.close()
    assert triggers == 0


async def test_the_comparison_reports_a_changed_database(initial_database, spec) -> None:
    """The comparison can fail: a default, an index and a constraint changed behind its back."""
    connection = await asyncpg.connect(asyncpg_dsn(initial_database))
    try:
        expected = await expected_catalog(connection, spec)
        async with connection.transaction():
            await connection.execute(
                "ALTER TABLE nodes ALTER COLUMN canvas_width SET DEFAULT 351;"
                "ALTER TABLE utterances ALTER COLUMN speaker_name SET NOT NULL;"
                "DROP INDEX idx_nodes_level;"
                "CREATE INDEX idx_nodes_level ON nodes (level, conversation_id);"
                "ALTER TABLE relationships DROP CONSTRAINT valid_strength;"
                "ALTER TABLE relationships ADD CONSTRAINT valid_strength CHECK (strength >= 0);"
            )
            actual = await read_catalog(connection)
            raise _Rollback
    except _Rollback:
        pass
    finally:
        await connection.close()
    found = differences(expected, actual)
    assert "columns: - nodes.canvas_width | integer | null | 350" in found
    assert "columns: + nodes.canvas_width | integer | null | 351" in found
    assert "columns: + utterances.speaker_name | text | not null | " in found
    assert "indexes: + CREATE INDEX idx_nodes_level ON nodes (level, conversation_id)" in found
    assert (
        "constraints: + relationships | valid_strength | CHECK ((strength >= (0)::double "
        "precision))" in found
    )
    assert len(found) == 8  # each change: the spec's line missing, the changed line extra


async def test_the_comparison_reports_a_changed_spec(initial_database, spec) -> None:
    """An altered expectation (one default, one index, one constraint) is reported too."""
    altered = parse_spec(
        SPEC_PATH.read_text(encoding="utf-8")
        .replace("| canvas_height | integer |  | 200 |", "| canvas_height | integer |  | 201 |")
        .replace("idx_api_calls_cost ON api_calls_log (total_cost)", "idx_api_calls_cost ON x (y)")
        .replace("REFERENCES clusters(id)`", "REFERENCES clusters(id) ON DELETE CASCADE`")
        .replace("| is_crux | boolean |  |", "| is_crux | boolean | not null |")
    )
    connection = await asyncpg.connect(asyncpg_dsn(initial_database))
    try:
        expected = await expected_catalog(connection, altered)
        actual = await read_catalog(connection)
    finally:
        await connection.close()
    found = differences(expected, actual)
    assert "columns: - nodes.canvas_height | integer | null | 201" in found
    assert "columns: - nodes.is_crux | boolean | not null | false" in found
    assert "indexes: - CREATE INDEX idx_api_calls_cost ON x (y)" in found
    assert any("clusters_parent_cluster_id_fkey" in line for line in found)
    assert len(found) == 8


class _Rollback(Exception):
    pass
