// The reference canvas: the conversation's nodes at their stored positions, relationships as
// labelled edges, clusters as groups; live changes from the conversationChanged subscription
// (graphql-transport-ws); dragging a node sends moveNodes. Plain JS and SVG, no build step.
//
// The token is GraphiQL's: the Authorization header saved in GraphiQL's headers editor
// (localStorage "graphiql:headers", same origin), editable in the bar above the canvas.
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const conversationId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const HEADERS_KEY = "graphiql:headers";
  const NODE_FIELDS = "id nodeName summary canvasX canvasY canvasWidth canvasHeight";
  const RELATIONSHIP_FIELDS = "id fromNodeId toNodeId relationshipType";
  const CLUSTER_FIELDS = "id clusterName nodeIds color";
  const LOAD = `query Canvas($id: ID!) {
    conversation(id: $id) {
      id conversationName
      nodes(first: 1000) { nodes { ${NODE_FIELDS} } }
      relationships(first: 1000) { nodes { ${RELATIONSHIP_FIELDS} } }
      clusters { ${CLUSTER_FIELDS} }
    }
  }`;
  const CHANGES = `subscription CanvasChanges($id: ID!, $since: String) {
    conversationChanged(id: $id, since: $since) {
      cursor kind nodeIds relationshipIds clusterIds
      conversation { id conversationName }
      nodes { ${NODE_FIELDS} }
      relationships { ${RELATIONSHIP_FIELDS} }
      clusters { ${CLUSTER_FIELDS} }
    }
  }`;
  const CURSOR = `query CanvasCursor($id: ID!) { conversationChangeCursor(id: $id) }`;
  const MOVE = `mutation Move($moves: [NodeMoveInput!]!) {
    moveNodes(moves: $moves) { __typename ... on UserError { message } }
  }`;

  const state = { nodes: new Map(), relationships: new Map(), clusters: new Map(), name: "" };
  let loaded = false;
  let cursor = null;
  let dragging = null;
  let scale = 1;

  const title = document.getElementById("title");
  const status = document.getElementById("status");
  const tokenInput = document.getElementById("token");
  const svg = document.getElementById("canvas");
  const layers = {};
  for (const name of ["clusters", "edges", "nodes"]) {
    layers[name] = document.createElementNS(SVG, "g");
    svg.appendChild(layers[name]);
  }

  function authorization() {
    try {
      const headers = JSON.parse(localStorage.getItem(HEADERS_KEY) || "{}");
      for (const [name, value] of Object.entries(headers)) {
        if (name.toLowerCase() === "authorization") return String(value);
      }
    } catch (error) { /* not JSON: no token */ }
    return "";
  }

  tokenInput.value = authorization();
  tokenInput.addEventListener("change", () => {
    let headers = {};
    try { headers = JSON.parse(localStorage.getItem(HEADERS_KEY) || "{}"); } catch (e) { /**/ }
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === "authorization") delete headers[name];
    }
    if (tokenInput.value.trim()) headers.Authorization = tokenInput.value.trim();
    localStorage.setItem(HEADERS_KEY, JSON.stringify(headers, null, 2));
    location.reload();
  });

  function show(message, isError) {
    status.textContent = message;
    status.className = "status" + (isError ? " error" : "");
  }

  async function graphql(query, variables) {
    const headers = { "Content-Type": "application/json" };
    const token = authorization();
    if (token) headers.Authorization = token;
    const response = await fetch("/graphql", {
      method: "POST", headers, body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors) throw new Error(body.errors.map((error) => error.message).join("; "));
    return body.data;
  }

  // -- drawing ------------------------------------------------------------------------------

  function element(name, attributes, parent) {
    const item = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) item.setAttribute(key, value);
    if (parent) parent.appendChild(item);
    return item;
  }

  function placed(node, index) {
    // A node without a stored position gets a slot in a grid until someone drags it.
    const width = node.canvasWidth || 350;
    const height = node.canvasHeight || 200;
    if (node.canvasX != null && node.canvasY != null) {
      return { x: node.canvasX, y: node.canvasY, width, height };
    }
    return { x: 40 + (index % 4) * 400, y: 40 + Math.floor(index / 4) * 260, width, height };
  }

  function draw() {
    for (const layer of Object.values(layers)) layer.replaceChildren();
    const boxes = new Map();
    let index = 0;
    let right = 800;
    let bottom = 600;
    for (const node of state.nodes.values()) {
      const box = placed(node, index++);
      boxes.set(node.id, box);
      right = Math.max(right, box.x + box.width + 40);
      bottom = Math.max(bottom, box.y + box.height + 40);
    }
    for (const cluster of state.clusters.values()) {
      const members = (cluster.nodeIds || []).map((id) => boxes.get(id)).filter(Boolean);
      if (!members.length) continue;
      const x = Math.min(...members.map((box) => box.x)) - 16;
      const y = Math.min(...members.map((box) => box.y)) - 30;
      const x2 = Math.max(...members.map((box) => box.x + box.width)) + 16;
      const y2 = Math.max(...members.map((box) => box.y + box.height)) + 16;
      const group = element("g", { class: "cluster", "data-cluster-id": cluster.id },
        layers.clusters);
      const frame = element("rect", { x, y, width: x2 - x, height: y2 - y }, group);
      if (cluster.color) frame.style.stroke = cluster.color;
      element("text", { x: x + 10, y: y + 18 }, group).textContent = cluster.clusterName;
    }
    for (const relationship of state.relationships.values()) {
      const from = boxes.get(relationship.fromNodeId);
      const to = boxes.get(relationship.toNodeId);
      if (!from || !to) continue;
      const group = element("g", { class: "edge", "data-relationship-id": relationship.id },
        layers.edges);
      const [x1, y1] = [from.x + from.width / 2, from.y + from.height / 2];
      const [x2, y2] = [to.x + to.width / 2, to.y + to.height / 2];
      element("line", { x1, y1, x2, y2 }, group);
      const label = element("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4,
        "text-anchor": "middle" }, group);
      label.textContent = relationship.relationshipType;
    }
    for (const node of state.nodes.values()) {
      const box = boxes.get(node.id);
      const group = element("g", { class: "node", "data-node-id": node.id,
        transform: `translate(${box.x},${box.y})` }, layers.nodes);
      element("rect", { width: box.width, height: box.height }, group);
      element("text", { x: 12, y: 22, "font-weight": 600 }, group).textContent = node.nodeName;
      const summary = (node.summary || "").slice(0, 60);
      element("text", { x: 12, y: 42, class: "summary" }, group).textContent = summary;
      group.addEventListener("pointerdown", (event) => startDrag(event, node, box, group));
    }
    // The whole graph fits the window (never enlarged); a drag divides by the same scale.
    const board = document.getElementById("board");
    scale = Math.max(0.05, Math.min(1, board.clientWidth / right, board.clientHeight / bottom));
    svg.setAttribute("width", Math.floor(right * scale));
    svg.setAttribute("height", Math.floor(bottom * scale));
    svg.setAttribute("viewBox", `0 0 ${right} ${bottom}`);
    svg.dataset.scale = String(scale);
    title.textContent = state.name;
    svg.dataset.nodes = String(state.nodes.size);
  }

  function startDrag(event, node, box, group) {
    event.preventDefault();
    group.setPointerCapture(event.pointerId);
    group.classList.add("dragging");
    dragging = { node, group, startX: event.clientX, startY: event.clientY, box, x: box.x,
      y: box.y };
    group.addEventListener("pointermove", moveDrag);
    group.addEventListener("pointerup", endDrag, { once: true });
  }

  function moveDrag(event) {
    if (!dragging) return;
    dragging.x = Math.round(dragging.box.x + (event.clientX - dragging.startX) / scale);
    dragging.y = Math.round(dragging.box.y + (event.clientY - dragging.startY) / scale);
    dragging.group.setAttribute("transform", `translate(${dragging.x},${dragging.y})`);
  }

  async function endDrag() {
    const { node, group, x, y } = dragging;
    dragging = null;
    group.removeEventListener("pointermove", moveDrag);
    group.classList.remove("dragging");
    if (x === node.canvasX && y === node.canvasY) return;
    state.nodes.set(node.id, { ...node, canvasX: x, canvasY: y });
    draw();
    try {
      const result = await graphql(MOVE, { moves: [{ id: node.id, canvasX: x, canvasY: y }] });
      if (result.moveNodes.message) show(result.moveNodes.message, true);
    } catch (error) {
      show(`move failed: ${error.message}`, true);
    }
  }

  // -- live changes -------------------------------------------------------------------------

  function apply(change) {
    cursor = change.cursor;
    if (change.conversation) state.name = change.conversation.conversationName;
    const sections = [
      [state.nodes, change.nodeIds, change.nodes],
      [state.relationships, change.relationshipIds, change.relationships],
      [state.clusters, change.clusterIds, change.clusters],
    ];
    for (const [map, ids, items] of sections) {
      ids.forEach((id, position) => {
        const item = items[position];
        if (item) map.set(id, item); else map.delete(id);
      });
    }
    if (!dragging) draw();
    svg.dataset.cursor = cursor;
  }

  function subscribe() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/graphql`, "graphql-transport-ws");
    const token = authorization();
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "connection_init",
        payload: token ? { Authorization: token } : {} }));
    };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "connection_ack") {
        const variables = { id: conversationId, since: cursor };
        socket.send(JSON.stringify({ id: "canvas", type: "subscribe",
          payload: { query: CHANGES, variables } }));
        show("live");
      } else if (data.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (data.type === "next") {
        const payload = data.payload;
        if (payload.errors) { show(payload.errors[0].message, true); return; }
        apply(payload.data.conversationChanged);
      } else if (data.type === "error") {
        show(data.payload.map((error) => error.message).join("; "), true);
        socket.onclose = null;
        socket.close();
      }
    };
    socket.onclose = (event) => {
      show(`disconnected (${event.code}); reconnecting`, true);
      setTimeout(subscribe, 2000);
    };
  }

  async function load() {
    try {
      const data = await graphql(LOAD, { id: conversationId });
      const conversation = data.conversation;
      if (!conversation) { show("No conversation with this id (or not visible to you).", true); return; }
      state.name = conversation.conversationName;
      for (const node of conversation.nodes.nodes) state.nodes.set(node.id, node);
      for (const item of conversation.relationships.nodes) state.relationships.set(item.id, item);
      for (const cluster of conversation.clusters) state.clusters.set(cluster.id, cluster);
      loaded = true;
      draw();
      document.body.dataset.ready = "true";
    } catch (error) {
      show(error.message, true);
    }
  }

  // The cursor first, then the graph, then the changes since the cursor: nothing committed in
  // between is missed (a change already in the graph is applied again, harmlessly).
  graphql(CURSOR, { id: conversationId })
    .then((data) => {
      cursor = data.conversationChangeCursor;
      if (cursor === null) throw new Error("No conversation with this id (or not visible to you).");
      return load();
    })
    .then(() => { if (loaded) subscribe(); })
    .catch((error) => show(error.message, true));
})();
