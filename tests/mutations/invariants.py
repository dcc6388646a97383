"""The consistency rules the API keeps and PostgreSQL cannot check, as one read-only audit."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from graph.services.common import word_count


async def violations(
    connection: asyncpg.Connection, conversation_ids: list[Any] | None = None
) -> list[str]:
    """Every broken rule, as readable lines; empty means sound. Limited to the conversations
    given (other tests' data is not this audit's business), or the whole database."""
    problems: list[str] = []
    scope = [uuid.UUID(str(item)) for item in conversation_ids] if conversation_ids else None

    async def rows(table: str, column: str = "conversation_id") -> list[Any]:
        if scope is None:
            return await connection.fetch(f"SELECT * FROM {table}")
        return await connection.fetch(
            f"SELECT * FROM {table} WHERE {column} = ANY($1::uuid[])", scope
        )

    nodes = {row["id"]: row for row in await rows("nodes")}
    clusters = {row["id"]: row for row in await rows("clusters")}
    utterances = {row["id"]: row for row in await rows("utterances")}
    relationships = await rows("relationships")
    conversations = await rows("conversations", "id")

    def hierarchy(rows: dict[uuid.UUID, Any], parent: str, children: str, what: str) -> None:
        for row_id, row in rows.items():
            listed = row[children] or []
            if len(set(listed)) != len(listed):
                problems.append(f"{what} {row_id}: {children} has duplicates")
            for child in listed:
                if child not in rows or rows[child][parent] != row_id:
                    problems.append(f"{what} {row_id}: {children} lists {child}, not its child")
            if row[parent] is not None:
                above = rows.get(row[parent])
                if above is None:
                    problems.append(f"{what} {row_id}: {parent} points nowhere")
                elif above["conversation_id"] != row["conversation_id"]:
                    problems.append(f"{what} {row_id}: parent in another conversation")
                elif row_id not in (above[children] or []):
                    problems.append(f"{what} {row_id}: missing from its parent's {children}")
            seen = {row_id}
            current = row[parent]
            while current is not None and current in rows:
                if current in seen:
                    problems.append(f"{what} {row_id}: the hierarchy loops")
                    break
                seen.add(current)
                current = rows[current][parent]

    hierarchy(nodes, "parent_id", "children_ids", "node")
    hierarchy(clusters, "parent_cluster_id", "child_cluster_ids", "cluster")
    for node_id, node in nodes.items():
        for link, back in (("successor_id", "predecessor_id"), ("predecessor_id", "successor_id")):
            other = node[link]
            if other is None:
                continue
            if other not in nodes:
                problems.append(f"node {node_id}: {link} points nowhere")
            elif nodes[other][back] != node_id:
                problems.append(f"node {node_id}: {link} is not mirrored by {back}")
            elif nodes[other]["conversation_id"] != node["conversation_id"]:
                problems.append(f"node {node_id}: {link} in another conversation")
        for utterance_id in node["utterance_ids"] or []:
            utterance = utterances.get(utterance_id)
            if utterance is None or utterance["conversation_id"] != node["conversation_id"]:
                problems.append(f"node {node_id}: utterance_ids lists {utterance_id}, not its own")
            elif utterance["node_id"] != node_id:
                problems.append(
                    f"node {node_id}: utterance_ids lists {utterance_id}, "
                    f"whose node_id is {utterance['node_id']}"
                )
    for cluster_id, cluster in clusters.items():
        members = cluster["node_ids"] or []
        if len(set(members)) != len(members):
            problems.append(f"cluster {cluster_id}: node_ids has duplicates")
        for member in members:
            if (
                member not in nodes
                or nodes[member]["conversation_id"] != cluster["conversation_id"]
            ):
                problems.append(f"cluster {cluster_id}: node_ids lists {member}, not its own")
    for utterance_id, utterance in utterances.items():
        node_id = utterance["node_id"]
        if node_id is not None and (
            node_id not in nodes
            or nodes[node_id]["conversation_id"] != utterance["conversation_id"]
        ):
            problems.append(f"utterance {utterance_id}: node_id {node_id} is not a node of its own")
        elif node_id is not None and utterance_id not in (nodes[node_id]["utterance_ids"] or []):
            problems.append(
                f"utterance {utterance_id}: node_id {node_id}, whose utterance_ids lacks it"
            )
    for relationship in relationships:
        for end in ("from_node_id", "to_node_id"):
            node = nodes.get(relationship[end])
            if node is None or node["conversation_id"] != relationship["conversation_id"]:
                problems.append(
                    f"relationship {relationship['id']}: {end} outside its conversation"
                )
    for conversation in conversations:
        own = [row for row in utterances.values() if row["conversation_id"] == conversation["id"]]
        expected = {
            "total_utterances": len(own),
            "total_words": sum(word_count(row["text"]) for row in own),
            "total_nodes": sum(
                1 for row in nodes.values() if row["conversation_id"] == conversation["id"]
            ),
        }
        for counter, value in expected.items():
            if conversation[counter] != value:
                problems.append(
                    f"conversation {conversation['id']}: {counter} is {conversation[counter]}, "
                    f"not {value}"
                )
    return problems
