// kubesteps ui: the list of Pipelines and one Pipeline, live from a watch (server-sent events).
// Plain DOM, no build step, no library: every text goes in through textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PHASES = ["Running", "Waiting", "Retrying", "Succeeded", "Failed", "Cancelled",
  "Suspended", "Pending", "Skipped", "NotTaken", "Throttled"];
let source = null;       // the EventSource of the page shown
let current = null;      // the Pipeline shown (detail model)
let lastEvents = null;   // the Events table shown last, kept across redraws

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else if (key === "style") el.style.cssText = value;  // CSSOM: allowed by the page's CSP
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) if (child) el.append(child);
  return el;
}

function notice(text, kind) {
  const el = document.getElementById("notice");
  el.textContent = text || "";
  el.className = kind || "error";
  el.hidden = !text;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  let body = {};
  try { body = await response.json(); } catch (e) { body = {}; }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600), minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  if (hours) return `${hours}h${minutes}m`;
  if (minutes) return `${minutes}m${rest}s`;
  return `${rest}s`;
}

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  if (isNaN(date)) return text;
  const clock = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit",
    second: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return clock;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${clock}`;
}

function badge(phase) {
  return h("span", { class: `badge phase-${phase || "None"}`, text: phase || "—" });
}

function live(on) {
  const el = document.getElementById("live");
  el.textContent = on ? "live" : "offline";
  el.className = on ? "live on" : "live";
}

function watch(path, handlers) {
  if (source) source.close();
  source = new EventSource(path);
  source.onopen = () => live(true);
  source.onerror = () => live(false);
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  }
  source.addEventListener("failure", (event) => {
    notice(JSON.parse(event.data).error);
    live(false);
  });
}

// -- the list ------------------------------------------------------------------------------

function filters() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  return { namespace: params.get("namespace") || "", label: params.get("label") || "",
    phase: params.get("phase") || "" };
}

function query(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function showList() {
  current = null;
  document.getElementById("crumb").textContent = "";
  const chosen = filters();
  const rows = new Map();
  const body = h("tbody", { id: "rows" });
  const form = h("div", { class: "filters" },
    h("input", { id: "f-namespace", placeholder: "namespace", value: chosen.namespace }),
    h("input", { id: "f-label", placeholder: "label selector, e.g. team=web",
      value: chosen.label }),
    h("select", { id: "f-phase" }, h("option", { value: "", text: "any phase" }),
      PHASES.slice(0, 8).map((p) => h("option", { value: p, text: p,
        selected: p === chosen.phase }))),
    h("button", { id: "f-apply", onclick: () => {
      location.hash = "#/" + query({
        namespace: document.getElementById("f-namespace").value.trim(),
        label: document.getElementById("f-label").value.trim(),
        phase: document.getElementById("f-phase").value });
    }, text: "Filter" }));
  const table = h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["Pipeline", "Run", "Phase", "Step", "Progress", "Duration",
      "Next run"].map((t) => h("th", { text: t })))), body);
  const empty = h("p", { class: "muted", id: "empty", text: "No Pipelines here.", hidden: true });
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", { text: "Pipelines" }), form, h("div", { class: "scroll" }, table),
    empty);

  function draw() {
    const sorted = [...rows.values()].filter((r) => !chosen.phase || r.phase === chosen.phase)
      .sort((a, b) => (a.namespace + "/" + a.name).localeCompare(b.namespace + "/" + b.name));
    body.replaceChildren(...sorted.map(row));
    empty.hidden = sorted.length > 0;
  }
  function row(r) {
    const link = `#/p/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
    const share = r.total ? Math.round((100 * r.done) / r.total) : 0;
    return h("tr", { "data-pipeline": `${r.namespace}/${r.name}`, "data-phase": r.phase },
      h("td", {}, h("a", { href: link }, h("span", { class: "ns", text: r.namespace + "/" }),
        h("strong", { text: r.name }))),
      h("td", { text: r.run ?? "" }),
      h("td", {}, badge(r.suspended && r.phase === "Running" ? "Suspended" : r.phase)),
      h("td", { class: "step", text: r.currentStep }),
      h("td", {}, h("span", { class: "bar", title: `${r.done} of ${r.total} steps done` },
        h("span", { style: `width:${share}%` })), ` ${r.done}/${r.total}`),
      h("td", { text: duration(r.seconds) }),
      h("td", { text: when(r.nextSchedule) }));
  }
  const scope = query({ namespace: chosen.namespace, label: chosen.label });
  try {
    const listed = await api(`/api/pipelines${scope}`);
    for (const r of listed.items) rows.set(`${r.namespace}/${r.name}`, r);
    notice("");
    draw();
  } catch (error) {
    notice(error.message);
    return;
  }
  watch(`/api/stream${scope}`, {
    reset: () => rows.clear(),
    row: (event) => {
      const key = `${event.row.namespace}/${event.row.name}`;
      if (event.type === "DELETED") rows.delete(key); else rows.set(key, event.row);
      draw();
    },
  });
}

