"""The `search` root field: full-text search over what the viewer may read (graph/search_sql.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import orjson
import strawberry
from sqlalchemy import Text, case, cast, literal_column

from graph.context import Context
from graph.conversations import Conversation, conversation_id_of
from graph.loaders import from_json
from graph.nodes import ThreadNode
from graph.pagination import Connection, Page, PageInfo, user_error
from graph.registry import KINDS as REGISTRY
from graph.relations import STATEMENTS
from graph.rendering import Plan, Rendered, Unsupported, render_object
from graph.rendering.compiler import HELD_BY_FIELD
from graph.rendering.planner import Planner
from graph.search_sql import (
    KINDS,
    NO_WORDS,
    Hit,
    Search,
    SearchInputError,
    SearchRequest,
    decode_cursor,
    encode_cursor,
    hits_from_rows,
)
from graph.strawberry_adapter import raw_info
from graph.utterances import Utterance

Info = strawberry.Info[Context, None]


@strawberry.enum(description="What a search hit is.")
class SearchKind(Enum):
    CONVERSATION = "conversation"
    UTTERANCE = "utterance"
    NODE = "node"


SearchResult = Annotated[
    Conversation | Utterance | ThreadNode,
    strawberry.union("SearchResult", description="The object a search hit found."),
]


@strawberry.type(description="One search hit: what was found, how well it matches, and where.")
class SearchHit:
    kind: SearchKind
    rank: float = strawberry.field(
        description="Relevance: `ts_rank_cd` (cover density) divided by 1 + log(document length),"
        " scaled into [0, 1). Hits are ordered by it, then by kind and id."
    )
    headline: str = strawberry.field(
        description="The matched passage with the matched words between `<mark>` and `</mark>`"
        " (up to two fragments joined by ` … `). The text is as stored, not HTML-escaped. A"
        " conversation's headline is its name when the name matches, else its first matching"
        " utterance."
    )
    conversation_id: strawberry.ID
    hit: SearchResult = strawberry.field(description="The conversation, utterance or node.")


@strawberry.type
class SearchQuery:
    @strawberry.field(
        description="Full-text search over the conversations (name and transcript), utterances"
        " (text) and nodes (name, summary, key points) you may read, best match first."
        ' `query` is web-search syntax: words (all must match), `"quoted phrases"`, `or`,'
        " `-word` to exclude. Soft-deleted conversations are never searched. An empty query, or"
        " one with no searchable word, is BAD_USER_INPUT."
    )
    async def search(
        self,
        info: Info,
        query: str,
        kinds: Annotated[
            list[SearchKind] | None,
            strawberry.argument(description="Only these kinds of hit (default: all)."),
        ] = None,
        conversation_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description="Only in these conversations (find in a transcript)."),
        ] = None,
        speaker: Annotated[
            str | None,
            strawberry.argument(
                description="Only utterances whose speakerId or speakerName is this, and nodes"
                " whose primary speaker it is; conversations are not hits then."
            ),
        ] = None,
        started_after: Annotated[
            datetime | None,
            strawberry.argument(description="Only in conversations started at or after this."),
        ] = None,
        started_before: Annotated[
            datetime | None,
            strawberry.argument(description="Only in conversations started before this."),
        ] = None,
        time_from: Annotated[
            float | None,
            strawberry.argument(
                description="Only utterances and nodes whose time span (seconds from the start"
                " of their conversation) ends at or after this; conversations are not hits then."
            ),
        ] = None,
        time_to: Annotated[
            float | None,
            strawberry.argument(
                description="Only utterances and nodes starting at or before this (seconds)."
            ),
        ] = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SearchHit]:
        settings = info.context.settings
        size = settings.default_page_size if first is None else first
        if size < 0:
            raise user_error("`first` must not be negative.")
        if size > settings.max_page_size:
            raise user_error(
                f"`first` is {size}, more than the maximum page size {settings.max_page_size}."
            )
        try:
            request = SearchRequest(
                query=query,
                kinds=KINDS if kinds is None else tuple(kind.value for kind in kinds),
                conversation_ids=None
                if conversation_ids is None
                else tuple(conversation_id_of(value) for value in conversation_ids),
                speaker=speaker,
                started_after=started_after,
                started_before=started_before,
                time_from=time_from,
                time_to=time_to,
            )
            cursor = None if after is None else decode_cursor(after)
        except SearchInputError as error:
            raise user_error(str(error)) from None
        return await run_search(info, request, size, cursor)


async def run_search(
    info: Info,
    request: SearchRequest,
    first: int,
    after: tuple[float, int, uuid.UUID] | None,
) -> Connection[SearchHit]:
    context = info.context
    search = Search(request, context.viewer_id, context.settings.search_config)
    plan = rendered_plan(info)
    if plan is not None:
        return await _rendered(info, search, plan, first, after)
    hits = hits_from_rows(await context.fetch(*search.page(first, after)))
    if not hits and after is None:
        await _has_words(context, search)
    shown = hits[:first]
    page = Page(
        items=[_hit(hit) for hit in shown],
        cursors=[encode_cursor(hit.key) for hit in shown],
        has_next_page=len(hits) > first,
    )

    async def count() -> int:
        return int((await context.fetch(*search.count()))[0][0])

    return Connection(
        page=page,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=page.cursor(0) if shown else None,
            end_cursor=page.cursor(len(shown) - 1) if shown else None,
        ),
        count=count,
    )


async def _has_words(context: Context, search: Search) -> None:
    """Called when a first page found nothing: raises BAD_USER_INPUT when the query itself can
    find nothing (only stop words or punctuation)."""
    (has_words,) = (await context.fetch(*search.has_words()))[0]
    if not has_words:
        raise user_error(NO_WORDS)


def _hit(hit: Hit) -> SearchHit:
    found: Any = from_json(hit.kind, dict(hit.row))
    return SearchHit(
        kind=SearchKind(hit.kind),
        rank=hit.rank,
        headline=hit.headline,
        conversation_id=strawberry.ID(str(hit.conversation_id)),
        hit=found,
    )


# -- the page rendered: each hit by PostgreSQL, the connection around it by orjson ---------------
#
# A page of twenty hits completed field by field by the executor cost more than a search in one
# conversation takes PostgreSQL. When all that is selected under `search` is the hits (`edges {
# node }` or `nodes`, with `__typename`s), each hit's object is rendered in the page's statement
# (graph/rendering, from the same declarations as everywhere else) and the connection is put
# together here, in the selection's order: the executor passes it through (`Rendered`). Cursors,
# `pageInfo` and `totalCount` are answered field by field as before.

CONNECTION_FIELDS = {"__typename", "edges", "nodes"}
EDGE_FIELDS = {"__typename", "node"}
HELD_BY_FIELD.add(SearchHit.__strawberry_definition__.name)  # type: ignore[attr-defined]


def rendered_plan(info: Info) -> Plan | None:
    """The selection under `search` as a plan when this module renders all of it."""
    settings = info.context.settings
    if not settings.render_in_database:
        return None
    raw = raw_info(info)
    field = raw.parent_type.fields[raw.field_name]
    try:
        selected = Planner(raw, settings).select(
            raw.field_name, raw.field_name, field, list(raw.field_nodes)
        )
    except Unsupported:
        return None
    plan = selected.plan
    if plan is None or not {item.name for item in plan.fields} <= CONNECTION_FIELDS:
        return None
    for item in plan.fields:
        if item.name == "edges" and (
            item.plan is None or not {edge.name for edge in item.plan.fields} <= EDGE_FIELDS
        ):
            return None
    return plan


def _hit_plans(plan: Plan) -> list[Plan]:
    """The plans of `SearchHit` under the connection (one per distinct selection of it)."""
    found: list[Plan] = []
    for item in plan.fields:
        holders = [item] if item.name == "nodes" else []
        if item.name == "edges" and item.plan is not None:
            holders = [edge for edge in item.plan.fields if edge.name == "node"]
        for holder in holders:
            if holder.plan is not None and holder.plan not in found:
                found.append(holder.plan)
    return found


def _page_statement(search: Search, first: int, after: Any, plans: list[Plan], scope: Any) -> Any:
    """The page's statement with a column per distinct `hit` selection: the hit rendered."""

    def rendered(page: Any, rows: Mapping[str, Any]) -> list[Any]:
        columns = []
        for number, hit_plan in enumerate(plans):
            variants = {
                variant.type_name: variant
                for item in hit_plan.fields
                if item.name == "hit"
                for variant in item.variants or ()
            }
            cases = [
                (
                    page.c.kind == kind,
                    render_object(variants[REGISTRY[kind].type_name], row, scope),
                )
                for kind, row in rows.items()
                if variants
            ]
            value = case(*cases) if cases else literal_column("NULL::json")
            columns.append(cast(value, Text).label(f"hit{number}"))
        return columns

    key = ("search", search.shape, after is None, tuple(plans), scope.viewer_id)
    statement = STATEMENTS.get(key, lambda: search.page_selecting(after is not None, rendered))
    return statement, search.page_values(first, after)


