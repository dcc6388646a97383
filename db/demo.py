"""Realistic generated conversations: the demo graph, test fixtures and the benchmark's data.

Everything is built in Python from one seeded `random.Random` and written with one `COPY` per
table, so a 10,000-node conversation (50,000 utterances, 30,000 relationships) takes a few seconds.
The same `seed` always gives the same conversation. Ids are random unless `id_seed` is given: a
fixed id seed makes the ids reproducible too, but then a second conversation with the same id
seed in the same database collides with the first.

The rows keep every rule the API keeps and the database cannot enforce: `parent_id` and
`children_ids` agree, predecessor and successor form one chain per level, both ends of a
relationship belong to its conversation, each utterance's `node_id` names a node whose
`utterance_ids` lists it, cluster membership is nested, and the conversation's counters are right.

Pass an `asyncpg.Connection` (the rows are committed unless it is already inside a transaction)
or a SQLAlchemy `AsyncSession` / `AsyncConnection` (the rows join its transaction and the caller
commits).
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.enums import ConversationType, values

LEVELS = 5
LEVEL_RATIO = 4  # each level has about four times as many nodes as the one above it
BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

FIRST_NAMES = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Grace", "Hiroshi", "Ines", "Jonas",
    "Keiko", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tamar",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Lindqvist", "Moreau", "Petrova", "Haddad", "Tanaka", "Silva", "Novak", "Osei",
    "Kowalski", "Reyes", "Fischer", "Nair", "Byrne", "Costa", "Yilmaz",
)  # fmt: skip
THEMES = (
    "Product roadmap", "Hiring plan", "Pricing", "Onboarding flow", "Infrastructure costs",
    "Customer feedback", "Launch timeline", "Security review", "Data retention", "Team rituals",
    "Partnerships", "Research agenda", "Mobile app", "Support backlog", "Quarterly goals",
)  # fmt: skip
SUBJECTS = (
    "latency budget", "trial conversion", "search ranking", "churn in month two", "the audit log",
    "GPU spend", "interview loop", "release cadence", "the design system", "offline mode",
    "usage-based billing", "the enterprise tier", "incident reviews", "data export", "SSO",
    "the beta cohort", "error budgets", "transcription accuracy", "speaker diarisation",
    "the canvas editor", "notification fatigue", "the public API", "cache invalidation",
    "vendor lock-in", "accessibility", "the analytics pipeline", "regional hosting", "on-call load",
)  # fmt: skip
ANGLES = (
    "risks", "open questions", "trade-offs", "first steps", "evidence", "the decision",
    "a counter-proposal", "metrics", "dependencies", "customer quotes", "the estimate", "a recap",
)  # fmt: skip
OPENERS = (
    "I think", "Honestly,", "So", "Right, and", "Wait,", "To be fair,", "My worry is that",
    "From what I saw,", "If we look at the numbers,", "Can we agree that", "Let me push back:",
    "Building on that,", "Quick question:", "Okay, so", "The way I see it,",
)  # fmt: skip
CLAUSES = (
    "{subject} is where most of the {angle} are hiding",
    "we keep coming back to {subject} without settling {angle}",
    "the data on {subject} does not support that yet",
    "{subject} could ship in two weeks if we cut scope",
    "nobody owns {subject} right now and that shows",
    "customers mention {subject} in almost every call",
    "we should write down {angle} for {subject} before deciding",
    "{subject} depends on the migration landing first",
    "the last experiment on {subject} moved the metric by a few points",
    "I would rather measure {subject} than argue about it",
    "{subject} is a tangent, but an important one",
    "the {angle} around {subject} are mostly about staffing",
)  # fmt: skip
TAILS = (
    "", "", "", " right now", " this quarter", " before the launch", ", as far as I can tell",
    " for the enterprise customers", ", which surprised me", " if we are honest",
)  # fmt: skip
EMOTIONS = ("neutral", "neutral", "neutral", "curious", "confident", "concerned", "excited")
SOURCES = {
    "live_audio": ("google_meet", "zoom"),
    "transcript": ("transcript_upload", "otter"),
    "chat": ("slack", "discord"),
    "hybrid": ("google_meet", "slack"),
}
GOAL_TYPES = ("learn", "decide", "build_rapport", "brainstorm", "resolve_conflict", "custom")
TRANSITION_TYPES = ("question_answer", "interruption", "handoff", "agreement")
RELATIONSHIP_TYPES = (
    "supports", "elaborates", "contradicts", "questions", "answers", "builds_on",
    "contextual_related", "diverges", "resolves", "revisits", "depends_on", "crux",
)  # fmt: skip
RELATIONSHIP_WEIGHTS = (14, 14, 7, 7, 6, 12, 12, 4, 5, 6, 6, 2)
COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
ICONS = ("lightbulb", "flag", "chat", "target", "users", "alert", "chart", "book")
MODELS = (
    ("openai", "gpt-4o-mini", 0.15, 0.60),
    ("openai", "gpt-4o", 2.50, 10.0),
    ("anthropic", "claude-3-5-haiku", 0.80, 4.0),
    ("anthropic", "claude-sonnet-4", 3.0, 15.0),
)  # (provider, model, $ per million prompt tokens, $ per million completion tokens)
FEATURES = (
    "node_extraction", "summarisation", "relationship_detection", "clustering",
    "speaker_attribution",
)  # fmt: skip

CONVERSATION_COLUMNS = (
    "id", "conversation_name", "conversation_type", "source_type", "source_metadata",
    "participant_count", "participants", "started_at", "ended_at", "duration_seconds", "goals",
    "goal_progress", "created_at", "updated_at", "deleted_at", "owner_id", "visibility",
    "shared_with", "total_utterances", "total_words", "total_nodes", "total_claims",
)  # fmt: skip
NODE_COLUMNS = (
    "id", "conversation_id", "node_name", "summary", "key_points", "node_type", "level",
    "parent_id", "children_ids", "is_bookmark", "is_contextual_progress", "is_tangent", "is_crux",
    "predecessor_id", "successor_id", "chunk_ids", "utterance_ids", "speaker_info",
    "speaker_transitions", "dialogue_type", "timestamp_start", "timestamp_end",
    "duration_seconds", "cluster_info", "display_preferences", "canvas_x", "canvas_y",
    "canvas_width", "canvas_height", "zoom_level_visible", "confidence_score", "created_at",
    "updated_at",
)  # fmt: skip
UTTERANCE_COLUMNS = (
    "id", "conversation_id", "text", "text_cleaned", "speaker_id", "speaker_name", "speaker_role",
    "sequence_number", "timestamp_start", "timestamp_end", "duration_seconds", "chunk_id",
    "node_id", "thread_id", "confidence_score", "language", "emotion", "energy_level",
    "platform_metadata", "created_at", "updated_at",
)  # fmt: skip
RELATIONSHIP_COLUMNS = (
    "id", "conversation_id", "from_node_id", "to_node_id", "relationship_type",
    "relationship_subtype", "explanation", "strength", "confidence", "supporting_utterance_ids",
    "is_bidirectional", "created_at", "updated_at",
)  # fmt: skip
CLUSTER_COLUMNS = (
    "id", "conversation_id", "cluster_name", "level", "parent_cluster_id", "node_ids",
    "child_cluster_ids", "summary", "key_themes", "auto_generated", "clustering_algorithm",
    "clustering_confidence", "color", "icon", "created_at", "updated_at",
)  # fmt: skip
EDIT_COLUMNS = (
    "id", "conversation_id", "target_type", "target_id", "field_name", "old_value", "new_value",
    "edit_type", "user_comment", "user_id", "user_confidence", "exported_for_training",
    "training_dataset_id", "created_at",
)  # fmt: skip
API_CALL_COLUMNS = (
    "id", "conversation_id", "endpoint", "feature", "provider", "model", "prompt_tokens",
    "completion_tokens", "total_tokens", "prompt_cost", "completion_cost", "total_cost",
    "latency_ms", "status", "error_message", "started_at", "completed_at", "request_id",
)  # fmt: skip

TABLES = (
    ("conversations", CONVERSATION_COLUMNS),
    ("nodes", NODE_COLUMNS),
    ("utterances", UTTERANCE_COLUMNS),
    ("relationships", RELATIONSHIP_COLUMNS),
    ("clusters", CLUSTER_COLUMNS),
    ("edits_log", EDIT_COLUMNS),
    ("api_calls_log", API_CALL_COLUMNS),
)

Record = tuple[Any, ...]


@dataclass
class _Rows:
    """The rows of one or more generated conversations, one list per table, in COPY order."""

    tables: dict[str, list[Record]] = field(
        default_factory=lambda: {table: [] for table, _ in TABLES}
    )


class _Ids:
    """Version-4 UUIDs from a seeded generator, so a fixed id seed reproduces every id."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed) if seed is not None else random.SystemRandom()

    def new(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)