// -- the graph -----------------------------------------------------------------------------
// The graph `kubesteps graph` draws (kubesteps.views.graph: nodes with phases, edges,
// clusters for groups, parallel steps and the finally lane), laid out top to bottom: a
// node's row is its longest path from the start; side by side go the members of a cluster
// whose rows overlap (parallel children, switch branches), one under the other the rest.

const BOX = { w: 150, line: 14 }, ROW_GAP = 30, COL_GAP = 16, PAD = 10, LABEL = 18;

function lines(label) { return String(label).split(/<br\s*\/?>/i).map((l) => clip(l, 24)); }
function height(node) { return node.shape === "switch" ? 44 : 12 + BOX.line * lines(node.label).length; }
function clip(value, size) { return value.length > size ? value.slice(0, size - 1) + "…" : value; }
function text(value) { return document.createTextNode(value); }

function ranks(graph) {
  const rank = new Map(graph.nodes.map((n) => [n.id, 0]));
  // Longest path: edges go forward in the spec, so a few passes settle it.
  for (let pass = 0; pass < graph.nodes.length; pass++) {
    let changed = false;
    for (const edge of graph.edges) {
      const next = rank.get(edge.source) + 1;
      if (next > rank.get(edge.target)) { rank.set(edge.target, next); changed = true; }
    }
    if (!changed) break;
  }
  return rank;
}

function span(member, rank) {
  if (typeof member === "string") return [rank.get(member), rank.get(member)];
  const spans = member.members.map((m) => span(m, rank));
  return [Math.min(...spans.map((s) => s[0])), Math.max(...spans.map((s) => s[1]))];
}

// Nesting of clusters per row: how much room their captions and paddings need.
function room(members, rank, depth, top, bottom) {
  for (const member of members) {
    if (typeof member === "string") continue;
    const [first, last] = span(member, rank);
    top[first] = Math.max(top[first] || 0, depth + 1);
    bottom[last] = Math.max(bottom[last] || 0, depth + 1);
    room(member.members, rank, depth + 1, top, bottom);
  }
}

// Width of a member, and a function placing it with its left edge at x.
function place(member, rank, byId) {
  if (typeof member === "string") {
    return { w: BOX.w, put: (x, at) => at.set(member, x) };
  }
  const inner = lanes(member.members, rank, byId);
  const w = inner.w + 2 * PAD;
  return { w, put: (x, at, boxes) => {
    boxes.push({ cluster: member, x, w });
    inner.put(x + PAD, at, boxes);
  } };
}

function lanes(members, rank, byId) {
  const columns = [];  // each: { parts: [...], last: row, w }
  for (const member of members) {
    const [first, last] = span(member, rank);
    const part = Object.assign(place(member, rank, byId), { member });
    let column = columns.find((c) => c.last < first);
    if (!column) { column = { parts: [], last: -1, w: 0 }; columns.push(column); }
    column.parts.push(part);
    column.last = last;
    column.w = Math.max(column.w, part.w);
  }
  const w = columns.reduce((sum, c) => sum + c.w, 0) + COL_GAP * Math.max(0, columns.length - 1);
  return { w, put: (x, at, boxes) => {
    let left = x;
    for (const column of columns) {
      for (const part of column.parts) part.put(left + (column.w - part.w) / 2, at, boxes);
      left += column.w + COL_GAP;
    }
  } };
}

