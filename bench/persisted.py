"""What a persisted document saves per request: the server's work before execution.

    .venv/bin/python -m bench.persisted [--requests N]

Runs the real schema with the server's extensions in process (no HTTP, no database) on the
benchmark's own documents. Each document is sent with a second operation, `query Tiny {
__typename }`, which is the one executed: execution costs next to nothing, so what is measured is
what every request pays before its first SQL statement, that is reading the document, parsing it,
validating it (the standard rules are remembered per document text, `graph.limits`) and checking
its limits (with the request's variables, every time). Four ways a request arrives:

- `text, first time`: a document the server has not seen: parsed and fully validated;
- `text, repeated`: the same text again, as clients without persisted documents send it: parsed
  again, validation remembered;
- `by hash`: the APQ hash or `documentId` of a known document: its parse is reused;
- `unknown hash`: a hash nobody registered, answered `PersistedQueryNotFound`.

It also prints the request body sizes. Other processes on the machine make the absolute figures
noisy: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.http import GraphQLRequestData

from bench import documents
from db.settings import Settings
from graph.app import extensions_for
from graph.auth import ANONYMOUS
from graph.limits import VALIDATION_RESULTS
from graph.observability import Observability
from graph.persisted import PersistedDocumentError, PersistedDocuments
from graph.schema import create_schema

TINY = "\nquery Tiny { __typename }\n"
DOCUMENTS = {
    "canvas": documents.CANVAS,
    "traversal": documents.TRAVERSAL,
    "refetch": documents.REFETCH,
}


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def per_request_us(step: Callable[[], Awaitable[None]], requests: int) -> float:
    """The median over five rounds of the mean CPU time per request, in microseconds (CPU time,
    so that other processes on the machine do not count)."""
    rounds = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(requests):
            await step()
        rounds.append((time.process_time() - started) / requests * 1e6)
    return statistics.median(rounds)


async def measure(requests: int) -> list[dict[str, Any]]:
    settings = Settings()
    schema = create_schema(extensions_for(settings, Observability(settings)))
    store = PersistedDocuments(settings)
    return [
        await measure_document(schema, store, name, operation + TINY, requests)
        for name, operation in DOCUMENTS.items()
    ]


async def measure_document(
    schema: Any, store: PersistedDocuments, name: str, text: str, requests: int
) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    unknown = hashlib.sha256(b"nobody sent this").hexdigest()

    def request(query: str | None, hashed: str | None) -> GraphQLRequestData:
        return GraphQLRequestData(
            query=query,
            variables=None,
            operation_name="Tiny",
            extensions=None if hashed is None else apq(hashed),
        )

    async def run(data: GraphQLRequestData) -> None:
        result = await schema.execute(
            data.query, operation_name="Tiny", operation_extensions=data.extensions
        )
        assert result.errors is None, result.errors

    async def first_time() -> None:
        VALIDATION_RESULTS._errors.clear()
        await run(request(text.encode().decode(), None))

    async def repeated() -> None:
        # a new string per request, as a JSON body gives one
        await run(request(text.encode().decode(), None))

    async def by_hash() -> None:
        await run(store.resolve(request(None, digest), None, ANONYMOUS))

    async def unknown_hash() -> None:
        try:
            store.resolve(request(None, unknown), None, ANONYMOUS)
        except PersistedDocumentError:
            return
        raise AssertionError("an unknown hash was found")

    # registered by an APQ retry; its first use parses it
    await run(store.resolve(request(text, digest), None, ANONYMOUS))
    return {
        "document": name,
        "bytes": len(text.encode()),
        "text, first time": await per_request_us(first_time, max(requests // 10, 20)),
        "text, repeated": await per_request_us(repeated, requests),
        "by hash": await per_request_us(by_hash, requests),
        "unknown hash": await per_request_us(unknown_hash, requests),
        "body bytes, text": len(json.dumps({"query": text, "operationName": "Tiny"})),
        "body bytes, hash": len(json.dumps({"extensions": apq(digest), "operationName": "Tiny"})),
    }


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args(arguments)
    rows = asyncio.run(measure(options.requests))
    columns = ("text, first time", "text, repeated", "by hash", "unknown hash")
    print("CPU microseconds per request before execution (median of 5 rounds)")
    print(f"{'document':<10} {'bytes':>6} " + " ".join(f"{c:>17}" for c in columns) + "  saved")
    for row in rows:
        saved = row["text, repeated"] - row["by hash"]
        print(
            f"{row['document']:<10} {row['bytes']:>6} "
            + " ".join(f"{row[c]:>17.1f}" for c in columns)
            + f"  {saved:.1f} us ({saved / row['text, repeated']:.0%})"
            + f"; body {row['body bytes, text']} -> {row['body bytes, hash']} bytes"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
