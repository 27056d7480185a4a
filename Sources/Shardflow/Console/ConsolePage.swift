/// The console's one page: HTML, CSS and script in one string, so it needs no file, CDN or network.
/// It routes on the URL's fragment (`#/`, `#/workflow/ID`, `#/lists`) and polls the JSON API every 2 s.
enum ConsolePage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shardflow console</title>
<style>
  :root { --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --bad: #b42318; --warn: #b54708; --ok: #067647; --accent: #2e5aac; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "DejaVu Sans", sans-serif; color: var(--fg); background: #f8f9fb; }
  header { display: flex; gap: 18px; align-items: center; padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0; }
  header nav a { margin-right: 12px; color: var(--accent); text-decoration: none; }
  header .who { color: var(--muted); }
  header .tools { margin-left: auto; display: flex; gap: 6px; }
  header form { display: flex; gap: 6px; }
  main { padding: 16px 20px; }
  input { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; }
  button { font: inherit; padding: 3px 9px; border: 1px solid #c9ced6; border-radius: 4px; background: #fff; cursor: pointer; }
  button.danger { border-color: #f1a39b; color: var(--bad); }
  table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); margin: 6px 0 18px; }
  th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
  th { background: #f2f4f7; font-weight: 600; color: #344054; }
  td.l, th.l { text-align: left; }
  td.wrap { white-space: normal; max-width: 520px; text-align: left; word-break: break-word; }
  tr.total td { font-weight: 600; background: #f9fafb; }
  .bad { color: var(--bad); font-weight: 600; } .warn { color: var(--warn); font-weight: 600; } .ok { color: var(--ok); }
  .muted { color: var(--muted); }
  .panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 0 0 16px; }
  .kv { display: grid; grid-template-columns: 130px 1fr; gap: 3px 12px; }
  .kv div:nth-child(odd) { color: var(--muted); }
  #confirm { position: fixed; right: 20px; bottom: 20px; width: 380px; box-shadow: 0 6px 24px rgba(0,0,0,.15); display: none; }
  #confirm.open { display: block; }
  #action-result { margin: 0 0 12px; }
  code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
</head>
<body>
<header>
  <h1>Shardflow</h1>
  <nav><a href="#/">Shards</a><a href="#/lists">Stuck, parked, failed, retrying</a></nav>
  <span class="who" id="who"></span>
  <div class="tools">
    <form id="find"><input id="find-id" placeholder="workflowId" size="22" aria-label="workflowId"><button>Open workflow</button></form>
    <input id="token" type="password" placeholder="admin token" size="14" aria-label="admin token">
  </div>
</header>
<main>
  <div id="action-result" data-testid="action-result"></div>
  <div id="view"><p class="muted">loading…</p></div>
</main>
<div id="confirm" class="panel" data-testid="confirm">
  <p><b id="confirm-what"></b></p>
  <p class="muted" id="confirm-note"></p>
  <p><input id="confirm-reason" placeholder="reason (recorded with the command)" size="40"></p>
  <button class="danger" id="confirm-yes" data-testid="confirm-yes">Send</button> <button id="confirm-no">Cancel</button>
</div>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const time = (ms) => ms ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "";
const json = (v) => v === undefined || v === null ? "" : JSON.stringify(v);
let overview = null, timer = null, pending = null;

async function api(path, options) {
  const response = await fetch("/console/api/" + path, options);
  const text = await response.text();
  let body = null; try { body = JSON.parse(text); } catch (e) { body = {error: text}; }
  return {status: response.status, ok: response.ok, body};
}

const notes = {
  bumpEpoch: "Stops the shard's executors; in-flight steps finish and record. Nothing runs until resumeExecutors.",
  resumeExecutors: "Starts an executor at the current epoch.",
  failPendingTasks: "Fails every queued task of the shard; their workflows go on (usually to a failed completion).",
  failParkedWorkflows: "Fails the parked workflow(s) on purpose: they complete failed.",
};
function ask(type, shard, workflowId) {
  pending = {type, shard, workflowId};
  $("#confirm-what").textContent = type + (workflowId ? " for " + workflowId : "") + (shard !== null && shard !== undefined ? " on shard " + shard : "");
  $("#confirm-note").textContent = notes[type] || "";
  $("#confirm").classList.add("open");
}
$("#confirm-no").onclick = () => { pending = null; $("#confirm").classList.remove("open"); };
$("#confirm-yes").onclick = async () => {
  if (!pending) return;
  const action = pending; pending = null; $("#confirm").classList.remove("open");
  const headers = {"Content-Type": "application/json", "X-Shardflow-Console": "1"};
  const token = $("#token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  const body = {type: action.type};
  if (action.shard !== null && action.shard !== undefined) body.shard = action.shard;
  if (action.workflowId) body.workflowId = action.workflowId;
  const reason = $("#confirm-reason").value.trim(); if (reason) body.reason = reason;
  const out = $("#action-result");
  out.className = "panel"; out.textContent = "sending " + action.type + "…";
  const r = await api("actions", {method: "POST", headers, body: JSON.stringify(body)});
  const b = r.body || {};
  const verdict = r.ok ? (b.status || "sent") : "refused (" + r.status + ")";
  out.dataset.status = r.ok ? (b.status || "sent") : "refused";
  out.dataset.http = String(r.status);
  out.innerHTML = "<b>" + esc(action.type) + "</b>: <span class='" + (r.ok && b.status === "applied" ? "ok" : "bad") + "'>" + esc(verdict) + "</span>" +
    (b.commandId ? " · command <code>" + esc(b.commandId) + "</code>" : "") +
    (b.epoch !== undefined && b.epoch !== null ? " · epoch " + esc(b.epoch) : "") +
    (b.affectedWorkflows ? " · " + esc(b.affectedWorkflows) + " workflows" : "") +
    (b.error ? " · " + esc(b.error) : "");
  render();
};

function button(type, shard, workflowId, label) {
  if (!overview || !overview.actionsEnabled) return "";
  return "<button class='danger' data-action='" + esc(type) + "' data-shard='" + esc(shard ?? "") + "' data-workflow='" + esc(workflowId ?? "") + "'>" + esc(label) + "</button>";
}
document.addEventListener("click", (event) => {
  const b = event.target.closest("button[data-action]");
  if (!b) return;
  ask(b.dataset.action, b.dataset.shard === "" ? null : Number(b.dataset.shard), b.dataset.workflow || null);
});
$("#find").onsubmit = (event) => { event.preventDefault(); const id = $("#find-id").value.trim(); if (id) location.hash = "#/workflow/" + encodeURIComponent(id); };

async function loadOverview() {
  const r = await api("overview");
  if (r.ok) {
    overview = r.body;
    $("#who").textContent = "group " + overview.group + " · prefix " + overview.topicsPrefix + " · " + overview.shards.length + " shards owned" +
      (overview.ready ? " · ready" : " · not ready: " + overview.notReadyReasons.join("; ")) + (overview.actionsEnabled ? " · actions on" : " · read-only");
  }
  return r;
}

function cell(value, cls) { return "<td" + (cls ? " class='" + cls + "'" : "") + ">" + esc(value) + "</td>"; }

async function shardsView() {
  const r = await loadOverview();
  if (!r.ok) { $("#view").innerHTML = "<p class='bad'>" + esc(r.body.error) + "</p>"; return; }
  const cols = ["shard", "epoch", "executor", "queued", "running", "replay queue", "outbox", "oldest outbox", "lag", "stuck", "parked", "quarantined", "running workflows", ""];
  let rows = "", t = {queued: 0, running: 0, replay: 0, outbox: 0, lag: 0, stuck: 0, parked: 0, quarantined: 0, wf: 0};
  for (const s of overview.shards) {
    const running = (s.workflowsByStatus || {}).running || 0;
    t.queued += s.queuedTasks; t.running += s.runningTasks; t.replay += s.replayQueueDepth; t.outbox += s.outboxDepth;
    t.lag += s.consumerLag || 0; t.stuck += s.stuckWorkflows; t.parked += s.parkedWorkflows; t.quarantined += s.quarantinedWorkflows; t.wf += running;
    rows += "<tr data-shard='" + s.shard + "'>" + cell(s.shard) + cell(s.epoch) + cell(s.executorState, s.executorState === "running" ? "ok" : "warn") +
      cell(s.queuedTasks) + cell(s.runningTasks) + cell(s.replayQueueDepth) + cell(s.outboxDepth) +
      cell(s.oldestOutboxAgeSeconds === null || s.oldestOutboxAgeSeconds === undefined ? "-" : s.oldestOutboxAgeSeconds.toFixed(1) + " s", s.oldestOutboxAgeSeconds > 60 ? "bad" : "") +
      cell(s.consumerLag ?? "-") + cell(s.stuckWorkflows, s.stuckWorkflows ? "bad" : "") + cell(s.parkedWorkflows, s.parkedWorkflows ? "warn" : "") +
      cell(s.quarantinedWorkflows, s.quarantinedWorkflows ? "warn" : "") + cell(running) +
      "<td class='l'>" + button("bumpEpoch", s.shard, null, "bump epoch") + " " + button("resumeExecutors", s.shard, null, "resume") + " " +
      button("failPendingTasks", s.shard, null, "fail pending") + (s.parkedWorkflows ? " " + button("failParkedWorkflows", s.shard, null, "fail parked") : "") + "</td></tr>";
  }
  const total = "<tr class='total'><td>all</td><td></td><td></td>" + [t.queued, t.running, t.replay, t.outbox].map((v) => cell(v)).join("") + "<td></td>" +
    [t.lag, t.stuck, t.parked, t.quarantined, t.wf].map((v) => cell(v)).join("") + "<td></td></tr>";
  $("#view").innerHTML = "<table data-testid='shards'><thead><tr>" + cols.map((c) => "<th>" + esc(c) + "</th>").join("") + "</tr></thead><tbody>" + rows + "</tbody><tfoot>" + total + "</tfoot></table>" +
    "<p class='muted'>Updated every 2 s (snapshots at most 2 s old). Queued and running count steps; stuck, parked and quarantined count workflows; lag counts messages of the shard's partition not applied yet.</p>";
}

async function workflowView(id) {
  await loadOverview();
  const r = await api("workflows/" + encodeURIComponent(id));
  if (!r.ok) { $("#view").innerHTML = "<p class='bad'>" + esc(r.body.error) + "</p>"; return; }
  const w = r.body;
  if (!w.ownedHere) { $("#view").innerHTML = "<p class='warn' data-testid='not-here'>" + esc(id) + " belongs to shard " + w.shard + ", which another worker owns.</p>"; return; }
  const d = w.detail;
  if (!d) { $("#view").innerHTML = "<p class='warn' data-testid='not-found'>No workflow " + esc(id) + " in shard " + w.shard + ".</p>"; return; }
  let html = "<div class='panel' data-testid='workflow'><div class='kv'>" +
    "<div>workflow</div><div><b data-testid='workflow-id'>" + esc(d.workflowId) + "</b> · " + esc(d.workflow) + " version " + esc(d.version) + " · shard " + w.shard + "</div>" +
    "<div>status</div><div data-testid='workflow-status' class='" + (d.status === "succeeded" ? "ok" : d.status === "running" ? "" : "bad") + "'>" + esc(d.status) + (d.parkedReason ? " (parked)" : "") + "</div>" +
    "<div>generation</div><div>" + esc(d.generation) + " replays" + (d.inReplayQueue ? " · in the replay queue" : "") + "</div>" +
    "<div>created</div><div>" + esc(time(d.createdAt)) + (d.completedAt ? " · completed " + esc(time(d.completedAt)) : "") + "</div>" +
    "<div>args</div><div><code>" + esc(json(d.args)) + "</code></div>" +
    (d.result !== undefined && d.result !== null ? "<div>result</div><div><code>" + esc(json(d.result)) + "</code></div>" : "") +
    (d.error ? "<div>error</div><div class='bad'>" + esc(d.error.message) + (d.error.step ? " (step " + esc(d.error.step) + ")" : "") + "</div>" : "") +
    (d.parkedReason ? "<div>parked</div><div class='warn' data-testid='parked-reason'>since " + esc(time(d.parkedAt)) + ": " + esc(d.parkedReason) + " " + button("failParkedWorkflows", null, d.workflowId, "fail it") + "</div>" : "") +
    (d.crashes ? "<div>crashes</div><div class='warn'>" + esc(d.crashes) + (d.quarantined ? " · quarantined" : "") + "</div>" : "") +
    "</div></div>";
  html += "<h3>Journal</h3><table data-testid='journal'><thead><tr><th>step</th><th class='l'>kind</th><th class='l'>name</th><th class='l'>status</th><th>attempts</th><th>delivered in replay</th><th class='l'>completed</th><th class='l'>output / error</th></tr></thead><tbody>";
  for (const j of d.journal) {
    html += "<tr>" + cell(j.stepId) + "<td class='l'>" + esc(j.kind) + "</td><td class='l'>" + esc(j.name) + "</td><td class='l " + (j.status === "failed" ? "bad" : j.status === "pending" ? "warn" : "ok") + "'>" + esc(j.status) + "</td>" +
      cell(j.attempts) + cell(j.round ?? "") + "<td class='l'>" + esc(time(j.completedAt)) + "</td><td class='wrap'><code>" + esc(j.error ?? json(j.output)) + "</code></td></tr>";
  }
  html += "</tbody></table>";
  // The replay history, from the journal: each replay that delivered results, and what it delivered.
  const rounds = {};
  for (const j of d.journal) if (j.round) (rounds[j.round] = rounds[j.round] || []).push(j);
  const replays = Object.keys(rounds).map(Number).sort((a, b) => a - b);
  if (replays.length) {
    html += "<h3>Replay history</h3><table data-testid='replays'><thead><tr><th>replay</th><th class='l'>delivered</th><th class='l'>last result at</th></tr></thead><tbody>" +
      replays.map((g) => "<tr>" + cell(g) + "<td class='l'>" + rounds[g].map((j) => esc(j.stepId + " " + j.name + " (" + j.status + ")")).join(", ") +
        "</td><td class='l'>" + esc(time(Math.max(...rounds[g].map((j) => j.completedAt || 0)))) + "</td></tr>").join("") +
      "</tbody></table><p class='muted'>Replay 1 ran the body on its start; " + esc(d.generation) + " replays so far. Every replay is also published on shardflow.replays.</p>";
  }
  if (d.pendingTasks.length) {
    html += "<h3>Queued and running steps</h3><table data-testid='tasks'><thead><tr><th>step</th><th class='l'>name</th><th class='l'>state</th><th>attempt</th><th class='l'>ready at</th></tr></thead><tbody>" +
      d.pendingTasks.map((t) => "<tr>" + cell(t.stepId) + "<td class='l'>" + esc(t.name) + "</td><td class='l'>" + esc(t.state) + "</td>" + cell(t.attempt) + "<td class='l'>" + esc(time(t.readyAt)) + "</td></tr>").join("") + "</tbody></table>";
  }
  if (d.timers.length || d.eventWaits.length) {
    html += "<h3>Waiting for</h3><table data-testid='waits'><tbody>" +
      d.timers.map((t) => "<tr><td class='l'>timer of operation " + esc(t.stepId) + "</td><td class='l'>fires " + esc(time(t.fireAt)) + "</td></tr>").join("") +
      d.eventWaits.map((e) => "<tr><td class='l'>event of operation " + esc(e.stepId) + "</td><td class='l'>named <b>" + esc(e.name) + "</b></td></tr>").join("") + "</tbody></table>";
  }
  $("#view").innerHTML = html;
}

function listTable(title, testid, head, rows) {
  return "<h3>" + esc(title) + " <span class='muted'>(" + rows.length + ")</span></h3>" + (rows.length ? "<table data-testid='" + testid + "'><thead><tr>" + head.map((h) => "<th class='l'>" + esc(h) + "</th>").join("") + "</tr></thead><tbody>" + rows.join("") + "</tbody></table>" : "<p class='muted'>none</p>");
}
const link = (id) => "<a href='#/workflow/" + encodeURIComponent(id) + "'>" + esc(id) + "</a>";

async function listsView() {
  await loadOverview();
  const r = await api("lists");
  if (!r.ok) { $("#view").innerHTML = "<p class='bad'>" + esc(r.body.error) + "</p>"; return; }
  const stuck = [], parked = [], failed = [], retrying = [];
  for (const l of r.body) {
    for (const id of l.stuck) stuck.push("<tr><td class='l'>" + l.shard + "</td><td class='l'>" + link(id) + "</td></tr>");
    for (const p of l.parked) parked.push("<tr><td class='l'>" + l.shard + "</td><td class='l'>" + link(p.workflowId) + "</td><td class='l'>" + esc(p.workflow) + " v" + esc(p.version) + "</td><td class='l'>" + esc(time(p.parkedAt)) + "</td><td class='wrap'>" + esc(p.reason) + "</td><td class='l'>" + button("failParkedWorkflows", null, p.workflowId, "fail") + "</td></tr>");
    for (const f of l.failedRecently) failed.push("<tr><td class='l'>" + l.shard + "</td><td class='l'>" + link(f.workflowId) + "</td><td class='l'>" + esc(f.workflow) + "</td><td class='l'>" + esc(time(f.completedAt)) + "</td><td class='wrap'>" + esc(f.error) + (f.step ? " (step " + esc(f.step) + ")" : "") + "</td></tr>");
    for (const t of l.retrying) retrying.push("<tr><td class='l'>" + l.shard + "</td><td class='l'>" + link(t.workflowId) + "</td><td class='l'>" + esc(t.stepId) + " " + esc(t.name) + "</td><td class='l'>" + esc(t.attempts) + "</td><td class='l'>" + esc(time(t.readyAt)) + "</td><td class='wrap'>" + esc(t.lastError) + "</td></tr>");
  }
  $("#view").innerHTML = listTable("Stuck (I1 says none)", "stuck", ["shard", "workflow"], stuck) +
    listTable("Parked (waiting for a worker that can run them)", "parked", ["shard", "workflow", "code", "since", "reason", ""], parked) +
    listTable("Failed recently", "failed", ["shard", "workflow", "name", "completed", "error"], failed) +
    listTable("Retrying now", "retrying", ["shard", "workflow", "step", "attempts", "next attempt", "last error"], retrying);
}

async function render() {
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/workflow/")) await workflowView(decodeURIComponent(hash.slice("#/workflow/".length)));
    else if (hash === "#/lists") await listsView();
    else await shardsView();
    document.body.dataset.rendered = String(Date.now());
  } catch (error) {
    $("#view").innerHTML = "<p class='bad'>the worker does not answer: " + esc(error) + "</p>";
  }
}
function start() { clearInterval(timer); render(); timer = setInterval(render, 2000); }
window.addEventListener("hashchange", start);
$("#token").value = sessionStorage.getItem("shardflow-token") || "";
$("#token").addEventListener("change", () => sessionStorage.setItem("shardflow-token", $("#token").value));
start();
</script>
</body>
</html>
"""#
}
