"""GraphQL documents for the mutation tests; each selects `__typename` and every error shape."""

from __future__ import annotations

ERRORS = """
    ... on UserError { message code }
    ... on ValidationError { field }
    ... on NotFoundError { field }
    ... on ConflictError { field current currentUpdatedAt }
"""

CREATE_CONVERSATION = f"""
mutation($input: CreateConversationInput!) {{
  createConversation(input: $input) {{
    __typename
    ... on ConversationPayload {{ conversation {{ id updatedAt deletedAt }} }}
    {ERRORS}
  }}
}}"""

UPDATE_CONVERSATION = f"""
mutation($input: UpdateConversationInput!) {{
  updateConversation(input: $input) {{
    __typename
    ... on ConversationPayload {{ conversation {{ id conversationName updatedAt }} }}
    {ERRORS}
  }}
}}"""

DELETE_CONVERSATION = f"""
mutation($id: ID!) {{
  deleteConversation(id: $id) {{
    __typename
    ... on ConversationPayload {{ conversation {{ id deletedAt }} }}
    {ERRORS}
  }}
}}"""

RESTORE_CONVERSATION = f"""
mutation($id: ID!) {{
  restoreConversation(id: $id) {{
    __typename
    ... on ConversationPayload {{ conversation {{ id deletedAt }} }}
    {ERRORS}
  }}
}}"""

PURGE_CONVERSATION = f"""
mutation($id: ID!) {{
  purgeConversation(id: $id) {{
    __typename
    ... on PurgeConversationPayload {{ purgedId }}
    {ERRORS}
  }}
}}"""

APPEND_UTTERANCES = f"""
mutation($conversationId: ID!, $utterances: [UtteranceInput!]!) {{
  appendUtterances(conversationId: $conversationId, utterances: $utterances) {{
    __typename
    ... on AppendUtterancesPayload {{
      conversation {{ id totalUtterances totalWords }}
      utterances {{ id sequenceNumber updatedAt }}
      skippedSequenceNumbers
    }}
    {ERRORS}
  }}
}}"""

UPDATE_UTTERANCE = f"""
mutation($input: UpdateUtteranceInput!, $comment: String, $confidence: Float) {{
  updateUtterance(input: $input, comment: $comment, confidence: $confidence) {{
    __typename
    ... on UtterancePayload {{ utterance {{ id text speakerId updatedAt }} }}
    {ERRORS}
  }}
}}"""

NODE_FIELDS = (
    "id nodeName summary parentId childrenIds predecessorId successorId utteranceIds updatedAt"
)

CREATE_NODE = f"""
mutation($input: CreateNodeInput!, $comment: String, $confidence: Float) {{
  createNode(input: $input, comment: $comment, confidence: $confidence) {{
    __typename
    ... on NodePayload {{ node {{ {NODE_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

UPDATE_NODE = f"""
mutation($input: UpdateNodeInput!, $comment: String, $confidence: Float) {{
  updateNode(input: $input, comment: $comment, confidence: $confidence) {{
    __typename
    ... on NodePayload {{ node {{ {NODE_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

DELETE_NODE = f"""
mutation($id: ID!) {{
  deleteNode(id: $id) {{
    __typename
    ... on DeleteNodePayload {{ deletedId }}
    {ERRORS}
  }}
}}"""

MOVE_NODES = f"""
mutation($moves: [NodeMoveInput!]!) {{
  moveNodes(moves: $moves) {{
    __typename
    ... on NodesPayload {{ nodes {{ id canvasX canvasY canvasWidth canvasHeight updatedAt }} }}
    {ERRORS}
  }}
}}"""

MERGE_NODES = f"""
mutation($input: MergeNodesInput!) {{
  mergeNodes(input: $input) {{
    __typename
    ... on NodePayload {{ node {{ {NODE_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

SPLIT_NODE = f"""
mutation($input: SplitNodeInput!) {{
  splitNode(input: $input) {{
    __typename
    ... on SplitNodePayload {{ node {{ {NODE_FIELDS} }} newNode {{ {NODE_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

CREATE_RELATIONSHIP = f"""
mutation($input: CreateRelationshipInput!) {{
  createRelationship(input: $input) {{
    __typename
    ... on RelationshipPayload {{ relationship {{ id fromNodeId toNodeId strength updatedAt }} }}
    {ERRORS}
  }}
}}"""

UPDATE_RELATIONSHIP = f"""
mutation($input: UpdateRelationshipInput!) {{
  updateRelationship(input: $input) {{
    __typename
    ... on RelationshipPayload {{ relationship {{ id strength updatedAt }} }}
    {ERRORS}
  }}
}}"""

DELETE_RELATIONSHIP = f"""
mutation($id: ID!) {{
  deleteRelationship(id: $id) {{
    __typename
    ... on DeleteRelationshipPayload {{ deletedId }}
    {ERRORS}
  }}
}}"""

CLUSTER_FIELDS = "id clusterName nodeIds parentClusterId childClusterIds updatedAt"

CREATE_CLUSTER = f"""
mutation($input: CreateClusterInput!) {{
  createCluster(input: $input) {{
    __typename
    ... on ClusterPayload {{ cluster {{ {CLUSTER_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

UPDATE_CLUSTER = f"""
mutation($input: UpdateClusterInput!) {{
  updateCluster(input: $input) {{
    __typename
    ... on ClusterPayload {{ cluster {{ {CLUSTER_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

CHANGE_MEMBERSHIP = f"""
mutation($clusterId: ID!, $add: [ID!], $remove: [ID!]) {{
  changeClusterMembership(clusterId: $clusterId, addNodeIds: $add, removeNodeIds: $remove) {{
    __typename
    ... on ClusterPayload {{ cluster {{ {CLUSTER_FIELDS} }} }}
    {ERRORS}
  }}
}}"""

DELETE_CLUSTER = f"""
mutation($id: ID!) {{
  deleteCluster(id: $id) {{
    __typename
    ... on DeleteClusterPayload {{ deletedId }}
    {ERRORS}
  }}
}}"""

EXPORT_TRAINING = f"""
mutation($datasetId: String!, $limit: Int!) {{
  exportTrainingEdits(datasetId: $datasetId, limit: $limit) {{
    __typename
    ... on TrainingExportPayload {{ datasetId edits {{ id fieldName editType }} }}
    {ERRORS}
  }}
}}"""

RECORD_API_CALL = f"""
mutation($input: RecordApiCallInput!) {{
  recordApiCall(input: $input) {{
    __typename
    ... on ApiCallPayload {{ apiCall {{ id totalTokens totalCost }} }}
    {ERRORS}
  }}
}}"""

EXPORT_CONVERSATION = f"""
query($id: ID!) {{
  conversationExport(id: $id) {{
    __typename
    ... on ConversationExport {{ document }}
    {ERRORS}
  }}
}}"""

IMPORT_CONVERSATION = f"""
mutation($document: JSON!, $preserveIds: Boolean! = false) {{
  importConversation(document: $document, preserveIds: $preserveIds) {{
    __typename
    ... on ImportConversationPayload {{
      conversation {{ id totalUtterances totalWords totalNodes }}
      idMap
    }}
    {ERRORS}
  }}
}}"""

EDITS_LOG = f"""
query($conversationId: ID!, $targetId: ID, $targetType: TargetType, $first: Int! = 100) {{
  editsLog(
    conversationId: $conversationId, targetId: $targetId, targetType: $targetType, first: $first
  ) {{
    __typename
    ... on EditsPage {{ edits {{ id targetType targetId fieldName oldValue newValue editType }} }}
    {ERRORS}
  }}
}}"""
