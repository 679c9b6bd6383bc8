"use strict";
// Every value here (feature names, categories, titles, errors, receipts) is the producer's or a
// sink's text: it reaches the page only through el() (textContent) and esc() (plotly labels).
const FILTER = new URLSearchParams(location.search);
const QUERY = ["model", "status"].filter((k) => FILTER.get(k)).map((k) => "&" + k + "=" + encodeURIComponent(FILTER.get(k))).join("");

function receipt(r) {
  if (!r || !Object.keys(r).length) return "";
  const parts = [];
  if (r.ts !== undefined) parts.push(r.ts ? `Slack ts ${r.ts}` + (r.channel ? ` in ${r.channel}` : "") : "Slack: no ts (incoming webhook)");
  if (r.dedup_key) parts.push(`dedup key ${r.dedup_key}`);
  if (r.status !== undefined) parts.push(`HTTP ${r.status}`);
  const rest = Object.fromEntries(Object.entries(r).filter(([k]) => !["ts", "channel", "dedup_key", "status"].includes(k)));
  if (Object.keys(rest).length) parts.push(JSON.stringify(rest));
  return parts.join(", ");
}
function deliveries(list) {
  return el("ul", {}, ...list.map((d) => el("li", {"data-sink": d.sink}, `${d.sink}: ${d.status}` + (d.attempts ? ` (${d.attempts} attempt(s))` : "") +
    (receipt(d.receipt) ? " " + receipt(d.receipt) : "") + (d.last_error ? " — " + d.last_error : ""))));
}
function evidence(features) {
  return el("ul", {}, ...Object.entries(features || {}).map(([n, r]) => el("li", {}, `${n}: ${r.method} ${fmt(r.statistic)} (threshold ${fmt(r.threshold)})`)));
}
// In event time: opened → resolved, or → its last window while it fires (a replay's incident
// is not "13 days old" because its events are).
function duration(from, to, last) {
  if (!from) return "–";
  let s = Math.max(0, (Date.parse(to || last || from) - Date.parse(from)) / 1000);
  const out = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (s >= size) { out.push(Math.floor(s / size) + unit); s %= size; }
  }
  if (out.length < 2 && (Math.round(s) || !out.length)) out.push(Math.round(s) + "s");
  return out.join(" ") + (to ? "" : " so far (to its last window)");
}
function table(cls, headers, rows) {
  return el("table", {class: cls}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows));
}
function modelLink(inc) {
  return el("a", {class: "model-link", href: "/models/" + encodeURIComponent(inc.model) + "/" + encodeURIComponent(inc.version)}, inc.model + " " + inc.version);
}

function featuresTable(inc) {
  const rows = Object.entries(inc.features || {}).sort((a, b) => b[1].ratio - a[1].ratio).map(([name, f]) =>
    el("tr", {class: inc.worst && inc.worst.feature === name ? "worst" : ""}, el("td", {class: "feature-name"}, name), el("td", {}, f.method),
      el("td", {}, fmt(f.statistic)), el("td", {}, fmt(f.threshold)), el("td", {}, fmt(f.ratio) + "×"),
      el("td", {}, f.first_window), el("td", {}, f.worst_window)));
  return rows.length ? table("features", ["feature", "method", "worst statistic", "threshold", "× threshold", "first drifted", "worst window"], rows)
    : el("p", {}, "no feature drifted (a model-level rule: data quality, volume, no data, …)");
}
function alertsTable(inc) {
  return table("incident-alerts", ["rule", "subject", "level", "severity", "status", "value vs threshold", "since"],
    (inc.alerts || []).map((a) => el("tr", {class: a.status === "inhibited" ? "inhibited" : "", "data-status": a.status},
      el("td", {}, a.rule), el("td", {}, a.subject), el("td", {}, a.level), el("td", {}, a.severity),
      el("td", {}, a.status === "inhibited" ? "inhibited (a model-level alert fires: no page of its own)" : a.status),
      el("td", {}, fmt(a.value) + " vs " + fmt(a.threshold)), el("td", {}, a.since))));
}
function timelineList(inc) {
  return el("ol", {class: "incident-timeline"}, ...(inc.timeline || []).map((e) => e.type === "alert"
    ? el("li", {"data-type": "alert", class: e.inhibited ? "inhibited" : ""}, e.time + " — alert " + e.status + ": " + e.rule + " on " + e.subject +
        ` (${fmt(e.value)} vs ${fmt(e.threshold)})` + (e.inhibited ? " — inhibited" : ""))
    : el("li", {"data-type": "notification", "data-event": e.event}, e.time + " — notification " + e.event +
        ((e.new_features || []).length ? ": adds " + e.new_features.join(", ") : ""), deliveries(e.deliveries))));
}
function deliveriesTable(inc) {
  const rows = (inc.deliveries || []).map((d) => el("tr", {"data-sink": d.sink, "data-event": d.event},
    el("td", {}, d.event), el("td", {}, d.sink), el("td", {}, el("span", {class: "delivery-" + d.status}, d.status)),
    el("td", {class: "receipt"}, receipt(d.receipt) || "–"), el("td", {}, d.attempts), el("td", {class: "last-error"}, d.last_error || ""),
    el("td", {}, d.sent_at ? new Date(d.sent_at * 1000).toISOString() : "–")));
  return rows.length ? table("deliveries", ["event", "sink", "status", "receipt", "attempts", "last error", "sent at"], rows)
    : el("p", {}, "no notifications: no sink takes incidents (alerts.slack, alerts.pagerduty, alerts.alertmanager)");
}
function triggerBox(inc) {
  const t = inc.trigger;
  if (!t) return el("p", {class: "trigger"}, "no retraining trigger");
  return el("div", {class: "trigger", "data-trigger": t.id || ""},
    el("p", {}, `CloudEvent ${t.id} (${t.type || "?"}) at ${t.time || "?"}: ${t.status || "not delivered yet"}`), deliveries(t.deliveries),
    t.event ? el("pre", {}, JSON.stringify(t.event, null, 1)) : "");
}