function graph(detail) {
  const model = detail.graph;
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  const rank = ranks(model);
  const rows = Math.max(0, ...rank.values()) + 1;
  const top = [], bottom = [];
  room(model.layout, rank, 0, top, bottom);
  const rowHeight = [];
  for (const node of model.nodes) {
    const r = rank.get(node.id);
    rowHeight[r] = Math.max(rowHeight[r] || 0, height(node));
  }
  const rowTop = [];
  let y = 10;
  for (let r = 0; r < rows; r++) {
    y += (top[r] || 0) * (LABEL + PAD);
    rowTop[r] = y;
    y += (rowHeight[r] || 0) + (bottom[r] || 0) * PAD + ROW_GAP;
  }
  const at = new Map(), boxes = [];
  const all = lanes(model.layout, rank, byId);
  all.put(10, at, boxes);
  const w = all.w + 20, hgt = y - ROW_GAP + 10;
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, class: "graph", role: "img",
    "aria-label": `steps of ${detail.name}` });
  svg.append(s("defs", {}, s("marker", { id: "head", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "head" }))));
  // Clusters first (behind), outer ones before inner ones.
  const depthOf = (cluster, members, depth) => {
    for (const m of members) {
      if (typeof m === "string") continue;
      if (m === cluster) return depth;
      const found = depthOf(cluster, m.members, depth + 1);
      if (found !== null) return found;
    }
    return null;
  };
  for (const box of boxes) {
    const [first, last] = span(box.cluster, rank);
    const depth = depthOf(box.cluster, model.layout, 0);
    const nestTop = (top[first] || 0) - depth, nestBottom = (bottom[last] || 0) - depth;
    const y1 = rowTop[first] - nestTop * (LABEL + PAD) + PAD / 2;
    const y2 = rowTop[last] + rowHeight[last] + nestBottom * PAD;
    const g = s("g", { class: "cluster", "data-cluster": box.cluster.label });
    g.append(s("rect", { x: box.x, y: y1, width: box.w, height: y2 - y1, rx: 8 }));
    g.append(s("text", { x: box.x + 8, y: y1 + 13, class: "caption" },
      text(clip(box.cluster.label, Math.floor(box.w / 6.5)))));
    svg.append(g);
  }
  const centre = (id) => {
    const node = byId.get(id), r = rank.get(id);
    const x = at.get(id) + BOX.w / 2, yTop = rowTop[r] + (rowHeight[r] - height(node)) / 2;
    return { x, top: yTop, bottom: yTop + height(node) };
  };
  for (const edge of model.edges) {
    const a = centre(edge.source), b = centre(edge.target);
    const mid = (a.bottom + b.top) / 2;
    svg.append(s("path", { d: `M ${a.x} ${a.bottom} C ${a.x} ${mid}, ${b.x} ${mid}, ${b.x} ${b.top - 2}`,
      class: edge.dotted ? "edge dotted" : "edge", "marker-end": "url(#head)" }));
    if (edge.label) {
      svg.append(s("text", { x: (a.x + b.x) / 2, y: mid - 2, class: "edge-label" },
        text(clip(edge.label, 28))));
    }
  }
  for (const node of model.nodes) {
    const phase = node.phase || "Pending";
    const { x, top: yTop } = centre(node.id);
    const left = x - BOX.w / 2, hNode = height(node);
    const g = s("g", { class: `node shape-${node.shape} phase-${phase}`, "data-step": node.step,
      "data-phase": phase, tabindex: 0 });
    if (node.shape === "switch") {
      g.append(s("polygon", { points: `${x},${yTop} ${left + BOX.w},${yTop + hNode / 2} `
        + `${x},${yTop + hNode} ${left},${yTop + hNode / 2}` }));
    } else {
      g.append(s("rect", { x: left, y: yTop, width: BOX.w, height: hNode,
        rx: node.shape === "forEach" ? 12 : 6 }));
    }
    const parts = node.shape === "switch" ? [clip(node.step, 18)] : lines(node.label);
    parts.forEach((line, index) => g.append(s("text", { x, class: index ? "sub" : "name",
      y: yTop + (node.shape === "switch" ? hNode / 2 + 4 : 16 + index * BOX.line) },
    text(line))));
    g.append(s("title", {}, text(`${node.step}: ${phase}`)));
    g.addEventListener("click", () => {
      const target = document.querySelector(`tr[data-step="${CSS.escape(node.step)}"]`);
      if (target) target.scrollIntoView({ behavior: "smooth", block: "center" });
    });
    svg.append(g);
  }
  return svg;
}

