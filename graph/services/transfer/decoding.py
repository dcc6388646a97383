"""A document's JSON into column values: each value checked against its column's type, each
reference replaced by the UUID it is stored under. Errors name the JSON path of the value."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Boolean, DateTime, Float, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from db.models import Conversation
from graph.services.common import check_json, check_text
from graph.services.errors import ErrorCode, InvalidInput
from graph.services.transfer.document import (
    CONVERSATION_SKIP,
    FORMAT,
    MAX_ROWS,
    MODELS,
    REFERENCES,
    ROW_SKIP,
    VERSION,
)


def sections_of(document: Any) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """The document's sections and its conversation object, once its outer shape is right."""
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
    meta = document.get("conversation")
    if not isinstance(meta, dict):
        raise InvalidInput("conversation must be an object.", field="conversation")
    return sections, meta


def conversation_values(meta: dict[str, Any]) -> dict[str, Any]:
    """The conversation's columns the document sets (ownership, state and counters are not)."""
    columns = {column.key: column for column in Conversation.__table__.columns}
    values: dict[str, Any] = {}
    for key, raw in meta.items():
        name = _snake(key)
        if name in CONVERSATION_SKIP:
            continue
        if name not in columns:
            raise InvalidInput(f"Unknown field {key}.", field=f"conversation.{key}")
        values[name] = _decoder(columns[name].type)(raw, f"conversation.{key}")
    return values


def conversation_id(meta: dict[str, Any], preserve_ids: bool) -> uuid.UUID:
    if preserve_ids and meta.get("id"):
        return _uuid(meta.get("id"), "conversation.id")
    return uuid.uuid4()


def _section(document: dict[str, Any], name: str) -> list[Any]:
    items = document.get(name) or []
    if not isinstance(items, list):
        raise InvalidInput(f"{name} must be a list.", field=name)
    return items


class Reader:
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

    def rows(self, sections: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
        """Every section's rows as column values with their `id`. References are collected
        first, so that rows may point forwards and backwards."""
        for name, items in sections.items():
            for index, item in enumerate(items):
                reference = item.get("id") if isinstance(item, dict) else None
                self.new_id(name, reference, f"{name}[{index}].id")
        return {
            name: [
                {"id": self.ids[name][item["id"]], **self.row(name, item, f"{name}[{index}]")}
                for index, item in enumerate(items)
            ]
            for name, items in sections.items()
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