def conversation_id_for(id_seed: int) -> uuid.UUID:
    """The id `generate_conversation(..., id_seed=id_seed)` gives its conversation."""
    return _Ids(id_seed).new()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def level_counts(total: int) -> list[int]:
    """How many nodes each level gets: at least one per level, about 4x more per level down."""
    levels = min(LEVELS, total)
    if levels == 0:
        return []
    weights = [LEVEL_RATIO**index for index in range(levels)]
    spare = total - levels
    shares = [spare * weight / sum(weights) for weight in weights]
    counts = [1 + int(share) for share in shares]
    by_remainder = sorted(range(levels), key=lambda index: int(shares[index]) - shares[index])
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    return counts


def _initial(text: str) -> str:
    """Capitalised without lowering the rest (`capitalize()` would turn "SSO" into "Sso")."""
    return text[:1].upper() + text[1:]


def _sentence(rng: random.Random, subject: str, angle: str) -> str:
    clause = rng.choice(CLAUSES).format(subject=subject, angle=angle)
    return f"{rng.choice(OPENERS)} {clause}{rng.choice(TAILS)}."


def _build_conversation(
    rows: _Rows,
    rng: random.Random,
    ids: _Ids,
    *,
    nodes: int,
    owner_id: str,
    name: str | None,
    visibility: str,
    conversation_type: str | None,
    started_at: datetime | None,
    shared_with: Sequence[str] | None,
    utterances_per_node: int,
    relationships_per_node: float,
) -> uuid.UUID:
    conversation_id = ids.new()
    conversation_type = conversation_type or rng.choice(values(ConversationType))
    source_type = rng.choice(SOURCES[conversation_type])
    started_at = started_at or BASE_TIME + timedelta(
        days=rng.randrange(365), hours=rng.randrange(10), minutes=rng.randrange(60)
    )
    themes = rng.sample(THEMES, 3)
    name = name or f"{themes[0]} sync: {themes[1].lower()} and {themes[2].lower()}"

    people = rng.sample([(f, s) for f in FIRST_NAMES for s in LAST_NAMES], rng.randint(3, 6))
    participants = []
    for index, (first, last) in enumerate(people):
        role = "facilitator" if index == 0 else "participant"
        if index == len(people) - 1 and len(people) > 3:
            role = "observer"
        participants.append(
            {
                "id": f"spk_{index + 1}",
                "name": f"{first} {last}",
                "role": role,
                "email": f"{first.lower()}.{last.lower()}@example.com",
                "platform_id": f"{source_type}:{rng.getrandbits(32):08x}",
            }
        )
    # observers listen; everyone else speaks, the facilitator a little more often
    speakers = [p for p in participants if p["role"] != "observer"]
    speaker_weights = [3 if p["role"] == "facilitator" else 2 for p in speakers]
    goals = [
        {
            "goal_type": goal_type,
            "description": f"{goal_type.replace('_', ' ').capitalize()}: {theme.lower()}",
            "target_metric": "decisions_recorded" if goal_type == "decide" else None,
            "target_value": 2 if goal_type == "decide" else None,
            "weight": round(rng.uniform(0.2, 1.0), 2),
        }
        for goal_type, theme in zip(rng.sample(GOAL_TYPES, rng.randint(1, 3)), themes, strict=False)
    ]
    goal_progress = {goal["goal_type"]: round(rng.random(), 2) for goal in goals}

    # The hierarchy: level L+1 nodes are split into contiguous runs under level L nodes, and time
    # runs through it in pre-order, so a node's span covers its descendants and each level's index
    # order is its time order.
    counts = level_counts(nodes)
    by_level: list[list[int]] = []
    next_index = 0
    for count in counts:
        by_level.append(list(range(next_index, next_index + count)))
        next_index += count
    node_ids = [ids.new() for _ in range(nodes)]
    level_of = [0] * nodes
    parent_of: list[int | None] = [None] * nodes
    children_of: list[list[int]] = [[] for _ in range(nodes)]
    for level_index, members in enumerate(by_level):
        for position, node in enumerate(members):
            level_of[node] = level_index + 1
            if level_index:
                above = by_level[level_index - 1]
                parent_node = above[position * len(above) // len(members)]
                parent_of[node] = parent_node
                children_of[parent_node].append(node)
    pre_order: list[int] = []
    stack = list(reversed(by_level[0])) if by_level else []
    while stack:
        node = stack.pop()
        pre_order.append(node)
        stack.extend(reversed(children_of[node]))

    subject_of = [rng.choice(SUBJECTS) for _ in range(nodes)]
    angle_of = [rng.choice(ANGLES) for _ in range(nodes)]
    theme_of = [""] * nodes
    root_of: list[int] = [0] * nodes
    for node in pre_order:
        parent = parent_of[node]
        root_of[node] = node if parent is None else root_of[parent]
        theme_of[node] = rng.choice(THEMES) if parent is None else theme_of[parent]

    # utterances, in pre-order, five (utterances_per_node) per node, chunked by 25
    utterance_rows = rows.tables["utterances"]
    utterance_ids_of: list[list[uuid.UUID]] = [[] for _ in range(nodes)]
    speakers_of: list[list[int]] = [[] for _ in range(nodes)]
    words_of_speaker: list[Counter[int]] = [Counter() for _ in range(nodes)]
    snippets_of: list[list[str]] = [[] for _ in range(nodes)]
    start_of = [0.0] * nodes
    own_end_of = [0.0] * nodes
    chunk_ids_of: list[list[uuid.UUID]] = [[] for _ in range(nodes)]
    platform = {"platform": source_type}
    platform_json = _dumps(platform)
    clock = 0.0
    sequence = 0
    total_words = 0
    chunk_id = ids.new()
    speaker_count = len(speakers)
    for node in pre_order:
        primary = rng.choices(range(speaker_count), weights=speaker_weights)[0]
        start_of[node] = clock
        for _ in range(utterances_per_node):
            speaker = primary if rng.random() < 0.6 else rng.randrange(speaker_count)
            text = _sentence(rng, subject_of[node], angle_of[node])
            words = len(text.split())
            total_words += words
            duration = round(words * rng.uniform(0.3, 0.45), 2)
            start = round(clock, 2)
            end = round(start + duration, 2)
            clock = end + rng.uniform(0.2, 1.5)
            if sequence and sequence % 25 == 0:
                chunk_id = ids.new()
            if not chunk_ids_of[node] or chunk_ids_of[node][-1] != chunk_id:
                chunk_ids_of[node].append(chunk_id)
            utterance_id = ids.new()
            utterance_ids_of[node].append(utterance_id)
            speakers_of[node].append(speaker)
            words_of_speaker[node][speaker] += words
            snippets_of[node].append(text)
            person = speakers[speaker]
            at = started_at + timedelta(seconds=end)
            utterance_rows.append(
                (
                    utterance_id,
                    conversation_id,
                    text,
                    text,
                    person["id"],
                    person["name"],
                    person["role"],
                    sequence,
                    start,
                    end,
                    duration,
                    chunk_id,
                    node_ids[node],
                    node_ids[root_of[node]],
                    round(rng.uniform(0.78, 0.99), 3),
                    "en",
                    rng.choice(EMOTIONS),
                    round(rng.uniform(0.2, 0.9), 2),
                    platform_json,
                    at,
                    at,
                )
            )
            sequence += 1
        own_end_of[node] = end
    end_of = own_end_of[:]
    for node in reversed(pre_order):
        parent = parent_of[node]
        if parent is not None and end_of[node] > end_of[parent]:
            end_of[parent] = end_of[node]

    # clusters: leaf clusters take contiguous runs of the pre-order, parents take their children's
    # nodes, over three levels (1 is the broadest)
    leaf_count = max(min(2, nodes), nodes // 20)
    cluster_counts = [max(1, -(-leaf_count // 16)), max(1, -(-leaf_count // 4)), leaf_count]
    if not nodes:
        cluster_counts = []
    cluster_levels: list[list[uuid.UUID]] = [[ids.new() for _ in range(c)] for c in cluster_counts]
    cluster_parent: dict[uuid.UUID, uuid.UUID | None] = {}
    cluster_children: dict[uuid.UUID, list[uuid.UUID]] = {}
    cluster_nodes: dict[uuid.UUID, list[uuid.UUID]] = {}
    for level_index, level_clusters in enumerate(cluster_levels):
        for position, cluster in enumerate(level_clusters):
            cluster_children[cluster] = []
            cluster_nodes[cluster] = []
            if level_index:
                above_clusters = cluster_levels[level_index - 1]
                parent_cluster = above_clusters[
                    position * len(above_clusters) // len(level_clusters)
                ]
                cluster_parent[cluster] = parent_cluster
                cluster_children[parent_cluster].append(cluster)
            else:
                cluster_parent[cluster] = None
    leaves = cluster_levels[-1] if cluster_levels else []
    leaf_of = leaves[:1] * nodes
    for position, node in enumerate(pre_order):
        leaf = leaves[position * len(leaves) // nodes]
        leaf_of[node] = leaf
        walk: uuid.UUID | None = leaf
        while walk is not None:
            cluster_nodes[walk].append(node_ids[node])
            walk = cluster_parent[walk]
    cluster_names = {
        cluster: f"{_initial(rng.choice(SUBJECTS))} ({rng.choice(ANGLES)})"
        for cluster in cluster_nodes
    }

    # nodes
    node_rows = rows.tables["nodes"]
    created = started_at + timedelta(seconds=max(end_of, default=0.0) + 120)
    scale = 10  # canvas pixels per second of conversation: atomic nodes do not overlap
    for node in range(nodes):
        level = level_of[node]
        members = by_level[level - 1]
        position = node - members[0]
        predecessor = node_ids[node - 1] if position > 0 else None
        successor = node_ids[node + 1] if position < len(members) - 1 else None
        node_speakers = speakers_of[node]
        contributions = words_of_speaker[node]
        spoken = sum(contributions.values())
        primary = contributions.most_common(1)[0][0]
        speaker_info: dict[str, Any] = {
            "primary_speaker": speakers[primary]["id"],
            "speaker_name": speakers[primary]["name"],
            "contribution_percentage": round(100 * contributions[primary] / spoken, 1),
            "secondary_speakers": [
                {"speaker_id": speakers[other]["id"], "percentage": round(100 * n / spoken, 1)}
                for other, n in contributions.most_common()
                if other != primary
            ],
        }
        transitions = [
            _dumps(
                {
                    "from_speaker": speakers[node_speakers[index - 1]]["id"],
                    "to_speaker": speakers[node_speakers[index]]["id"],
                    "utterance_index": index,
                    "transition_type": rng.choice(TRANSITION_TYPES),
                    "context_snippet": snippets_of[node][index][:60],
                }
            )
            for index in range(1, len(node_speakers))
            if node_speakers[index] != node_speakers[index - 1]
        ]
        distinct = len(contributions)
        if distinct == 1:
            dialogue_type = "monologue"
        elif rng.random() < 0.1:
            dialogue_type = "consensus"
        else:
            dialogue_type = "dialogue" if distinct == 2 else "multi-party"
        subject = subject_of[node]
        angle = angle_of[node]
        if level == 1:
            node_name = f"{theme_of[node]}: {subject}"
        elif level == LEVELS:
            node_name = f"{speakers[primary]['name'].split()[0]} on {subject} ({angle})"
        else:
            node_name = f"{_initial(subject)}: {angle}"
        summary = (
            f"{speakers[primary]['name']} leads a {dialogue_type} on {subject}, "
            f"focusing on {angle} within {theme_of[node].lower()}."
        )
        start = start_of[node]
        end = end_of[node]
        leaf = leaf_of[node]
        node_rows.append(
            (
                node_ids[node],
                conversation_id,
                node_name,
                summary,
                [snippets_of[node][0], f"Open: {angle} for {subject}"],
                "conversational_thread" if level < LEVELS else "utterance_group",
                level,
                None if parent_of[node] is None else node_ids[parent_of[node]],  # type: ignore[index]
                [node_ids[child] for child in children_of[node]],
                rng.random() < 0.05,
                rng.random() < 0.12,
                rng.random() < 0.08,
                rng.random() < 0.04,
                predecessor,
                successor,
                chunk_ids_of[node],
                utterance_ids_of[node],
                _dumps(speaker_info),
                transitions,
                dialogue_type,
                round(start, 2),
                round(end, 2),
                round(end - start, 2),
                _dumps({"cluster_id": str(leaf), "cluster_name": cluster_names[leaf]}),
                _dumps({"color": COLORS[level - 1], "collapsed": level < 3}),
                int(start * scale),
                (level - 1) * 320 + rng.randrange(-40, 41),
                max(350, int((end - start) * scale)) if level < LEVELS else 350,
                200 + 20 * (LEVELS - level),
                [level, level + 1] if level < LEVELS else [level],
                round(rng.uniform(0.6, 0.98), 3),
                created,
                created,
            )
        )

    # relationships: the temporal chain of each level, then typed links between nearby nodes
    relationship_rows = rows.tables["relationships"]
    seen: set[tuple[int, int, str]] = set()
    relationship_ids: list[uuid.UUID] = []

    def link(source: int, target: int, kind: str, explanation: str) -> None:
        if source == target or (source, target, kind) in seen:
            return
        seen.add((source, target, kind))
        supporting = utterance_ids_of[source][: 1 + rng.randrange(2)]
        relationship_ids.append(ids.new())
        relationship_rows.append(
            (
                relationship_ids[-1],
                conversation_id,
                node_ids[source],
                node_ids[target],
                kind,
                rng.choice((None, None, "explicit", "implicit")),
                explanation,
                1.0 if kind == "temporal_next" else round(rng.uniform(0.3, 1.0), 2),
                1.0 if kind == "temporal_next" else round(rng.uniform(0.5, 1.0), 2),
                supporting,
                kind in ("contextual_related", "contradicts"),
                created,
                created,
            )
        )

    for members in by_level:
        for earlier, later in itertools.pairwise(members):
            link(earlier, later, "temporal_next", "Comes next in the conversation.")
    if nodes > 1:
        wanted = round(relationships_per_node * nodes)
        attempts = 0
        while len(seen) < wanted and attempts < 4 * wanted:
            attempts += 1
            source = rng.randrange(nodes)
            members = by_level[level_of[source] - 1]
            if rng.random() < 0.75 and len(members) > 1:
                offset = rng.choice((-1, 1)) * (1 + min(int(rng.expovariate(0.4)), 12))
                target = members[min(max(source - members[0] + offset, 0), len(members) - 1)]
            else:
                target = rng.randrange(nodes)
            kind = rng.choices(RELATIONSHIP_TYPES, weights=RELATIONSHIP_WEIGHTS)[0]
            link(
                source,
                target,
                kind,
                f"{_initial(subject_of[source])} {kind.replace('_', ' ')} "
                f"the point on {subject_of[target]}.",
            )

    # clusters
    cluster_rows = rows.tables["clusters"]
    for level_index, level_clusters in enumerate(cluster_levels):
        for cluster in level_clusters:
            cluster_rows.append(
                (
                    cluster,
                    conversation_id,
                    cluster_names[cluster],
                    level_index + 1,
                    cluster_parent[cluster],
                    cluster_nodes[cluster],
                    cluster_children[cluster],
                    f"{len(cluster_nodes[cluster])} nodes about {cluster_names[cluster]}.",
                    rng.sample(SUBJECTS, 3),
                    rng.random() < 0.9,
                    rng.choice(("hdbscan", "agglomerative", "llm_topic_grouping")),
                    round(rng.uniform(0.55, 0.97), 3),
                    rng.choice(COLORS),
                    rng.choice(ICONS),
                    created,
                    created,
                )
            )

    # edits: the corrections people made on the canvas afterwards
    edit_rows = rows.tables["edits_log"]
    all_utterances = [u for node in range(nodes) for u in utterance_ids_of[node]]
    all_clusters = list(cluster_nodes)
    for index in range(max(3, nodes // 10) if nodes else 0):
        at = created + timedelta(minutes=5 + index * 3)
        pick = rng.random()
        node = rng.randrange(nodes)
        edit: tuple[str, uuid.UUID, str, str, str | None, str]
        if pick < 0.4:
            edit = ("node", node_ids[node], "node_name", f"Topic {node}", None, "correction")
        elif pick < 0.55 and relationship_ids:
            edit = (
                "relationship",
                rng.choice(relationship_ids),
                "relationship_type",
                "supports",
                "elaborates",
                "correction",
            )
        elif pick < 0.7:
            edit = (
                "cluster",
                rng.choice(all_clusters),
                "cluster_name",
                "Misc",
                None,
                "correction",
            )
        elif pick < 0.85:
            edit = (
                "utterance",
                rng.choice(all_utterances),
                "text",
                "we keep coming back to this without settling it",
                None,
                "correction",
            )
        else:
            edit = (
                "speaker_attribution",
                rng.choice(all_utterances),
                "speaker_id",
                "spk_1",
                speakers[rng.randrange(speaker_count)]["id"],
                "correction",
            )
        target_type, target_id, field_name, old, new, edit_type = edit
        if target_type == "node" and rng.random() < 0.2:
            edit_type = rng.choice(("addition", "merge", "split"))
        if new is None:
            new = f"{_initial(subject_of[node])}, clarified"
        exported = rng.random() < 0.2
        edit_rows.append(
            (
                ids.new(),
                conversation_id,
                target_type,
                target_id,
                field_name,
                old,
                new,
                edit_type,
                rng.choice((None, None, "The model got this one wrong.", "Clearer wording.")),
                owner_id,
                round(rng.uniform(0.6, 1.0), 2),
                exported,
                "dataset-2026-01" if exported else None,
                at,
            )
        )

    # API calls: what the analysis of this conversation cost
    api_rows = rows.tables["api_calls_log"]
    for index in range(max(3, nodes // 25) if nodes else 0):
        provider, model, prompt_price, completion_price = rng.choice(MODELS)
        prompt_tokens = rng.randrange(800, 12000)
        completion_tokens = rng.randrange(100, 2000)
        prompt_cost = round(prompt_tokens * prompt_price / 1e6, 6)
        completion_cost = round(completion_tokens * completion_price / 1e6, 6)
        latency = rng.randrange(300, 9000)
        failed = rng.random() < 0.05
        at = created - timedelta(seconds=60) + timedelta(seconds=index * 2)
        api_rows.append(
            (
                ids.new(),
                conversation_id,
                "/v1/messages" if provider == "anthropic" else "/v1/chat/completions",
                rng.choice(FEATURES),
                provider,
                model,
                prompt_tokens,
                completion_tokens,
                prompt_tokens + completion_tokens,
                prompt_cost,
                completion_cost,
                round(prompt_cost + completion_cost, 6),
                latency,
                "error" if failed else "success",
                "rate limited (429), retried" if failed else None,
                at,
                at + timedelta(milliseconds=latency),
                f"req_{rng.getrandbits(64):016x}",
            )
        )

    duration = max(end_of, default=0.0)
    rows.tables["conversations"].append(
        (
            conversation_id,
            name,
            conversation_type,
            source_type,
            _dumps({"platform": source_type, "recording": conversation_type != "chat"}),
            len(participants),
            [_dumps(p) for p in participants],
            started_at,
            started_at + timedelta(seconds=duration),
            int(duration),
            [_dumps(goal) for goal in goals],
            _dumps(goal_progress),
            created,
            created,
            None,
            owner_id,
            visibility,
            list(shared_with) if shared_with else None,
            nodes * utterances_per_node,
            total_words,
            nodes,
            0,
        )
    )
    return conversation_id


@asynccontextmanager
async def _driver_connection(
    connection: asyncpg.Connection | AsyncConnection | AsyncSession,
) -> Any:
    """The asyncpg connection under whatever the caller holds, inside a transaction."""
    if isinstance(connection, AsyncSession):
        connection = await connection.connection()
    if isinstance(connection, AsyncConnection):
        # SQLAlchemy begins the driver's transaction lazily, on the first statement: run one so
        # the COPYs below join the caller's transaction instead of committing on their own
        await connection.exec_driver_sql("SELECT 1")
        raw = await connection.get_raw_connection()
        yield raw.driver_connection
        return
    if connection.is_in_transaction():
        yield connection
        return
    async with connection.transaction():
        yield connection


async def _write(
    connection: asyncpg.Connection | AsyncConnection | AsyncSession, rows: _Rows
) -> None:
    async with _driver_connection(connection) as driver:
        for table, columns in TABLES:
            records = rows.tables[table]
            if records:
                await driver.copy_records_to_table(table, records=records, columns=columns)


async def generate_conversation(
    connection: asyncpg.Connection | AsyncConnection | AsyncSession,
    *,
    nodes: int,
    seed: int = 0,
    owner_id: str = "local-user",
    name: str | None = None,
    visibility: str = "private",
    conversation_type: str | None = None,
    started_at: datetime | None = None,
    shared_with: Sequence[str] | None = None,
    utterances_per_node: int = 5,
    relationships_per_node: float = 3.0,
    id_seed: int | None = None,
) -> uuid.UUID:
    """Writes one conversation of `nodes` nodes over five levels and returns its id."""
    if nodes < 0 or utterances_per_node < 1:
        raise ValueError("nodes must be 0 or more and utterances_per_node at least 1")
    rows = _Rows()
    conversation_id = _build_conversation(
        rows,
        random.Random(seed),
        _Ids(id_seed),
        nodes=nodes,
        owner_id=owner_id,
        name=name,
        visibility=visibility,
        conversation_type=conversation_type,
        started_at=started_at,
        shared_with=shared_with,
        utterances_per_node=utterances_per_node,
        relationships_per_node=relationships_per_node,
    )
    await _write(connection, rows)
    return conversation_id


def _small_sizes(rng: random.Random, count: int, smallest: int, largest: int) -> Iterator[int]:
    for _ in range(count):
        yield rng.randint(smallest, largest)


async def generate_small_conversations(
    connection: asyncpg.Connection | AsyncConnection | AsyncSession,
    *,
    count: int = 300,
    seed: int = 0,
    owner_ids: Sequence[str] = ("local-user",),
    visibilities: Sequence[str] = ("private",),
    smallest: int = 3,
    largest: int = 15,
    utterances_per_node: int = 5,
    id_seed: int | None = None,
) -> list[uuid.UUID]:
    """Writes `count` small conversations (owners and visibilities taken in turn) in one go."""
    rng = random.Random(seed)
    ids = _Ids(id_seed)
    rows = _Rows()
    created = [
        _build_conversation(
            rows,
            random.Random(rng.getrandbits(64)),
            ids,
            nodes=size,
            owner_id=owner_ids[index % len(owner_ids)],
            name=None,
            visibility=visibilities[index % len(visibilities)],
            conversation_type=None,
            started_at=None,
            shared_with=None,
            utterances_per_node=utterances_per_node,
            relationships_per_node=3.0,
        )
        for index, size in enumerate(_small_sizes(rng, count, smallest, largest))
    ]
    await _write(connection, rows)
    return created