// -- one Pipeline --------------------------------------------------------------------------

function flatten(nodes, depth, out) {
  for (const node of nodes) {
    out.push([node, depth]);
    flatten(node.children || [], depth + 1, out);
  }
  return out;
}

function outputs(value) {
  const keys = Object.keys(value || {});
  if (!keys.length) return "";
  const line = JSON.stringify(value);
  if (line.length <= 60) return h("code", { text: line });
  return h("details", {}, h("summary", {}, h("code", { text: line.slice(0, 57) + "…" })),
    h("pre", { text: JSON.stringify(value, null, 2) }));
}

function stepTable(detail) {
  const rows = flatten(detail.steps, 0, []);
  if (detail.finally.length) rows.push(...flatten(detail.finally, 0, []).map(([n, d]) => [n, d,
    true]));
  return h("table", { class: "tree" },
    h("thead", {}, h("tr", {}, ["Step", "Phase", "Attempts", "Started", "Took", "Message",
      "Outputs"].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows.map(([node, depth, final]) => h("tr", { "data-step": node.name,
      "data-phase": node.phase },
    h("td", { style: `padding-left:${0.5 + depth * 1.1}em` }, final ? h("span",
      { class: "muted", text: "finally " }) : null, h("span", { text: node.name }),
    h("span", { class: "kind", text: ` ${node.action || node.kind}`
      + (node.item !== undefined ? ` [${node.item}]` : "") })),
    h("td", {}, badge(node.phase)),
    h("td", { text: node.attempts || "" }),
    h("td", { text: when(node.startedAt) }),
    h("td", { text: duration(node.seconds) }),
    h("td", { class: "message", text: node.message }),
    h("td", {}, outputs(node.outputs))))));
}

function historyTable(detail) {
  if (!detail.history.length) return h("p", { class: "muted", text: "No earlier runs." });
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, ["Run", "Trigger", "Phase", "Reason", "Started", "Took",
      "Message"].map((t) => h("th", { text: t })))),
    h("tbody", {}, detail.history.map((run) => h("tr", {},
      h("td", { text: run.id || run.number }), h("td", { text: run.trigger || "" }),
      h("td", {}, badge(run.phase)), h("td", { text: run.reason || "" }),
      h("td", { text: when(run.startedAt) }), h("td", { text: duration(run.seconds) }),
      h("td", { class: "message", text: run.message || "" })))));
}

function confirmVerb(textValue, ask) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = textValue;
  document.getElementById("confirm-name-row").hidden = ask !== "approve";
  document.getElementById("confirm-message-row").hidden = !ask;
  document.getElementById("confirm-message").value = "";
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes"), no = document.getElementById("confirm-no");
    const done = (answer) => {
      yes.onclick = no.onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    yes.onclick = () => {
      const answer = {};
      if (ask === "approve") answer.by = document.getElementById("confirm-name").value.trim();
      if (ask) answer.message = document.getElementById("confirm-message").value.trim();
      done(answer);
    };
    no.onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
  });
}

