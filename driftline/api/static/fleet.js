"use strict";
function incidentsLink(m) {
  if (!m.firing_incidents) return "0";
  return el("a", {href: "/incidents?status=firing&model=" + encodeURIComponent(m.model)}, String(m.firing_incidents));
}
api("/models").then((data) => {
  const body = document.querySelector("#fleet tbody");
  for (const m of data.items) {
    const spark = el("div", {class: "spark"});
    const link = m.version == null ? m.model
      : el("a", {href: "/models/" + encodeURIComponent(m.model) + "/" + encodeURIComponent(m.version)}, m.model);
    body.append(el("tr", {"data-model": m.model},
      el("td", {}, link), el("td", {}, m.version ?? "–"), el("td", {}, statusBadge(m.status)),
      el("td", {}, m.last_window_end ?? "–"), el("td", {}, spark),
      el("td", {}, m.invalid_rate == null ? "–" : (100 * m.invalid_rate).toFixed(2) + " %"),
      el("td", {class: "firing-incidents", "data-count": m.firing_incidents || 0}, incidentsLink(m)),
      el("td", {}, (m.firing || []).join(", ") || "–"), el("td", {}, (m.drifted || []).join(", ") || "none"),
      ...performanceCells(m.performance)));
    if (m.recent && m.recent.length) {
      Plotly.newPlot(spark, [{x: m.recent.map((r) => r.end), y: m.recent.map((r) => r.count), type: "scatter",
        mode: "lines", line: {width: 1}, hoverinfo: "x+y"}],
        {margin: {l: 0, r: 0, t: 0, b: 0}, xaxis: {visible: false}, yaxis: {visible: false, rangemode: "tozero"},
         height: 40, width: 220}, {staticPlot: true});
    }
  }
  return api("/lag").then(showLag);
}).then(() => { document.body.dataset.loaded = "1"; }).catch((e) => showError(document.body, e));

function showLag(lag) {
  const note = document.querySelector("#lag-note"), body = document.querySelector("#lag tbody");
  note.dataset.available = lag.available ? "1" : "0";
  if (!lag.available) { note.textContent = "lag: not available — " + lag.reason; return; }
  note.textContent = lag.items.length ? "total: " + lag.total + " record(s) not yet checkpointed"
    + " (the embedded broker can under-report the high watermark, so lag there can read low)" : "lag: " + lag.reason;
  for (const r of lag.items) body.append(el("tr", {}, el("td", {}, r.topic), el("td", {}, r.partition), el("td", {}, r.lag)));
}

function performanceCells(p) {
  if (!p) return [el("td", {class: "coverage", "data-labels": "0"}, "no labels"), el("td", {class: "headline"}, "–")];
  const c = p.coverage, h = p.headline;
  const coverage = c.share == null ? (p.labels ? "none joined yet" : "–")
    : (100 * c.share).toFixed(1) + " % (" + c.labelled + "/" + c.count + ", " + c.windows + " windows)";
  const headline = !h ? "no window with enough labels yet"
    : h.metric + " " + fmt(h.value) + (h.se != null ? " ± " + fmt(h.se) : "") +
      (h.estimated != null ? " (estimated " + fmt(h.estimated) + ")" : "") + " · window " + (h.window.seq ?? h.window.start);
  return [el("td", {class: "coverage", "data-labels": p.labels ? "1" : "0", "data-share": c.share ?? ""}, coverage),
          el("td", {class: "headline", "data-metric": h ? h.metric : "", "data-value": h ? h.value : ""}, headline)];
}
