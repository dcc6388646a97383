"""The documents full-text search matches, as SQL expressions in one text-search configuration.

The configuration (`LCT_SEARCH_CONFIG`, default `english`) is written into every expression as a
literal (`'english'::regconfig`): a GIN expression index serves a query only when the query's
expression is the index's, constant included, so it cannot be a bound parameter. The search
revision builds the indexes and the conversations' stored vectors with the configuration set
when it runs; README ("Search") says how to change it on an existing database.

- utterances: their `text`;
- nodes: name (weight A), summary (B) and key points (C);
- conversations: `tsv_search`, kept by triggers: the name (weight A) and the transcript (D).
"""

from __future__ import annotations

import re

# A configuration's name, optionally schema-qualified: it is pasted into SQL, so nothing else.
CONFIG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")
DEFAULT_CONFIG = "english"


def config_literal(config: str) -> str:
    """`'english'::regconfig`, for a name `CONFIG_NAME` accepts (checked again here)."""
    if not CONFIG_NAME.match(config):
        raise ValueError(f"not a text-search configuration name: {config!r}")
    return f"'{config}'::regconfig"


def utterance_vector(config: str, table: str | None = None) -> str:
    prefix = f"{table}." if table else ""
    return f"to_tsvector({config_literal(config)}, {prefix}text)"


def node_vector(config: str, table: str | None = None) -> str:
    """In PostgreSQL's own rendering of the index expression, so `alembic check` compares equal.
    `lct_joined` is `array_to_string(key_points, ' ')` declared IMMUTABLE (for text[] it is;
    PostgreSQL marks the polymorphic function STABLE), so that it may stand in an index."""
    prefix = f"{table}." if table else ""
    regconfig = config_literal(config)
    return (
        f"((setweight(to_tsvector({regconfig}, {prefix}node_name), 'A'::\"char\")"
        f" || setweight(to_tsvector({regconfig}, {prefix}summary), 'B'::\"char\"))"
        f" || setweight(to_tsvector({regconfig}, lct_joined({prefix}key_points)), 'C'::\"char\"))"
    )


JOINED_FUNCTION = """
CREATE OR REPLACE FUNCTION lct_joined(parts text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string(parts, ' '), '') $$
"""
