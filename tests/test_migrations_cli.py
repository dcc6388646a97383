"""Every command of the seed's migration guide, typed as written, through the real `alembic` CLI.

The commands run in the project directory with `DATABASE_URL` pointing at a database of the
test run; the `revision` commands run against a copy of alembic.ini and alembic/ so the
repository never gains a file.
"""

from __future__ import annotations

import ast
import itertools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL

from db.session import create_engine
from db.settings import (
    PROJECT_ROOT,
    SUPPORTED_PARAMETERS,
    ConfigurationError,
    Settings,
    connect_arguments,
    to_async_url,
)
from tests.conftest import asyncpg_dsn, plain_url
from tests.test_migrations import (
    GAPS,
    INITIAL,
    REMOVE_REPEATED_KEYS,
    REPEATED_KEYS,
    SEED_ROWS,
    current_revision,
    expected_refusal_parts,
    history,
    snapshot,
)

ALEMBIC = Path(sys.executable).with_name("alembic")


def alembic(
    *arguments: str,
    database: URL | str | None,
    cwd: Path = PROJECT_ROOT,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database is not None:
        environment["DATABASE_URL"] = database if isinstance(database, str) else plain_url(database)
    environment.update(extra_env or {})
    return subprocess.run(
        [str(ALEMBIC), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


async def revision_of(url: URL) -> str | None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await current_revision(connection)
    finally:
        await connection.close()


async def has_table(url: URL, table: str) -> bool:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
    finally:
        await connection.close()


@pytest.fixture
async def database(database_factory) -> URL:
    return await database_factory.create()


async def test_upgrade_and_downgrade_commands(database) -> None:
    head = history()[-1]

    ok(alembic("upgrade", "head", database=database))
    assert await revision_of(database) == head
    assert ok(alembic("current", database=database)).strip() == f"{head} (head)"

    ok(alembic("downgrade", "base", database=database))
    assert await revision_of(database) is None
    assert not await has_table(database, "conversations")
    assert ok(alembic("current", database=database)).strip() == ""

    ok(alembic("upgrade", INITIAL, database=database))
    assert await revision_of(database) == INITIAL
    assert ok(alembic("current", database=database)).strip() == INITIAL

    ok(alembic("upgrade", "+1", database=database))
    assert await revision_of(database) == GAPS

    ok(alembic("downgrade", "-1", database=database))
    assert await revision_of(database) == INITIAL

    ok(alembic("upgrade", "head", database=database))
    ok(alembic("downgrade", INITIAL, database=database))
    assert await revision_of(database) == INITIAL
    assert await has_table(database, "conversations")


async def test_repeated_keys_stop_the_gap_revision_in_one_line(database) -> None:
    """Before: a UniqueViolationError traceback from ADD CONSTRAINT."""
    ok(alembic("upgrade", INITIAL, database=database))
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        await connection.execute(SEED_ROWS + REPEATED_KEYS)
        before = await snapshot(connection)

        result = alembic("upgrade", "head", database=database)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        # Alembic's progress lines, then one line that says why.
        [line] = [line for line in result.stderr.splitlines() if not line.startswith("INFO ")]
        assert line.startswith("error: revision 5d1f0c3a9b27 adds unique keys")
        for part in await expected_refusal_parts(connection):
            assert part in line
        # Rolled back: still at the initial revision, no index, default or trigger of the next.
        assert await current_revision(connection) == INITIAL
        assert await snapshot(connection) == before

        await connection.execute(REMOVE_REPEATED_KEYS)
        ok(alembic("upgrade", "head", database=database))
        assert await current_revision(connection) == history()[-1]
    finally:
        await connection.close()


def test_history_lists_every_revision() -> None:
    # history reads the scripts only; an unreachable DATABASE_URL does not matter to it.
    output = ok(alembic("history", database="postgresql://nobody@127.0.0.1:9/none"))
    revisions = history()
    assert f"<base> -> {INITIAL}, Initial schema" in output
    for older, newer in itertools.pairwise(revisions):
        assert f"{older} -> {newer}" in output
    assert f"-> {revisions[-1]} (head)" in output


async def test_stamp_head_marks_without_migrating(database) -> None:
    ok(alembic("stamp", "head", database=database))
    assert await revision_of(database) == history()[-1]
    assert not await has_table(database, "conversations")  # that is why the guide says dangerous
    # The seed's recovery: downgrade base, upgrade head.
    ok(alembic("upgrade", INITIAL, database=database))  # already "past" it: nothing happens
    assert not await has_table(database, "conversations")


async def test_check_passes_at_head_and_fails_behind(database) -> None:
    ok(alembic("upgrade", INITIAL, database=database))
    behind = alembic("check", database=database)
    assert behind.returncode != 0
    assert "not up to date" in behind.stderr
    ok(alembic("upgrade", "head", database=database))
    assert "No new upgrade operations detected" in ok(alembic("check", database=database))


@pytest.fixture
def scripts_copy(tmp_path: Path) -> Iterator[Path]:
    """alembic.ini and alembic/ copied, so new revisions land outside the repository."""
    shutil.copy(PROJECT_ROOT / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(
        PROJECT_ROOT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    before = sorted(path.name for path in (PROJECT_ROOT / "alembic" / "versions").glob("*.py"))
    yield tmp_path
    after = sorted(path.name for path in (PROJECT_ROOT / "alembic" / "versions").glob("*.py"))
    assert after == before, "a revision command wrote into the repository"


def new_revisions(scripts: Path) -> list[Path]:
    originals = {path.name for path in (PROJECT_ROOT / "alembic" / "versions").glob("*.py")}
    return sorted(
        path
        for path in (scripts / "alembic" / "versions").glob("*.py")
        if path.name not in originals
    )


def function_bodies(path: Path) -> dict[str, list[str]]:
    """upgrade() and downgrade() as their statements, docstrings left out."""
    tree = ast.parse(path.read_text())
    bodies = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade"):
            statements = [
                statement
                for statement in node.body
                if not (
                    isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                )
            ]
            bodies[node.name] = [ast.unparse(statement) for statement in statements]
    return bodies


def module_value(path: Path, name: str) -> object:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name:
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not in {path}")


async def test_revision_commands_on_an_up_to_date_database(database, scripts_copy) -> None:
    head = history()[-1]
    ok(alembic("upgrade", "head", database=database, cwd=scripts_copy))

    ok(
        alembic(
            "revision",
            "--autogenerate",
            "-m",
            "Description of changes",
            database=database,
            cwd=scripts_copy,
        )
    )
    [generated] = new_revisions(scripts_copy)
    assert generated.name.endswith("_description_of_changes.py")
    assert module_value(generated, "down_revision") == head
    # The models and the migrations agree, so there is nothing to generate.
    assert function_bodies(generated) == {"upgrade": ["pass"], "downgrade": ["pass"]}

    ok(alembic("revision", "-m", "Describe the change", database=database, cwd=scripts_copy))
    [manual] = [path for path in new_revisions(scripts_copy) if path != generated]
    assert manual.name.endswith("_describe_the_change.py")
    assert module_value(manual, "down_revision") == module_value(generated, "revision")
    assert function_bodies(manual) == {"upgrade": ["pass"], "downgrade": ["pass"]}

    # The new revisions are part of the copy's history and apply like any other.
    ok(alembic("upgrade", "head", database=database, cwd=scripts_copy))
    assert await revision_of(database) == module_value(manual, "revision")
    ok(alembic("downgrade", "-1", database=database, cwd=scripts_copy))
    ok(alembic("downgrade", "-1", database=database, cwd=scripts_copy))
    assert await revision_of(database) == head


async def test_the_guides_development_workflow(database, scripts_copy) -> None:
    """Change the models, autogenerate, review, upgrade, downgrade -1, upgrade head."""
    ok(alembic("upgrade", "head", database=database, cwd=scripts_copy))
    env_py = scripts_copy / "alembic" / "env.py"
    # A model change, made in the copy's env.py so the project's models stay as they are.
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata = Base.metadata\n",
            "target_metadata = Base.metadata\n"
            "import sqlalchemy as _sa\n"
            "_sa.Table('new_table', target_metadata,"
            " _sa.Column('id', _sa.Integer, primary_key=True), _sa.Column('note', _sa.Text))\n",
        )
    )
    ok(
        alembic(
            "revision", "--autogenerate", "-m", "Add new_table", database=database, cwd=scripts_copy
        )
    )
    [generated] = new_revisions(scripts_copy)
    assert generated.name.endswith("_add_new_table.py")
    bodies = function_bodies(generated)
    assert any("op.create_table('new_table'" in line for line in bodies["upgrade"])
    assert bodies["downgrade"] == ["op.drop_table('new_table')"]

    ok(alembic("upgrade", "head", database=database, cwd=scripts_copy))
    assert await has_table(database, "new_table")
    ok(alembic("downgrade", "-1", database=database, cwd=scripts_copy))
    assert not await has_table(database, "new_table")
    ok(alembic("upgrade", "head", database=database, cwd=scripts_copy))
    assert await has_table(database, "new_table")
    assert "No new upgrade operations detected" in ok(
        alembic("check", database=database, cwd=scripts_copy)
    )


# --- where DATABASE_URL comes from --------------------------------------------------------------


async def test_database_url_from_a_dot_env_file(database, tmp_path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={plain_url(database)}\n")
    ok(
        alembic(
            "-c", str(PROJECT_ROOT / "alembic.ini"), "upgrade", INITIAL, database=None, cwd=tmp_path
        )
    )
    assert await revision_of(database) == INITIAL


async def test_the_environment_wins_over_dot_env(database, tmp_path, closed_port) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL=postgresql://x:y@127.0.0.1:{closed_port}/z\n")
    ok(
        alembic(
            "-c",
            str(PROJECT_ROOT / "alembic.ini"),
            "upgrade",
            INITIAL,
            database=database,
            cwd=tmp_path,
        )
    )
    assert await revision_of(database) == INITIAL


def test_the_plain_url_form_is_turned_into_the_driver_url() -> None:
    url = to_async_url("postgresql://user:password@db.example:6543/lct")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "user",
        "password",
        "db.example",
        6543,
        "lct",
    )
    assert to_async_url("postgres://u@h/d").drivername == "postgresql+asyncpg"
    assert to_async_url("postgresql+psycopg2://u@h/d").drivername == "postgresql+asyncpg"
    for malformed in ("not a url", "postgresql://u@h:port/d", "postgresql://u@h:70000/d"):
        with pytest.raises(ConfigurationError):
            to_async_url(malformed)


# --- what a user sees when the database cannot be used -----------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.stdout.strip() == ""
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("arguments", [("upgrade", "head"), ("current",), ("check",)])
def test_an_unreachable_server_is_one_line(arguments, closed_port) -> None:
    line = one_line_error(
        alembic(*arguments, database=f"postgresql://u:secret@127.0.0.1:{closed_port}/lct")
    )
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{closed_port}/lct" in line
    assert "secret" not in line


def test_an_unknown_database_is_one_line(server_url) -> None:
    line = one_line_error(
        alembic("upgrade", "head", database=server_url.set(database="lct_no_such_database"))
    )
    assert 'database "lct_no_such_database" does not exist' in line


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgresql://user:s3cret@host:port/db", "DATABASE_URL is malformed"),
        ("postgresql://user:s3cret@host:99999/db", "impossible port 99999"),
        ("nonsense", "DATABASE_URL is malformed"),
        ("mysql://user:s3cret@host/db", "must point at PostgreSQL"),
        ("postgresql://user:s3cret@host:5432", "names no database"),
        ("postgresql://user:s3cret@host/db?sslmod=require", "unsupported parameter 'sslmod'"),
        ("postgresql://user:s3cret@host/db?sslmode=on", "sslmode='on': expected one of disable"),
        ("postgresql://user:s3cret@host/db?connect_timeout=soon", "connect_timeout='soon'"),
        ("postgresql://user:s3cret@host/db?connect_timeout=0", "more than 0"),
        ("postgresql://user:s3cret@host/db?target_session_attrs=master", "target_session_attrs"),
        ("postgresql://user:s3cret@host/db?sslmode=require&sslmode=disable", "more than once"),
        ("", "DATABASE_URL is set but empty"),
        ("   ", "DATABASE_URL is set but empty"),
    ],
)
def test_a_malformed_url_is_one_line(url, complaint) -> None:
    line = one_line_error(alembic("upgrade", "head", database=url))
    assert complaint in line
    assert "s3cret" not in line


def test_an_empty_url_is_refused_offline_too() -> None:
    """Set but empty is a mistake, never a quiet fallback to the embedded server."""
    line = one_line_error(alembic("upgrade", "head", "--sql", database=""))
    assert "DATABASE_URL is set but empty" in line


# --- libpq's URL parameters ----------------------------------------------------------------------

ALL_PARAMETERS = (
    "sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem&sslcert=/c.pem&sslkey=/k.pem&sslcrl=/r.pem"
    "&sslpassword=pw&ssl_min_protocol_version=TLSv1.2&ssl_max_protocol_version=TLSv1.3"
    "&target_session_attrs=read-write&passfile=/p&krbsrvname=postgres&gsslib=gssapi"
    "&application_name=lct-migrations&options=-c%20work_mem%3D7MB&connect_timeout=2.5"
    "&host=db.example&port=6543"
)


def test_libpq_parameters_are_kept_and_translated_for_asyncpg() -> None:
    url = to_async_url(f"postgresql://u:p@/lct?{ALL_PARAMETERS}")
    assert sorted(url.query) == sorted(SUPPORTED_PARAMETERS)
    assert to_async_url(url.render_as_string(hide_password=False)) == url  # idempotent
    arguments = connect_arguments(url)
    assert arguments["server_settings"] == {
        "application_name": "lct-migrations",
        "options": "-c work_mem=7MB",
    }
    assert arguments["timeout"] == 2.5
    # asyncpg parses the rest from the URL itself, as libpq does.
    dsn = arguments.pop("dsn")
    assert dsn.startswith("postgresql://u:p@/lct?")
    assert "sslmode=verify-full" in dsn and "sslrootcert=%2Fetc%2Fssl%2Fca.pem" in dsn
    assert "application_name" not in dsn and "connect_timeout" not in dsn
    assert sorted(arguments) == ["server_settings", "timeout"]
    assert connect_arguments(to_async_url("postgresql://u@h/d")) == {"dsn": "postgresql://u@h/d"}


async def test_alembic_migrates_with_libpq_parameters(database) -> None:
    """Before: TypeError: connect() got an unexpected keyword argument 'sslmode'."""
    url = plain_url(
        database.update_query_dict(
            {
                "sslmode": "prefer",
                "application_name": "lct-migrations",
                "connect_timeout": "20",
                "options": "-c lock_timeout=60s",
            }
        )
    )
    ok(alembic("upgrade", "head", database=url))
    assert await revision_of(database) == history()[-1]
    assert ok(alembic("current", database=url)).strip() == f"{history()[-1]} (head)"


async def test_the_engine_honours_the_url_parameters(database) -> None:
    parameters = {
        "sslmode": "prefer",
        "application_name": "lct-reporting",
        "options": "-c work_mem=7MB",
        "connect_timeout": "20",
    }
    url = to_async_url(plain_url(database.update_query_dict(parameters)))
    engine = create_engine(url, Settings(_env_file=None, statement_timeout_ms=4321))
    try:
        async with engine.connect() as connection:
            settings = await connection.exec_driver_sql(
                "SELECT current_setting('application_name'), current_setting('work_mem'),"
                " current_setting('statement_timeout')"
            )
            assert tuple(settings.one()) == ("lct-reporting", "7MB", "4321ms")
    finally:
        await engine.dispose()


SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


@contextmanager
def fake_server(*, silent: bool = False) -> Iterator[tuple[int, list[bytes]]]:
    """A loopback listener that records the first packets a client sends: it refuses SSL ('N')
    and hangs up after the start-up packet, or, when `silent`, accepts and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    packets: list[bytes] = []
    stop = threading.Event()

    def read_packet(connection: socket.socket) -> bytes:
        data = b""
        while len(data) < 4 or len(data) < int.from_bytes(data[:4], "big"):
            chunk = connection.recv(4096)
            if not chunk:
                return data
            data += chunk
        return data

    def serve() -> None:
        held = []
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if silent:
                held.append(connection)
                continue
            with connection:
                connection.settimeout(10)
                while packet := read_packet(connection):
                    packets.append(packet)
                    if packet != SSL_REQUEST:
                        break
                    connection.sendall(b"N")
        for connection in held:
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], packets
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_sslmode_reaches_the_driver() -> None:
    with fake_server() as (port, packets):
        line = one_line_error(
            alembic("current", database=f"postgresql://u@127.0.0.1:{port}/lct?sslmode=require")
        )
    assert "rejected SSL upgrade" in line
    assert packets == [SSL_REQUEST]  # asked for TLS, and stopped when the server said no

    with fake_server() as (port, packets):
        one_line_error(
            alembic("current", database=f"postgresql://u@127.0.0.1:{port}/lct?sslmode=disable")
        )
    assert SSL_REQUEST not in packets and len(packets) == 1


def test_application_name_and_options_reach_the_server_at_start_up() -> None:
    with fake_server() as (port, packets):
        one_line_error(
            alembic(
                "current",
                database=f"postgresql://u@127.0.0.1:{port}/lct?application_name=lct-migrations"
                "&options=-c%20lock_timeout%3D5s",
            )
        )
    startup = packets[-1]
    assert b"\0application_name\0lct-migrations\0" in startup
    assert b"\0options\0-c lock_timeout=5s\0" in startup


def test_connect_timeout_bounds_the_wait_for_a_silent_server() -> None:
    with fake_server(silent=True) as (port, _packets):
        started = time.monotonic()
        line = one_line_error(
            alembic("current", database=f"postgresql://u@127.0.0.1:{port}/lct?connect_timeout=1")
        )
        elapsed = time.monotonic() - started
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}/lct" in line
    assert elapsed < 8  # the default is 10 seconds
