from __future__ import annotations

import uuid

CANVAS = """
query Canvas($id: ID!) {
  conversation(id: $id) {
    id conversationName
    nodes(first: 1000) { totalCount nodes {
      id nodeName summary level parentId canvasX canvasY canvasWidth canvasHeight
      isBookmark isTangent isCrux zoomLevelVisible timestampStart timestampEnd
      speakerInfo { primarySpeaker contributionPercentage }
      outgoing { id toNodeId relationshipType strength explanation }
    } }
  }
}
"""


async def test_canvas(graphql, conversations):
    # texts the server has not seen: both answered by the executor (graph/operations.py)
    small = await graphql(f"# {uuid.uuid4()}\n{CANVAS}", id=str(conversations.small))
    assert small.status == 200, small.body
    assert not small.errors, small.errors
    large = await graphql(f"# {uuid.uuid4()}\n{CANVAS}", id=str(conversations.large))
    assert not large.errors, large.errors
    print(small.statements, large.statements, large.data["conversation"]["nodes"]["totalCount"])
    assert small.statements == large.statements