async function act(detail, verbName, params, question, ask) {
  const answer = await confirmVerb(question, ask);
  if (!answer) return;
  const path = `/api/pipelines/${encodeURIComponent(detail.namespace)}/`
    + `${encodeURIComponent(detail.name)}/${verbName}`;
  try {
    const result = await api(path, { method: "POST", headers: { "Content-Type":
      "application/json" }, body: JSON.stringify(Object.assign({}, params, answer)) });
    notice([result.message, ...(result.notes || [])].join("; "), "ok");
  } catch (error) {
    notice(error.message);
  }
}

function verbs(detail) {
  const run = detail.runId || detail.name;
  const phase = detail.phase;
  const finished = ["Succeeded", "Failed", "Cancelled"].includes(phase);
  const bar = h("div", { class: "verbs" },
    h("button", { id: "verb-retry", disabled: !["Failed", "Cancelled"].includes(phase),
      onclick: () => act(detail, "retry", {}, `Retry the failed steps of ${run}?`),
      text: "Retry" }),
    h("button", { id: "verb-rerun", onclick: () => act(detail, "rerun", {},
      `Start a new run of ${detail.name} from scratch?`), text: "Rerun" }),
    h("button", { id: "verb-cancel", disabled: finished, onclick: () => act(detail, "cancel",
      {}, `Cancel ${run}? Steps at work stop and their Jobs are deleted.`), text: "Cancel" }),
    detail.suspended
      ? h("button", { id: "verb-resume", onclick: () => act(detail, "resume", {},
        `Resume ${detail.name}?`), text: "Resume" })
      : h("button", { id: "verb-suspend", onclick: () => act(detail, "suspend", {},
        `Suspend ${detail.name}? No new step starts until it is resumed.`), text: "Suspend" }));
  const gates = detail.waitingApprovals.map((step) => h("div", { class: "approval",
    "data-approval": step },
  h("span", {}, "Step ", h("strong", { text: step }), ` waits for an approval (${run}). `),
  h("button", { class: "primary", "data-verb": "approve", onclick: () => act(detail, "approve",
    { step }, `Approve step ${step} of ${run}?`, "approve"), text: "Approve" }),
  h("button", { class: "danger", "data-verb": "reject", onclick: () => act(detail, "reject",
    { step }, `Reject step ${step} of ${run}? The run fails.`, "reject"), text: "Reject" })));
  return [bar, ...gates];
}

function header(detail) {
  const run = detail.runDetail || {};
  const facts = [["Run", run.id || "—"], ["Trigger", run.trigger || ""],
    ["Started", when(run.startedAt)], ["Took", duration(detail.seconds)],
    ["Step", detail.currentStep], ["Progress", `${detail.done}/${detail.total}`]];
  if (detail.nextSchedule) facts.push(["Next run", when(detail.nextSchedule)]);
  return h("div", { class: "run" },
    h("h1", {}, h("span", { class: "ns", text: detail.namespace + "/" }), detail.name, " ",
      badge(detail.suspended && detail.phase === "Running" ? "Suspended" : detail.phase)),
    h("dl", {}, facts.filter(([, v]) => v !== "" && v !== null).map(([k, v]) => h("div",
      { class: "fact" }, h("dt", { text: k }), h("dd", { text: v })))),
    run.message ? h("p", { class: "message", text: run.message }) : null);
}

function jobSteps(detail) {
  const all = flatten(detail.steps.concat(detail.finally), 0, []).map(([n]) => n);
  return all.filter((n) => n.action === "job").map((n) => n.name);
}

