"""What the benchmark sends: the GraphQL operations, and the SQL floor of the canvas query."""

from __future__ import annotations

# The canvas query of the read-API issue, verbatim but for the page size.
CANVAS = """
query Canvas($id: ID!, $first: Int!) {
  conversation(id: $id) {
    id conversationName
    nodes(first: $first) { totalCount nodes {
      id nodeName summary level parentId canvasX canvasY canvasWidth canvasHeight
      isBookmark isTangent isCrux zoomLevelVisible timestampStart timestampEnd
      speakerInfo { primarySpeaker contributionPercentage }
      outgoing { id toNodeId relationshipType strength explanation }
    } }
  }
}
"""

# The whole hierarchy, walked from the roots down five levels: every node once.
TRAVERSAL = """
query Traversal($id: ID!) {
  conversation(id: $id) {
    id
    rootNodes { id nodeName level
      children { id nodeName level
        children { id nodeName level
          children { id nodeName level
            children { id nodeName level parentId }
          }
        }
      }
    }
  }
}
"""

CONVERSATION_LIST = """
query ConversationList($first: Int!) {
  conversations(first: $first) {
    totalCount
    edges { cursor node {
      id conversationName conversationType sourceType startedAt ownerId visibility
      totalNodes totalUtterances totalWords
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

REFETCH = """
query Refetch($id: ID!) {
  node(id: $id) {
    __typename id
    ... on ThreadNode { nodeName summary level parentId canvasX canvasY canvasWidth canvasHeight }
  }
}
"""

# A canvas drag: the most frequent write a canvas client sends.
MOVE_NODE = """
mutation MoveNode($moves: [NodeMoveInput!]!) {
  moveNodes(moves: $moves) {
    __typename
    ... on NodesPayload { nodes { id canvasX canvasY updatedAt } }
    ... on UserError { message code }
  }
}
"""

MUTATION_FIELDS = """
query MutationFields { __schema { mutationType { fields { name } } } }
"""

# The floor: the canvas query's data as one JSON document, built by PostgreSQL in one statement.
# Same rows, same order (nodes by timestamp_start then id; relationships by created_at then id).
# MATERIALIZED: each part is computed once; inlined, the planner can choose to aggregate every
# relationship of the conversation again for each node (seen: 3.4 s instead of 33 ms).
CANVAS_FLOOR_SQL = """
WITH page AS MATERIALIZED (
    SELECT * FROM nodes WHERE conversation_id = $1
    ORDER BY timestamp_start, id LIMIT $2
), outgoing AS MATERIALIZED (
    SELECT r.from_node_id,
           json_agg(json_build_object(
               'id', r.id, 'toNodeId', r.to_node_id, 'relationshipType', r.relationship_type,
               'strength', r.strength, 'explanation', r.explanation
           ) ORDER BY r.created_at, r.id) AS items
    FROM relationships r
    WHERE r.conversation_id = $1
    GROUP BY r.from_node_id
)
SELECT json_build_object('data', json_build_object('conversation', json_build_object(
    'id', c.id,
    'conversationName', c.conversation_name,
    'nodes', json_build_object(
        'totalCount', (SELECT count(*) FROM nodes WHERE conversation_id = $1),
        'nodes', (
            SELECT coalesce(json_agg(json_build_object(
                'id', p.id, 'nodeName', p.node_name, 'summary', p.summary, 'level', p.level,
                'parentId', p.parent_id, 'canvasX', p.canvas_x, 'canvasY', p.canvas_y,
                'canvasWidth', p.canvas_width, 'canvasHeight', p.canvas_height,
                'isBookmark', p.is_bookmark, 'isTangent', p.is_tangent, 'isCrux', p.is_crux,
                'zoomLevelVisible', p.zoom_level_visible,
                'timestampStart', p.timestamp_start, 'timestampEnd', p.timestamp_end,
                'speakerInfo', CASE WHEN p.speaker_info IS NULL THEN NULL ELSE json_build_object(
                    'primarySpeaker', p.speaker_info ->> 'primary_speaker',
                    'contributionPercentage', (p.speaker_info ->> 'contribution_percentage')::float8
                ) END,
                'outgoing', coalesce(o.items, '[]'::json)
            ) ORDER BY p.timestamp_start, p.id), '[]'::json)
            FROM page p LEFT JOIN outgoing o ON o.from_node_id = p.id
        )
    )
)))::text
FROM conversations c
WHERE c.id = $1
"""
