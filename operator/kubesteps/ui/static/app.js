// kubesteps ui: the list of Pipelines and one Pipeline, live from a watch (server-sent events).
// Plain DOM, no build step, no library: every text goes in through textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PHASES = ["Running", "Waiting", "Retrying", "Succeeded", "Failed", "Cancelled",
  "Suspended", "Pending", "Skipped", "NotTaken", "Throttled"];
let source = null;       // the EventSource of the page shown
let current = null;      // the Pipeline shown (detail model)

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
// Top to bottom: a sequence goes down, the children of parallel/forEach/switch side by side,
// a group is a box around its sequence; finally steps are a lane of their own.

const BOX = { w: 150, h: 38 }, GAP = 22, PAD = 10, LABEL = 20;

function layout(node) {
  const kids = node.children || [];
  if (!kids.length) {
    return { w: BOX.w, h: BOX.h, draw: (g, x, y) => leaf(g, node, x, y) };
  }
  const inner = node.kind === "group" ? column(kids) : row(kids);
  const w = Math.max(inner.w + 2 * PAD, BOX.w), hgt = inner.h + 2 * PAD + LABEL;
  return { w, h: hgt, draw: (g, x, y) => {
    const box = s("g", { class: `node group phase-${node.phase}`, "data-step": node.name,
      "data-phase": node.phase });
    box.append(s("rect", { x, y, width: w, height: hgt, rx: 8 }));
    const caption = node.kind === "forEach" ? `${node.name} (forEach)`
      : node.kind === "switch" ? `◇ ${node.name}` : node.kind === "parallel"
        ? `${node.name} (parallel)` : node.name;
    box.append(s("text", { x: x + 8, y: y + 15, class: "caption" }, text(caption)));
    box.append(s("title", {}, text(`${node.name}: ${node.phase}`)));
    g.append(box);
    inner.draw(g, x + (w - inner.w) / 2, y + PAD + LABEL);
  } };
}

function text(value) { return document.createTextNode(value); }

function leaf(g, node, x, y) {
  const box = s("g", { class: `node phase-${node.phase}`, "data-step": node.name,
    "data-phase": node.phase, tabindex: 0 });
  const shape = node.kind === "forEach" ? "forEach" : node.action || node.kind;
  box.append(s("rect", { x, y, width: BOX.w, height: BOX.h, rx: 6 }));
  box.append(s("text", { x: x + BOX.w / 2, y: y + 16, class: "name" }, text(clip(node.name, 20))));
  const detail = node.kind === "forEach" && node.items ? `each of ${node.items}`
    : `${shape} · ${node.phase}`;
  box.append(s("text", { x: x + BOX.w / 2, y: y + 30, class: "sub" }, text(clip(detail, 26))));
  box.append(s("title", {}, text(`${node.name}: ${node.phase}${node.message ? " — "
    + node.message : ""}`)));
  box.addEventListener("click", () => {
    const target = document.querySelector(`tr[data-step="${CSS.escape(node.name)}"]`);
    if (target) target.scrollIntoView({ behavior: "smooth", block: "center" });
  });
  g.append(box);
}

function clip(value, size) { return value.length > size ? value.slice(0, size - 1) + "…" : value; }

function column(nodes) {
  const parts = nodes.map(layout);
  const w = Math.max(...parts.map((p) => p.w));
  const hgt = parts.reduce((sum, p) => sum + p.h, 0) + GAP * (parts.length - 1);
  return { w, h: hgt, draw: (g, x, y) => {
    let top = y;
    parts.forEach((part, index) => {
      part.draw(g, x + (w - part.w) / 2, top);
      if (index < parts.length - 1) arrow(g, x + w / 2, top + part.h, x + w / 2, top + part.h + GAP);
      top += part.h + GAP;
    });
  } };
}

