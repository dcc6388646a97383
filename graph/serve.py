"""`python3 manage.py serve`: migrate, offer a demo conversation, and serve the API with uvicorn.

    python -m graph.serve [--host H] [--port P] [--workers N] [--no-demo] [--no-access-log]

The database is `DATABASE_URL`'s, or the embedded PostgreSQL when that is unset; it is migrated to
head before the server starts. With `LCT_DEMO` on (the default) a generated demo conversation (a
few hundred nodes over five levels) is loaded once, so that GraphiQL shows a real graph at once.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import multiprocessing
import signal
import socket
import sys
import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from db.demo import conversation_id_for, generate_conversation, generate_small_conversations
from db.settings import (
    PROJECT_ROOT,
    ConfigurationError,
    Settings,
    connect_arguments,
    get_settings,
    resolve_database_url,
)
from graph.auth import check_bind
from graph.observability import log_config, prepare_multiprocess_metrics

DEMO_NODES = 300
DEMO_SEED = 2026
# A fixed id seed gives the demo a fixed id: a restart finds it instead of adding another.
DEMO_ID_SEED = 20260105
DEMO_NAME = "Demo: quarterly planning offsite"
DEMO_SMALL_CONVERSATIONS = 6

EXAMPLE_QUERY = """\
query Canvas($id: ID!) {
  conversation(id: $id) {
    id
    conversationName
    nodes(first: 100, level: [1, 2, 3]) {
      totalCount
      nodes {
        id nodeName level parentId canvasX canvasY
        speakerInfo { primarySpeaker contributionPercentage }
        outgoing { toNodeId relationshipType strength }
      }
    }
  }
}
"""


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def migrate(url: URL) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = asyncpg_dsn(url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")


async def ensure_demo(url: URL, settings: Settings) -> tuple[uuid.UUID, bool]:
    """Loads the demo conversation unless it is there already; returns its id and whether it
    was created now. Owned by the local development user and public, so that it is visible with
    and without authentication configured."""
    demo_id = conversation_id_for(DEMO_ID_SEED)
    connection = await asyncpg.connect(**connect_arguments(url))
    try:
        async with connection.transaction():
            # two servers starting at once must not both load it
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext('lct-graph demo'))")
            if await connection.fetchval("SELECT 1 FROM conversations WHERE id = $1", demo_id):
                return demo_id, False
            created = await generate_conversation(
                connection,
                nodes=DEMO_NODES,
                seed=DEMO_SEED,
                id_seed=DEMO_ID_SEED,
                name=DEMO_NAME,
                owner_id=settings.dev_user_id,
                visibility="public",
                conversation_type="live_audio",
            )
            assert created == demo_id
            await generate_small_conversations(
                connection,
                count=DEMO_SMALL_CONVERSATIONS,
                seed=DEMO_SEED,
                owner_ids=(settings.dev_user_id,),
                visibilities=("public",),
            )
    finally:
        await connection.close()
    return demo_id, True


def graphiql_link(base: str, demo_id: uuid.UUID) -> str:
    """GraphiQL (strawberry's page) prefills its editors from `q` and `variables`."""
    variables = json.dumps({"id": str(demo_id)})
    return f"{base}?q={quote(EXAMPLE_QUERY)}&variables={quote(variables)}"


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is in use: stop the other server or choose another"
                    " port with --port or LCT_PORT"
                ) from None
            raise ConfigurationError(f"cannot listen on {host}:{port}: {error}") from None


def _arguments(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="manage.py serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=settings.host, help="default LCT_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.port, help="default LCT_PORT or 8000")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not load the demo conversation (LCT_DEMO=0)"
    )
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate the database first (production: migrate once per release)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValueError as error:  # pydantic's ValidationError: a malformed LCT_ setting
        print(f"error: invalid setting: {error}".splitlines()[0], file=sys.stderr)
        return 1
    arguments = _arguments(argv, settings)
    try:
        check_bind(settings, arguments.host)
        _check_port_free(arguments.host, arguments.port)
        url = resolve_database_url(settings)
        print(f"database: {url.render_as_string(hide_password=True)}", flush=True)
        if not arguments.no_migrate:
            migrate(url)
        demo = None
        if settings.demo and not arguments.no_demo:
            demo = asyncio.run(ensure_demo(url, settings))
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as error:
        print(f"error: cannot prepare the database: {error}".splitlines()[0], file=sys.stderr)
        return 1

    shown_host = f"[{arguments.host}]" if ":" in arguments.host else arguments.host
    endpoint = f"http://{shown_host}:{arguments.port}/graphql"
    print(f"\nGraphQL endpoint and GraphiQL: {endpoint}", flush=True)
    if demo is not None:
        demo_id, created = demo
        state = "loaded" if created else "already there"
        print(
            f"demo conversation {demo_id} ({state}; {DEMO_NODES} nodes over 5 levels)\n"
            f"open it in GraphiQL, query ready to run:\n  {graphiql_link(endpoint, demo_id)}\n"
            f'or paste this query with variables {{"id": "{demo_id}"}}:\n\n{EXAMPLE_QUERY}',
            flush=True,
        )

    prepare_multiprocess_metrics(arguments.workers)
    if arguments.workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        return serve_workers(arguments)

    import uvicorn

    uvicorn.run(
        "graph.app:app",
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        access_log=not arguments.no_access_log,
        proxy_headers=False,
        server_header=False,
        log_config=log_config(settings),
        **websocket_options(settings),
    )
    return 0


def websocket_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's WebSocket settings (graph/live_transport.py serves the protocol).

    websockets' sans-I/O implementation: its keep-alive pings are timers, not tasks, so an idle
    connection costs the least. No permessage-deflate unless `LCT_LIVE_WEBSOCKET_COMPRESSION`,
    and no message larger than `LCT_LIVE_MAX_MESSAGE_BYTES` is buffered (refused with 1009).
    """
    return {
        "ws": "websockets-sansio",
        "ws_per_message_deflate": settings.live_websocket_compression,
        "ws_max_size": settings.live_max_message_bytes,
    }


def serve_workers(arguments: argparse.Namespace) -> int:
    """`arguments.workers` uvicorn processes, each with its own listening socket on the same port.

    uvicorn's own `--workers` shares one socket, and the first process to wake accepts every
    connection waiting (asyncio accepts up to a hundred at a time), so a client that opens its
    keep-alive connections together gets one worker for all of them. With `SO_REUSEPORT` the
    kernel gives each new connection to one of the sockets, spreading them over the processes.
    """
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker,
            args=(arguments.host, arguments.port, not arguments.no_access_log),
            daemon=False,
        )
        for _ in range(arguments.workers)
    ]
    for process in processes:
        process.start()

    def stop(*_: Any) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join()
    return 0 if all(process.exitcode in (0, -signal.SIGTERM) for process in processes) else 1


def listening_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket on the shared port (`SO_REUSEPORT`).

    Made with `IPPROTO_TCP`, not the default 0: asyncio sets `TCP_NODELAY` only on accepted
    sockets whose protocol says TCP, and without it a response's headers and body (two writes)
    wait for the client's delayed ACK, 40 ms a request. uvicorn's own `--workers` socket is made
    the default way and has that flaw.
    """
    listener = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def _worker(host: str, port: int, access_log: bool) -> None:
    import uvicorn

    settings = get_settings()
    config = uvicorn.Config(
        "graph.app:app",
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        log_config=log_config(settings),
        **websocket_options(settings),
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


if __name__ == "__main__":
    sys.exit(main())
