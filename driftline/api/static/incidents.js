"use strict";
function deliveries(list) {
  return el("ul", {}, ...list.map((d) => el("li", {}, `${d.sink}: ${d.status}` + (d.attempts ? ` after ${d.attempts} failed attempt(s)` : "") +
    (d.receipt && Object.keys(d.receipt).length ? " " + JSON.stringify(d.receipt) : "") + (d.last_error ? " — " + d.last_error : ""))));
}
function evidence(features) {
  return el("ul", {}, ...Object.entries(features || {}).map(([n, r]) => el("li", {}, `${n}: ${r.method} ${fmt(r.statistic)} (threshold ${fmt(r.threshold)})`)));
}
Promise.all([api("/alerts?limit=1000"), api("/triggers?limit=1000"), api("/silences")]).then(([alerts, triggers, silences]) => {
  const body = document.querySelector("#alerts tbody");
  for (const a of alerts.items.slice().reverse()) {
    body.append(el("tr", {"data-fingerprint": a.fingerprint}, el("td", {}, a.window_end), el("td", {}, statusBadge(a.status === "firing" ? "firing" : "ok"), " ", a.status),
      el("td", {}, a.severity), el("td", {}, a.model + " " + a.version), el("td", {}, a.rule), el("td", {}, a.subject),
      el("td", {}, fmt(a.value) + " vs " + fmt(a.threshold)), el("td", {}, a.since), el("td", {}, evidence(a.features)),
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
  document.body.dataset.loaded = "1";
}).catch((e) => showError(document.body, e));
