// A small SVG renderer for a job's lineage: dataset versions -> grants -> algorithm -> job ->
// result, in five columns, edges as arrows. Nodes are focusable buttons; selecting one shows
// its facts (hashes, ids, addresses; never data).

import { formatUnits } from "./wallet.js";

const SVG = "http://www.w3.org/2000/svg";
const COLUMN = 205;
const ROW = 84;
const WIDTH = 170;
const HEIGHT = 58;
const PAD = 20;
const ANY_ALGORITHM = `0x${"00".repeat(32)}`;
const ZERO_ADDRESS = `0x${"00".repeat(20)}`;

let renders = 0;

function element(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function short(value) {
  if (typeof value !== "string") {
    return "unknown";
  }
  return value.length > 14 ? `${value.slice(0, 8)}…${value.slice(-4)}` : value;
}

/** The lineage's nodes and edges: {nodes: [{id, kind, column, label, sub, facts}], edges}. */
export function lineageGraph(lineage) {
  const nodes = [];
  const edges = [];
  const versionIds = new Set();
  for (const version of lineage.datasets ?? []) {
    const id = `version:${version.dataset_id}:${version.version}`;
    versionIds.add(id);
    nodes.push({
      id,
      kind: "dataset-version",
      column: 0,
      label: `Dataset ${version.dataset_id} v${version.version}`,
      sub: short(version.commitment),
      facts: {
        "dataset id": version.dataset_id,
        version: version.version,
        commitment: version.commitment,
        "previous commitment": version.previous_commitment,
        owner: version.owner,
        "commitment matches the registry": version.commitment_matches,
      },
    });
  }
  for (const grant of lineage.grants ?? []) {
    const id = `grant:${grant.grant_id}`;
    nodes.push({
      id,
      kind: "grant",
      column: 1,
      label: `Grant on dataset ${grant.dataset_id}`,
      sub: short(grant.grant_id),
      facts: {
        "grant id": grant.grant_id,
        grantor: grant.grantor,
        grantee: grant.grantee,
        purpose: grant.purpose,
        "algorithm granted":
          grant.algorithm_hash === ANY_ALGORITHM ? "any catalog algorithm" : grant.algorithm_hash,
        "uses in this job": grant.uses,
        "epsilon spent (micro)": grant.epsilon,
        "price paid":
          grant.price === null || grant.price === undefined
            ? null
            : grant.token === ZERO_ADDRESS
              ? `${formatUnits(grant.price, 18)} ETH`
              : `${grant.price} (smallest units of ${grant.token})`,
      },
    });
    const source = `version:${grant.dataset_id}:${grant.dataset_version}`;
    if (versionIds.has(source)) {
      edges.push([source, id]);
    }
  }
  nodes.push({
    id: "algorithm",
    kind: "algorithm",
    column: 2,
    label: "Algorithm",
    sub: short(lineage.algorithm_hash),
    facts: {
      "code hash": lineage.algorithm_hash,
      "runtime hash": lineage.runtime_hash,
      "parameters hash": lineage.parameters_hash,
    },
  });
  for (const grant of lineage.grants ?? []) {
    edges.push([`grant:${grant.grant_id}`, "algorithm"]);
  }
  nodes.push({
    id: "job",
    kind: "job",
    column: 3,
    label: "Job",
    sub: short(lineage.job_id),
    facts: {
      "job id": lineage.job_id,
      consumer: lineage.consumer,
      executor: lineage.executor,
      purpose: lineage.purpose,
      "receipt hash": lineage.receipt_hash,
      "recorded in block": lineage.recorded?.block_number,
      "recorded in transaction": lineage.recorded?.tx_hash,
      "batch root": lineage.batch_root,
      "suppression threshold k": lineage.suppression_k,
    },
  });
  edges.push(["algorithm", "job"]);
  if (lineage.result_hash) {
    nodes.push({
      id: "result",
      kind: "result",
      column: 4,
      label: "Result",
      sub: short(lineage.result_hash),
      facts: { "result hash": lineage.result_hash, "completed at": lineage.completed_at },
    });
    edges.push(["job", "result"]);
  }
  return { nodes, edges };
}

function layout(nodes) {
  const rows = new Map();
  const count = new Map();
  for (const node of nodes) {
    count.set(node.column, (count.get(node.column) ?? 0) + 1);
  }
  const tallest = Math.max(...count.values());
  const position = new Map();
  for (const node of nodes) {
    const row = rows.get(node.column) ?? 0;
    rows.set(node.column, row + 1);
    // Centre each column against the tallest one.
    const offset = ((tallest - count.get(node.column)) * ROW) / 2;
    position.set(node.id, { x: PAD + node.column * COLUMN, y: PAD + offset + row * ROW });
  }
  const columns = Math.max(...nodes.map((n) => n.column)) + 1;
  return {
    position,
    width: PAD * 2 + (columns - 1) * COLUMN + WIDTH,
    height: PAD * 2 + (tallest - 1) * ROW + HEIGHT,
  };
}

/** Draw `lineage` into `container` (replacing its content); `onSelect(node)` on activation. */
export function renderLineage(container, lineage, onSelect) {
  const { nodes, edges } = lineageGraph(lineage);
  const { position, width, height } = layout(nodes);
  renders += 1;
  const marker = `arrow-${renders}`;
  const titleId = `graph-title-${renders}`;
  const svg = element("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "group",
    "aria-labelledby": titleId,
    class: "lineage",
  });
  svg.append(element("title", { id: titleId }, `Lineage of job ${lineage.job_id}`));
  const defs = element("defs");
  const arrow = element("marker", {
    id: marker,
    viewBox: "0 0 10 10",
    refX: 10,
    refY: 5,
    markerWidth: 8,
    markerHeight: 8,
    orient: "auto-start-reverse",
  });
  arrow.append(element("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(arrow);
  svg.append(defs);

  const edgeGroup = element("g", { class: "edges", "aria-hidden": "true" });
  for (const [from, to] of edges) {
    const a = position.get(from);
    const b = position.get(to);
    const x1 = a.x + WIDTH;
    const y1 = a.y + HEIGHT / 2;
    const x2 = b.x;
    const y2 = b.y + HEIGHT / 2;
    const bend = (x2 - x1) / 2;
    const path = element("path", {
      d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      class: "edge",
      "marker-end": `url(#${marker})`,
      "data-from": from,
      "data-to": to,
    });
    edgeGroup.append(path);
  }
  svg.append(edgeGroup);

  const nodeGroup = element("g", { class: "nodes" });
  for (const node of nodes) {
    const { x, y } = position.get(node.id);
    const group = element("g", {
      class: `node ${node.kind}`,
      transform: `translate(${x} ${y})`,
      tabindex: 0,
      role: "button",
      "aria-label": `${node.label}, ${node.sub}`,
      "data-kind": node.kind,
      "data-id": node.id,
    });
    group.append(element("rect", { width: WIDTH, height: HEIGHT, rx: 8, ry: 8 }));
    group.append(element("text", { x: 12, y: 24, class: "label" }, node.label));
    group.append(element("text", { x: 12, y: 44, class: "sub" }, node.sub));
    const select = () => {
      for (const other of nodeGroup.querySelectorAll(".node")) {
        other.classList.remove("selected");
      }
      group.classList.add("selected");
      onSelect(node);
    };
    group.addEventListener("click", select);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select();
      }
    });
    nodeGroup.append(group);
  }
  svg.append(nodeGroup);
  container.replaceChildren(svg);
  return { nodes, edges };
}
