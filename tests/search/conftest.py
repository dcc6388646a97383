"""A generated corpus for search and aggregates, on a database and server of its own (the shared
test database holds other modules' conversations of the same user, which would count here).

The viewer is the development-mode user; `someone-else` owns a private conversation holding the
same words and calls, which must never count. Words come from a small vocabulary so that ranks
tie; API calls cross midnight in Europe/Berlin and both of its 2026 daylight-saving changes, and
some have no latency.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import URL

from tests.conftest import (
    GraphQLResponse,
    LiveServer,
    alembic_config,
    asyncpg_dsn,
    graphql_client,
    server_settings,
)
from tests.security.conftest import ask, secure_server, security_database, world  # noqa: F401

VIEWER = "local-developer"
OTHER = "someone-else"
VOCABULARY = ["apple", "budget", "cloud", "deadline", "engine", "forest", "garden", "harbor"]
MODELS = ["gpt-4o", "claude-3", "gemini"]
FEATURES = ["node_generation", "clustering", "summary"]


@dataclass(frozen=True)
class Corpus:
    mine: list[uuid.UUID]
    foreign: uuid.UUID
    orphan_call: uuid.UUID


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(2, 6)))


@pytest.fixture(scope="session")
async def search_database(database_factory: Any) -> URL:
    url: URL = await database_factory.create()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
async def graphql(
    search_database: URL,
) -> AsyncIterator[Callable[..., Awaitable[GraphQLResponse]]]:
    """POSTs a GraphQL document to a development-mode server on the corpus's database."""
    server = LiveServer(server_settings(search_database))
    await server.start()
    async with graphql_client(server.url) as post:
        yield post
    await server.stop()


@pytest.fixture(scope="session")
async def corpus_db(search_database: URL) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(search_database))
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
async def corpus(corpus_db: asyncpg.Connection) -> Corpus:
    rng = random.Random(12)
    db = corpus_db
    start = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
    ids = []
    for index, owner in enumerate([VIEWER, VIEWER, VIEWER, OTHER]):
        conversation_id = await db.fetchval(
            "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
            " started_at, owner_id, visibility) VALUES ($1, 'transcript', 'test', $2, $3,"
            " 'private') RETURNING id",
            f"{VOCABULARY[index]} meeting {sentence(rng)}",
            start + timedelta(days=index),
            owner,
        )
        ids.append(conversation_id)
        await db.executemany(
            "INSERT INTO utterances (conversation_id, text, speaker_id, speaker_name,"
            " sequence_number, timestamp_start, timestamp_end) VALUES ($1, $2, $3, $4, $5, $6,"
            " $7)",
            [
                (
                    conversation_id,
                    sentence(rng),
                    f"s{n % 3}",
                    f"Speaker {n % 3}",
                    n,
                    n * 10.0,
                    n * 10.0 + 8,
                )
                for n in range(40)
            ],
        )
        for n in range(12):
            await db.execute(
                "INSERT INTO nodes (conversation_id, node_name, summary, key_points, chunk_ids,"
                " level, node_type, timestamp_start, timestamp_end, speaker_info) VALUES ($1, $2,"
                " $3, $4, '{}', $5, $6, $7, $8, $9)",
                conversation_id,
                sentence(rng),
                sentence(rng),
                [sentence(rng), sentence(rng)] if n % 2 else None,
                1 + n % 3,
                "topic" if n % 4 else "crux",
                n * 30.0,
                n * 30.0 + 25,
                json.dumps({"primary_speaker": f"s{n % 3}"}),
            )
        await db.executemany(
            "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
            " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
            " total_cost, latency_ms, status, started_at) VALUES ($1, '/v1/chat', $2, $3, $4, $5,"
            " $6, $7, $8, $9, $10, $11, $12, $13)",
            [call(rng, conversation_id) for _ in range(150)],
        )
    orphan = await db.fetchval(
        "INSERT INTO api_calls_log (conversation_id, endpoint, feature, provider, model,"
        " prompt_tokens, completion_tokens, total_tokens, prompt_cost, completion_cost,"
        " total_cost, latency_ms, status, started_at) VALUES (NULL, '/v1/chat', 'summary',"
        " 'openai', 'gpt-4o', 1, 1, 2, 1, 1, 2, 5, 'success', now()) RETURNING id"
    )
    return Corpus(mine=ids[:3], foreign=ids[3], orphan_call=orphan)


def call(rng: random.Random, conversation_id: uuid.UUID) -> tuple:
    model = rng.choice(MODELS)
    prompt, completion = rng.randint(10, 3000), rng.randint(0, 800)
    prompt_cost = Decimal(rng.randint(0, 999_999)) / 1_000_000
    completion_cost = Decimal(rng.randint(0, 99_999)) / 1_000_000
    # Around Europe/Berlin's spring-forward (2026-03-29) and fall-back (2026-10-25), and midnights.
    base = rng.choice(
        [datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 10, 24, 21, tzinfo=UTC)]
    )
    started = base + timedelta(minutes=rng.randint(0, 60 * 30))
    return (
        conversation_id,
        rng.choice(FEATURES),
        "openai" if model == "gpt-4o" else "other",
        model,
        prompt,
        completion,
        prompt + completion,
        float(prompt_cost),
        float(completion_cost),
        float(prompt_cost + completion_cost),
        None if rng.random() < 0.15 else rng.choice([100, 200, 200, 350, 1200]),
        rng.choice(["success", "success", "error"]),
        started,
    )
