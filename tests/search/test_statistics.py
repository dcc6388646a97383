"""`conversationStatistics` against independent SQL and Python over the generated corpus."""

from __future__ import annotations

import pytest

from tests.search.conftest import Corpus

STATISTICS = """
query($id: ID!) {
  conversationStatistics(conversationId: $id) {
    conversationId
    nodesByLevel { level count }
    nodesByType { type count }
    relationshipsByType { type count averageStrength }
    speakers { speakerId speakerName utterances words speakingSeconds }
    editsByType { key count exportedForTraining }
    editsByUser { key count exportedForTraining }
  }
}"""


@pytest.fixture(scope="module")
async def graph_rows(corpus: Corpus, corpus_db):
    """Relationships and edits in the first conversation, some exported for training."""
    conversation = corpus.mine[0]
    nodes = [
        row["id"]
        for row in await corpus_db.fetch(
            "SELECT id FROM nodes WHERE conversation_id = $1 ORDER BY id", conversation
        )
    ]
    for index, (kind, strength) in enumerate(
        [("supports", 0.5), ("supports", 0.25), ("contradicts", 0.0), ("follows", 1.0)]
    ):
        await corpus_db.execute(
            "INSERT INTO relationships (conversation_id, from_node_id, to_node_id,"
            " relationship_type, strength) VALUES ($1, $2, $3, $4, $5)",
            conversation,
            nodes[index],
            nodes[index + 1],
            kind,
            strength,
        )
    for index, (edit_type, user, exported) in enumerate(
        [
            ("correction", "ann", True),
            ("correction", "ben", False),
            ("addition", "ann", True),
            ("merge", "ann", False),
        ]
    ):
        await corpus_db.execute(
            "INSERT INTO edits_log (conversation_id, target_type, target_id, field_name,"
            " edit_type, user_id, exported_for_training) VALUES ($1, 'node', $2, 'summary', $3,"
            " $4, $5)",
            conversation,
            nodes[index],
            edit_type,
            user,
            exported,
        )
    return conversation


async def test_every_figure_matches_independent_sql(graphql, corpus_db, graph_rows):
    conversation = graph_rows
    reply = await graphql(STATISTICS, id=str(conversation))
    assert not reply.errors, reply.errors
    got = reply.data["conversationStatistics"]

    levels = await corpus_db.fetch(
        "SELECT level, count(*) FROM nodes WHERE conversation_id = $1 GROUP BY 1 ORDER BY 1",
        conversation,
    )
    assert got["nodesByLevel"] == [{"level": r["level"], "count": r["count"]} for r in levels]
    types = await corpus_db.fetch(
        "SELECT node_type, count(*) FROM nodes WHERE conversation_id = $1 GROUP BY 1"
        " ORDER BY 2 DESC, 1",
        conversation,
    )
    assert got["nodesByType"] == [{"type": r["node_type"], "count": r["count"]} for r in types]
    assert got["relationshipsByType"] == [
        {"type": "supports", "count": 2, "averageStrength": pytest.approx(0.375)},
        {"type": "contradicts", "count": 1, "averageStrength": 0.0},
        {"type": "follows", "count": 1, "averageStrength": 1.0},
    ]
    utterances = await corpus_db.fetch(
        "SELECT speaker_id, speaker_name, text, duration_seconds, timestamp_start,"
        " timestamp_end FROM utterances WHERE conversation_id = $1",
        conversation,
    )
    speakers: dict[str, dict] = {}
    for row in utterances:
        item = speakers.setdefault(
            row["speaker_id"],
            {
                "speakerId": row["speaker_id"],
                "speakerName": row["speaker_name"],
                "utterances": 0,
                "words": 0,
                "speakingSeconds": 0.0,
            },
        )
        item["utterances"] += 1
        item["words"] += len(row["text"].split())
        seconds = row["duration_seconds"]
        if seconds is None and row["timestamp_end"] is not None:
            seconds = row["timestamp_end"] - row["timestamp_start"]
        item["speakingSeconds"] += seconds or 0.0
    want = sorted(speakers.values(), key=lambda item: (-item["utterances"], item["speakerId"]))
    assert got["speakers"] == want
    assert got["editsByType"] == [
        {"key": "correction", "count": 2, "exportedForTraining": 1},
        {"key": "addition", "count": 1, "exportedForTraining": 1},
        {"key": "merge", "count": 1, "exportedForTraining": 0},
    ]
    assert got["editsByUser"] == [
        {"key": "ann", "count": 3, "exportedForTraining": 2},
        {"key": "ben", "count": 1, "exportedForTraining": 0},
    ]


async def test_one_statement_per_figure(graphql, graph_rows):
    reply = await graphql(STATISTICS, id=str(graph_rows))
    # the conversation's visibility, then one statement for each of the six lists
    assert reply.statements == 7


async def test_a_conversation_without_rows_has_empty_lists(graphql, corpus_db):
    conversation = await corpus_db.fetchval(
        "INSERT INTO conversations (conversation_name, conversation_type, source_type,"
        " started_at, owner_id) VALUES ('empty', 'chat', 'test', now(), 'local-developer')"
        " RETURNING id"
    )
    try:
        reply = await graphql(STATISTICS, id=str(conversation))
        got = reply.data["conversationStatistics"]
        assert {key: value for key, value in got.items() if key != "conversationId"} == {
            "nodesByLevel": [],
            "nodesByType": [],
            "relationshipsByType": [],
            "speakers": [],
            "editsByType": [],
            "editsByUser": [],
        }
    finally:
        await corpus_db.execute("DELETE FROM conversations WHERE id = $1", conversation)
