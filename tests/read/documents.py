"""GraphQL documents of the read API tests (module constants, as the style guide asks)."""

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

# Five levels down the hierarchy, and every traversal of a node at the bottom.
DEEP = """
query Deep($id: ID!) {
  conversation(id: $id) {
    __typename id
    rootNodes { id level children { id level children { id level children { id level
      children { id level nodeName
        conversation { id }
        parent { id } predecessor { id } successor { id }
        ancestors { id level }
        clusters { id clusterName }
        utterances { id }
        outgoing { id toNode { id level } }
      } } } } }
  }
}
"""

# Every connection of a conversation, with cursors and counts.
LISTS = """
query Lists($id: ID!) {
  conversation(id: $id) {
    id
    utterances(first: 50) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id sequenceNumber speakerId node { id } conversation { id } } }
    }
    relationships(first: 50, minStrength: 0.2) {
      totalCount nodes { id fromNode { id } toNode { id } supportingUtterances { id } }
    }
    edits(first: 20) {
      totalCount nodes {
        id targetType
        target {
          __typename
          ... on ThreadNode { id } ... on Relationship { id }
          ... on Cluster { id } ... on Utterance { id }
        }
        conversation { id }
      }
    }
    apiCalls(first: 20) { totalCount nodes { id totalCost conversation { id } } }
    clusters { id level parent { id } children { id } nodes { id } }
  }
}
"""

# The conversations list with a nested page per conversation.
CONVERSATIONS = """
query Conversations($first: Int!) {
  conversations(first: $first, orderBy: CONVERSATION_NAME, direction: ASC) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id conversationName nodes(first: 2, orderBy: NODE_NAME) {
      totalCount pageInfo { hasNextPage } nodes { id nodeName }
    } }
  }
}
"""

# Refetch by id, whatever the type.
REFETCH = """
query Refetch($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on ThreadNode { nodeName conversation { id } }
    ... on Relationship { relationshipType fromNode { id } }
    ... on Cluster { clusterName nodes { id } }
    ... on Utterance { sequenceNumber node { id } }
    ... on Edit { editType target { __typename } }
    ... on ApiCall { model conversation { id } }
    ... on Conversation { conversationName }
  }
}
"""

# A canvas with filters: one level, bookmarks, the strongest links of one type.
FILTERED = """
query Filtered($id: ID!) {
  conversation(id: $id) {
    id
    nodes(level: [2, 3], first: 500) { totalCount nodes {
      id level
      relationships(direction: BOTH, minStrength: 0.5) { id fromNodeId toNodeId strength }
    } }
    bookmarks: nodes(isBookmark: true) { totalCount nodes { id } }
    speakers: utterances(speakerId: ["spk_1"], first: 10) { totalCount nodes { id speakerId } }
  }
}
"""