function drawDetail(detail) {
  current = detail;
  const keep = document.getElementById("logs-panel");
  const panes = document.getElementById("main");
  const jobs = jobSteps(detail);
  panes.replaceChildren(header(detail), ...verbs(detail),
    h("section", {}, h("h2", { text: "Graph" }), h("div", { class: "scroll", id: "graph" },
      graph(detail))),
    h("section", {}, h("h2", { text: "Steps" }), h("div", { class: "scroll" }, stepTable(detail))),
    h("section", {}, h("h2", { text: "History" }), h("div", { class: "scroll" },
      historyTable(detail))),
    h("section", {}, h("h2", { text: "Events" }), h("div", { class: "scroll", id: "events" },
      // What was shown stays until the new list arrives: no flicker at every change.
      ...(lastEvents && lastEvents.key === detail.namespace + "/" + detail.name
        ? [...lastEvents.nodes] : [h("p", { class: "muted", text: "Loading…" })]))),
    keep || h("section", { id: "logs-panel" }, h("h2", { text: "Logs" }), jobs.length
      ? h("div", {}, h("select", { id: "logs-step" }, jobs.map((j) => h("option",
        { value: j, text: j }))), " ", h("button", { id: "logs-show", onclick: () =>
        showLogs(detail) , text: "Show logs" }), h("div", { id: "logs" }))
      : h("p", { class: "muted", text: "No job steps: only job steps have logs." })));
  loadEvents(detail);
}

async function loadEvents(detail) {
  const base = `/api/pipelines/${encodeURIComponent(detail.namespace)}/`
    + `${encodeURIComponent(detail.name)}`;
  try {
    const listed = await api(`${base}/events`);
    const target = document.getElementById("events");
    if (!target || !current || current.name !== detail.name
      || current.namespace !== detail.namespace) return;
    target.replaceChildren(listed.items.length ? h("table", { class: "events" },
      h("thead", {}, h("tr", {}, ["Time", "Type", "Reason", "Message"].map((t) => h("th",
        { text: t })))),
      h("tbody", {}, listed.items.slice(-50).reverse().map((e) => h("tr",
        { class: e.type === "Warning" ? "warning" : "" },
      h("td", { text: when(e.time) }), h("td", { text: e.type }), h("td", { text: e.reason }),
      h("td", { class: "message", text: e.message + (e.count > 1 ? ` (×${e.count})` : "") })))))
      : h("p", { class: "muted", text: "No Events." }));
    lastEvents = { key: detail.namespace + "/" + detail.name, nodes: [...target.childNodes] };
  } catch (error) {
    const target = document.getElementById("events");
    if (target) target.replaceChildren(h("p", { class: "error", text: error.message }));
  }
}

async function showLogs(detail) {
  const step = document.getElementById("logs-step").value;
  const target = document.getElementById("logs");
  const path = `/api/pipelines/${encodeURIComponent(detail.namespace)}/`
    + `${encodeURIComponent(detail.name)}/logs?step=${encodeURIComponent(step)}`;
  try {
    const listed = await api(path);
    target.replaceChildren(...(listed.items.length ? listed.items.map((item) => h("div", {},
      h("h3", { text: `${item.job}${item.pod ? " / " + item.pod : ""}` }),
      item.message ? h("p", { class: "muted", text: item.message }) : null,
      h("pre", { class: "log", text: item.text || "" })))
      : [h("p", { class: "muted", text: listed.message || "No logs." })]));
  } catch (error) {
    target.replaceChildren(h("p", { class: "error", text: error.message }));
  }
}

async function showPipeline(namespace, name) {
  document.getElementById("crumb").textContent = ` / ${namespace} / ${name}`;
  const base = `/api/pipelines/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  try {
    drawDetail(await api(base));
    notice("");
  } catch (error) {
    document.getElementById("main").replaceChildren(h("p", { class: "muted",
      text: `Pipeline ${namespace}/${name} could not be shown.` }));
    notice(error.message);
    return;
  }
  watch(`${base}/stream`, {
    reset: () => {},
    pipeline: (event) => drawDetail(event.pipeline),
    deleted: (event) => { notice(event.error); source.close(); live(false); },
  });
}

function route() {
  const path = location.hash.replace(/^#/, "").split("?")[0];
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  notice("");
  if (parts[0] === "p" && parts.length === 3) showPipeline(parts[1], parts[2]);
  else showList();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