function incidentSection(inc) {
  const badge = el("span", {class: "status-" + (inc.status === "firing" ? "firing" : "ok"), "data-status": inc.status}, inc.status);
  const worst = inc.worst ? `worst: ${inc.worst.feature} ${inc.worst.method} ${fmt(inc.worst.statistic)} vs ${fmt(inc.worst.threshold)} (${fmt(inc.worst.ratio)}×)` : "";
  return el("section", {class: "incident", "data-incident": inc.id, "data-status": inc.status},
    el("h2", {}, badge, " ", el("span", {class: "severity severity-" + inc.severity}, inc.severity), " ", el("span", {class: "title"}, inc.title)),
    el("p", {class: "meta"}, modelLink(inc), ` · opened ${inc.opened_at || "–"} · ` + (inc.resolved_at ? `resolved ${inc.resolved_at}` : "still firing") +
      ` · ${duration(inc.opened_at, inc.resolved_at, inc.updated_at)} · ${(inc.windows || {}).count || 0} window(s) · id ${inc.id}`),
    el("p", {class: "worst"}, worst),
    el("h3", {}, "Features"), featuresTable(inc), el("h3", {}, "Alerts"), alertsTable(inc),
    el("h3", {}, "Timeline"), timelineList(inc), el("h3", {}, "Deliveries"), deliveriesTable(inc),
    el("h3", {}, "Retraining trigger"), triggerBox(inc));
}

async function loadIncidents() {
  const box = document.getElementById("incidents");
  if (QUERY) document.getElementById("filter").textContent = "Showing " + ["model", "status"].filter((k) => FILTER.get(k)).map((k) => `${k} ${FILTER.get(k)}`).join(", ") + ".";
  const page = await api("/incidents?limit=50" + QUERY);
  const full = await Promise.all(page.items.map((i) => api("/incidents/" + encodeURIComponent(i.id))));
  if (!full.length) box.append(el("p", {}, "no incidents"));
  for (const inc of full) box.append(incidentSection(inc));
  if (page.next) box.append(el("p", {}, "older incidents: /api/v1/incidents?after=" + page.next));
}

async function loadAlertsAndTriggers() {
  const model = FILTER.get("model") ? "&model=" + encodeURIComponent(FILTER.get("model")) : "";
  const [alerts, triggers, silences] = await Promise.all([api("/alerts?limit=1000" + model), api("/triggers?limit=1000" + model), api("/silences")]);
  const body = document.querySelector("#alerts tbody");
  for (const a of alerts.items.slice().reverse()) {
    body.append(el("tr", {"data-fingerprint": a.fingerprint}, el("td", {}, a.window_end), el("td", {}, statusBadge(a.status === "firing" ? "firing" : "ok"), " ", a.status, a.inhibited ? " (inhibited)" : ""),
      el("td", {}, a.severity), el("td", {}, a.model + " " + a.version), el("td", {}, a.rule), el("td", {}, a.subject),
      el("td", {}, fmt(a.value) + " vs " + fmt(a.threshold)), el("td", {}, a.since), el("td", {}, a.incident || "–"), el("td", {}, evidence(a.features)),
      el("td", {}, deliveries(a.deliveries))));
  }
  const tb = document.querySelector("#triggers tbody");
  for (const t of triggers.items.slice().reverse()) {
    tb.append(el("tr", {}, el("td", {}, t.window_end), el("td", {}, t.event.subject), el("td", {}, t.event.data.reason),
      el("td", {}, deliveries(t.deliveries)), el("td", {}, el("pre", {}, JSON.stringify(t.event, null, 1)))));
  }
  const sb = document.querySelector("#silences tbody");
  for (const s of silences.items) sb.append(el("tr", {}, el("td", {}, s.matchers.join(" ")), el("td", {}, s.state), el("td", {}, s.starts_at_iso),
    el("td", {}, s.ends_at_iso), el("td", {}, s.author), el("td", {}, s.comment)));
  const byKey = {};
  for (const a of alerts.items) (byKey[a.model + " " + a.version + " " + a.rule] ||= []).push(a);
  const traces = Object.entries(byKey).map(([k, list]) => ({x: list.map((a) => a.window_end), y: list.map(() => esc(k)), name: esc(k),
    text: list.map((a) => a.status), mode: "markers+lines", type: "scatter", line: {shape: "hv"},
    marker: {size: 10, color: list.map((a) => a.status === "firing" ? "#c0392b" : "#2ecc71")}}));
  traces.push({x: triggers.items.map((t) => t.window_end), y: triggers.items.map((t) => esc(t.event.subject + " retrain")), name: "retrain triggers",
    mode: "markers", type: "scatter", marker: {symbol: "star", size: 12, color: "#8e44ad"}});
  Plotly.newPlot("timeline", traces, {margin: {l: 200, r: 10, t: 10, b: 30}, height: 200, showlegend: false}, PLOT);
}

Promise.all([loadIncidents(), loadAlertsAndTriggers()]).then(() => { document.body.dataset.loaded = "1"; })
  .catch((e) => showError(document.body, e));