function row(nodes) {
  const parts = nodes.map(layout);
  const w = parts.reduce((sum, p) => sum + p.w, 0) + 16 * (parts.length - 1);
  const hgt = Math.max(...parts.map((p) => p.h));
  return { w, h: hgt, draw: (g, x, y) => {
    let left = x;
    for (const part of parts) { part.draw(g, left, y); left += part.w + 16; }
  } };
}

function arrow(g, x1, y1, x2, y2) {
  g.append(s("line", { x1, y1, x2, y2: y2 - 2, class: "edge", "marker-end": "url(#head)" }));
}

function graph(detail) {
  const lanes = [column(detail.steps)];
  if (detail.finally.length) lanes.push(column(detail.finally));
  const gapX = 40;
  const w = lanes.reduce((sum, lane) => sum + lane.w, 0) + gapX * (lanes.length - 1) + 20;
  const hgt = Math.max(...lanes.map((lane) => lane.h)) + 20 + LABEL;
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, class: "graph", role: "img",
    "aria-label": `steps of ${detail.name}` });
  svg.append(s("defs", {}, s("marker", { id: "head", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "head" }))));
  const g = s("g", {});
  let left = 10;
  lanes.forEach((lane, index) => {
    g.append(s("text", { x: left, y: 14, class: "lane" }, text(index ? "finally" : "steps")));
    lane.draw(g, left, 10 + LABEL);
    left += lane.w + gapX;
  });
  svg.append(g);
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
    h("span", { class: "kind", text: ` ${node.kind === "action" ? node.action : node.kind}`
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

function confirmVerb(textValue, askName) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = textValue;
  document.getElementById("confirm-name-row").hidden = !askName;
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes"), no = document.getElementById("confirm-no");
    const done = (answer) => {
      yes.onclick = no.onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    yes.onclick = () => done({ by: document.getElementById("confirm-name").value.trim() });
    no.onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
  });
}

async function act(detail, verbName, params, question, askName) {
  const answer = await confirmVerb(question, askName);
  if (!answer) return;
  const path = `/api/pipelines/${encodeURIComponent(detail.namespace)}/`
    + `${encodeURIComponent(detail.name)}/${verbName}`;
  try {
    const result = await api(path, { method: "POST", headers: { "Content-Type":
      "application/json" }, body: JSON.stringify(Object.assign({}, params, answer)) });
    notice(result.message, "ok");
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
    { step }, `Approve step ${step} of ${run}?`, true), text: "Approve" }),
  h("button", { class: "danger", "data-verb": "reject", onclick: () => act(detail, "reject",
    { step }, `Reject step ${step} of ${run}? The run fails.`), text: "Reject" })));
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
    h("dl", {}, facts.filter(([, v]) => v !== "").map(([k, v]) => [h("dt", { text: k }),
      h("dd", { text: v })])),
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
      h("p", { class: "muted", text: "Loading…" }))),
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
  const target = document.getElementById("events");
  try {
    const listed = await api(`${base}/events`);
    if (!document.body.contains(target)) return;
    target.replaceChildren(listed.items.length ? h("table", { class: "events" },
      h("thead", {}, h("tr", {}, ["Time", "Type", "Reason", "Message"].map((t) => h("th",
        { text: t })))),
      h("tbody", {}, listed.items.slice(-50).reverse().map((e) => h("tr",
        { class: e.type === "Warning" ? "warning" : "" },
      h("td", { text: when(e.time) }), h("td", { text: e.type }), h("td", { text: e.reason }),
      h("td", { class: "message", text: e.message + (e.count > 1 ? ` (×${e.count})` : "") })))))
      : h("p", { class: "muted", text: "No Events." }));
  } catch (error) {
    target.replaceChildren(h("p", { class: "error", text: error.message }));
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
    pipeline: (event) => {
      if (event.type === "DELETED") {
        notice(`Pipeline ${namespace}/${name} was deleted.`);
        return;
      }
      drawDetail(event.pipeline);
    },
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
