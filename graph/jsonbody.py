"""Request bodies parsed without holding the event loop.

`json.loads` is one C call: a 30 MB import document keeps the loop from serving anyone for a second
or more, and a worker thread does not help, since the call never releases the GIL. `loads` here
walks the outer containers itself (the request object, `variables`, the document and its sections,
`OUTER_DEPTH` levels in all) and leaves every value below them to the C scanner `json.loads` uses,
one value at a time, giving the loop a turn every `SLICE_SECONDS`. The result and the errors are
those of `json.loads`. Bodies under `SMALL_BYTES` go to `json.loads` directly.
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import json
import time
from json.decoder import JSONDecodeError
from typing import Any

SMALL_BYTES = 256 * 1024
SLICE_SECONDS = 0.005
DECODE_BYTES = 1024 * 1024
# request object, variables, one variable, a field of it: the lists inside are walked element by
# element (a batched request's lists a level deeper are scanned whole: at most the body limit)
OUTER_DEPTH = 4
WHITESPACE = " \t\n\r"

_decoder = json.JSONDecoder()
_scan = json.scanner.make_scanner(_decoder)  # type: ignore[attr-defined]


async def loads(body: bytes | str) -> Any:
    """`json.loads(body)`, giving the event loop a turn every few milliseconds on a large body."""
    if len(body) < SMALL_BYTES:
        return json.loads(body)
    text = await _decode_text(body) if isinstance(body, bytes) else body
    parser = _Parser(text)
    value, end = await parser.value(_skip(text, 0), 0)
    end = _skip(text, end)
    if end != len(text):
        raise JSONDecodeError("Extra data", text, end)
    return value


async def _decode_text(body: bytes) -> str:
    """`body` as text, as `json.loads` decodes it, a piece at a time."""
    decoder = codecs.getincrementaldecoder(json.detect_encoding(body))("surrogatepass")
    pieces = []
    for start in range(0, len(body), DECODE_BYTES):
        pieces.append(decoder.decode(body[start : start + DECODE_BYTES]))
        await asyncio.sleep(0)
    pieces.append(decoder.decode(b"", final=True))
    return "".join(pieces)


def _skip(text: str, index: int) -> int:
    length = len(text)
    while index < length and text[index] in WHITESPACE:
        index += 1
    return index


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.since = time.perf_counter()

    async def pace(self) -> None:
        now = time.perf_counter()
        if now - self.since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self.since = time.perf_counter()

    async def value(self, index: int, depth: int) -> tuple[Any, int]:
        text = self.text
        if depth < OUTER_DEPTH and index < len(text):
            if text[index] == "{":
                return await self.object(index + 1, depth + 1)
            if text[index] == "[":
                return await self.array(index + 1, depth + 1)
        try:
            return _scan(text, index)
        except StopIteration as stop:
            raise JSONDecodeError("Expecting value", text, stop.value) from None

    async def object(self, index: int, depth: int) -> tuple[dict[str, Any], int]:
        text = self.text
        result: dict[str, Any] = {}
        index = _skip(text, index)
        if text[index : index + 1] == "}":
            return result, index + 1
        while True:
            if text[index : index + 1] != '"':
                raise JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, index
                )
            key, index = _scan(text, index)
            index = _skip(text, index)
            if text[index : index + 1] != ":":
                raise JSONDecodeError("Expecting ':' delimiter", text, index)
            result[key], index = await self.value(_skip(text, index + 1), depth)
            await self.pace()
            index = _skip(text, index)
            separator = text[index : index + 1]
            if separator == "}":
                return result, index + 1
            if separator != ",":
                raise JSONDecodeError("Expecting ',' delimiter", text, index)
            index = _skip(text, index + 1)

    async def array(self, index: int, depth: int) -> tuple[list[Any], int]:
        text = self.text
        result: list[Any] = []
        index = _skip(text, index)
        if text[index : index + 1] == "]":
            return result, index + 1
        while True:
            item, index = await self.value(index, depth)
            result.append(item)
            await self.pace()
            index = _skip(text, index)
            separator = text[index : index + 1]
            if separator == "]":
                return result, index + 1
            if separator != ",":
                raise JSONDecodeError("Expecting ',' delimiter", text, index)
            index = _skip(text, index + 1)


# The body `parse_ahead` parsed for the request being handled, and what it parsed to.
_ahead: contextvars.ContextVar[tuple[bytes, Any] | None] = contextvars.ContextVar(
    "lct_body_parsed_ahead", default=None
)
# Where `parse_ahead` also leaves what it parsed, when the request's middleware asked for it
# (graph.heartbeat.PauseCollection takes it apart after the response, a slice at a time).
kept: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "lct_body_kept", default=None
)


async def parse_ahead(request: Any) -> None:
    """For a strawberry view's `parse_http_body`: parses a large JSON POST body with `loads`
    before strawberry does, so that `decode` (the view's `decode_json`) hands back the result."""
    if request.method != "POST":
        return
    body = await request.get_body()
    if not isinstance(body, bytes) or len(body) < SMALL_BYTES:
        return
    if "application/json" not in (request.content_type or ""):
        return
    try:
        parsed: Any = await loads(body)
    except JSONDecodeError as error:
        parsed = error
    _ahead.set((body, parsed))
    if (keeping := kept.get()) is not None:
        keeping.append(parsed)


def decode(data: str | bytes) -> Any:
    """`json.loads(data)`, or what `parse_ahead` made of this very body (raised if an error)."""
    ahead = _ahead.get()
    if ahead is not None and ahead[0] is data:
        _ahead.set(None)
        if isinstance(ahead[1], JSONDecodeError):
            raise ahead[1]
        return ahead[1]
    return json.loads(data)
