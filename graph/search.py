"""The `search` root field: full-text search over what the viewer may read (graph/search_sql.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from graph.context import Context
from graph.conversations import Conversation, conversation_id_of
from graph.loaders import from_json
from graph.nodes import ThreadNode
from graph.pagination import Connection, Page, PageInfo, user_error
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
    hits = hits_from_rows(await context.fetch(*search.page(first, after)))
    if not hits and after is None:
        # Nothing found: say so when the query itself can find nothing.
        (has_words,) = (await context.fetch(*search.has_words()))[0]
        if not has_words:
            raise GraphQLError(NO_WORDS, extensions={"code": "BAD_USER_INPUT"})
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


def _hit(hit: Hit) -> SearchHit:
    found: Any = from_json(hit.kind, dict(hit.row))
    return SearchHit(
        kind=SearchKind(hit.kind),
        rank=hit.rank,
        headline=hit.headline,
        conversation_id=strawberry.ID(str(hit.conversation_id)),
        hit=found,
    )
