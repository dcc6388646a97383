// A small program against the generated client: the canvas query, an update whose result union
// it branches on, and a refetch by id. `tsc --strict` checks it against the generated types, so a
// field that cannot be sent back as it was read (a nullable `updatedAt` for the required
// `expectedUpdatedAt`, a lower-case string for an enum, JSON for a typed object) fails the build.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";

import { graphql } from "./gql";
import type { UpdateNodeInput, UpdateNodeMutation } from "./gql/graphql";

export const CanvasQuery = graphql(`
  query Canvas($id: ID!, $first: Int!, $after: String) {
    conversation(id: $id) {
      __typename
      id
      conversationName
      conversationType
      visibility
      updatedAt
      nodes(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          __typename
          id nodeName summary level parentId isBookmark isTangent isCrux
          canvasX canvasY canvasWidth canvasHeight zoomLevelVisible
          chunkIds dialogueType updatedAt
          speakerInfo {
            primarySpeaker speakerName contributionPercentage
            secondarySpeakers { speakerId percentage }
          }
          outgoing { id toNodeId relationshipType strength explanation }
        }
      }
    }
  }
`);

export const UpdateNodeDocument = graphql(`
  mutation UpdateNode($input: UpdateNodeInput!) {
    updateNode(input: $input) {
      __typename
      ... on NodePayload { node { id nodeName updatedAt dialogueType } }
      ... on UserError { message code }
      ... on ValidationError { field }
      ... on ConflictError { currentUpdatedAt }
    }
  }
`);

export const RefetchNode = graphql(`
  query RefetchNode($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on ThreadNode { nodeName updatedAt isBookmark level }
    }
  }
`);

export async function execute<Result, Variables>(
  url: string,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
): Promise<Result> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as { data?: Result | null; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) {
    throw new Error(body.errors?.map((error) => error.message).join("; ") ?? "no data");
  }
  return body.data;
}

type CanvasNode = NonNullable<
  Awaited<ReturnType<typeof loadCanvas>>
>["nodes"][number];

export async function loadCanvas(url: string, id: string) {
  const data = await execute(url, CanvasQuery, { id, first: 100 });
  const conversation = data.conversation;
  if (!conversation) return null;
  const nodes = [...conversation.nodes.nodes];
  let page = conversation.nodes.pageInfo;
  while (page.hasNextPage) {
    const next = await execute(url, CanvasQuery, { id, first: 100, after: page.endCursor });
    if (!next.conversation) break;
    nodes.push(...next.conversation.nodes.nodes);
    page = next.conversation.nodes.pageInfo;
  }
  return { conversation, nodes };
}

// Every value read from the canvas goes back into the input with the type it was read with.
export function echoInput(node: CanvasNode): UpdateNodeInput {
  const width: number = node.canvasWidth;
  const bookmarked: boolean = node.isBookmark;
  return {
    id: node.id,
    expectedUpdatedAt: node.updatedAt,
    nodeName: node.nodeName,
    level: node.level,
    isBookmark: bookmarked,
    canvasWidth: width,
    canvasHeight: node.canvasHeight,
    chunkIds: node.chunkIds,
    dialogueType: node.dialogueType,
    speakerInfo: node.speakerInfo,
    zoomLevelVisible: node.zoomLevelVisible,
  };
}

// Branches on the union and survives it gaining a member: whatever error type a later server
// adds implements UserError, so `message` and `code` are there for the default branch.
export function describe(result: UpdateNodeMutation["updateNode"]): string {
  switch (result.__typename) {
    case "NodePayload":
      return `saved ${result.node.nodeName} at ${result.node.updatedAt}`;
    case "ConflictError":
      return `changed by someone else at ${result.currentUpdatedAt ?? "?"}: ${result.message}`;
    case "ValidationError":
      return `${result.field ?? "input"}: ${result.message} (${result.code})`;
    default:
      return "message" in result ? `${result.code}: ${result.message}` : "refused";
  }
}

export async function renameFirstNode(url: string, conversationId: string): Promise<string> {
  const canvas = await loadCanvas(url, conversationId);
  const first = canvas?.nodes[0];
  if (!first) return "no node";
  const data = await execute(url, UpdateNodeDocument, {
    input: { ...echoInput(first), nodeName: `${first.nodeName}!` },
  });
  const refetched = await execute(url, RefetchNode, { id: first.id });
  const node = refetched.node;
  const updatedAt: string | null = node?.__typename === "ThreadNode" ? node.updatedAt : null;
  return `${describe(data.updateNode)}; now ${updatedAt ?? "gone"}`;
}