def _rendered_hit(plan: Plan, row: Any, column: str) -> dict[str, Any]:
    values = {
        "__typename": plan.type_name,
        "kind": SearchKind(row.kind).name,
        "rank": row.rank,
        "headline": row.headline or "",
        "conversationId": str(row.conversation_id),
    }
    return {
        item.key: Rendered(row[column]) if item.name == "hit" else values[item.name]
        for item in plan.fields
    }


async def _rendered(
    info: Info,
    search: Search,
    plan: Plan,
    first: int,
    after: tuple[float, int, uuid.UUID] | None,
) -> Any:
    context = info.context
    plans = _hit_plans(plan)
    scope = context.loaders
    await context.rendering(first)  # counted and held in the render budget as any rendered list
    rows = list(await context.fetch(*_page_statement(search, first, after, plans, scope)))
    if not rows and after is None:
        await _has_words(context, search)
    shown = rows[:first]
    columns = {hit_plan: f"hit{number}" for number, hit_plan in enumerate(plans)}

    def hits(hit_plan: Plan) -> list[dict[str, Any]]:
        return [_rendered_hit(hit_plan, row._mapping, columns[hit_plan]) for row in shown]

    connection: dict[str, Any] = {}
    for item in plan.fields:
        if item.name == "__typename":
            connection[item.key] = plan.type_name
        elif item.name == "nodes":
            assert item.plan is not None
            connection[item.key] = hits(item.plan)
        else:  # edges
            assert item.plan is not None
            edges: list[dict[str, Any]] = [{} for _ in shown]
            for edge_item in item.plan.fields:
                if edge_item.name == "__typename":
                    for edge in edges:
                        edge[edge_item.key] = item.plan.type_name
                else:
                    assert edge_item.plan is not None
                    for edge, node in zip(edges, hits(edge_item.plan), strict=True):
                        edge[edge_item.key] = node
            connection[item.key] = edges
    return Rendered(orjson.dumps(connection))
