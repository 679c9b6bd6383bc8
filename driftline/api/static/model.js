"use strict";
const [, , MODEL, VERSION] = location.pathname.split("/").map(decodeURIComponent);
const BASE = "/models/" + encodeURIComponent(MODEL) + "/versions/" + encodeURIComponent(VERSION);
const RANGE = new URLSearchParams(location.search);
const rangeQuery = ["from", "to"].filter((k) => RANGE.get(k)).map((k) => k + "=" + encodeURIComponent(RANGE.get(k))).join("&");
document.getElementById("title").textContent = MODEL + " " + VERSION;
document.title = "driftline — " + MODEL + " " + VERSION;

function markers(times, name, color) {
  return {x: times, y: times.map(() => 1), type: "scatter", mode: "markers", name: name,
          marker: {symbol: "triangle-down", size: 11, color: color}, hoverinfo: "x+name"};
}

function drawSubject(row, name, s, alerts, triggers) {
  const x = s.points.map((p) => p.end);
  const ids = s.points.map((p) => p.id);
  const text = s.points.map((p) => esc(`${p.method}: ${fmt(p.statistic)} vs threshold ${fmt(p.threshold)}` +
                                      (s.per_point > 1 ? ` (largest of ${p.windows} windows)` : "")));
  const traces = [
    {x, y: s.points.map((p) => p.ratio), customdata: ids, text, name: "statistic / threshold", type: "scatter",
     mode: "lines+markers", hovertemplate: "%{x}<br>%{text}<extra></extra>"},
    {x, y: x.map(() => 1), name: "threshold", type: "scatter", mode: "lines", line: {dash: "dash", color: "#c0392b"}, hoverinfo: "skip"},
    {x, y: s.points.map((p) => p.warning_ratio), name: "warning", type: "scatter", mode: "lines",
     line: {dash: "dot", color: "#e67e22"}, hoverinfo: "skip"},
    markers(alerts, "alert changes", "#c0392b"), markers(triggers, "retrain triggers", "#8e44ad"),
  ];
  const chart = row.querySelector(".chart");
  Plotly.newPlot(chart, traces, {margin: {l: 50, r: 10, t: 10, b: 30}, yaxis: {type: "log", title: "× threshold"},
    showlegend: false, height: 200}, PLOT);
  chart.on("plotly_click", (ev) => { const id = ev.points[0].customdata; if (id != null) showWindow(id); });
}

async function loadFeatures() {
  const [models, alerts, triggers] = await Promise.all([api("/models"), api("/alerts?limit=1000&model=" + encodeURIComponent(MODEL)),
                                                         api("/triggers?limit=1000&model=" + encodeURIComponent(MODEL))]);
  const me = models.items.find((m) => m.model === MODEL && m.version === VERSION);
  if (!me) throw new Error("no windows stored for this model version");
  const alertTimes = alerts.items.filter((a) => a.version === VERSION).map((a) => a.window_end);
  const triggerTimes = triggers.items.filter((t) => t.event.data.version === VERSION).map((t) => t.window_end);
  const series = await Promise.all(me.subjects.map((n) => api(BASE + "/subjects/" + encodeURIComponent(n) + "/series?" + rangeQuery)));
  const worst = (s) => Math.max(0, ...s.points.map((p) => p.ratio || 0));
  const order = me.subjects.map((n, i) => [n, series[i]]).sort((a, b) => worst(b[1]) - worst(a[1]));
  drawRows(document.getElementById("features"), "feature", order, alertTimes, triggerTimes);
  const trends = await Promise.all((me.trends || []).map((n) =>
    api(BASE + "/subjects/" + encodeURIComponent(n) + "/series?test=trend&" + rangeQuery)));
  const byTrend = (me.trends || []).map((n, i) => [n, trends[i]]).sort((a, b) => worst(b[1]) - worst(a[1]));
  drawRows(document.getElementById("trends"), "trend", byTrend, alertTimes, triggerTimes);
  if (!byTrend.length) document.getElementById("trends").append(el("p", {}, "no trend tests (model.trend_windows is empty, or no numeric feature)"));
}

function drawRows(box, cls, order, alertTimes, triggerTimes) {
  const worst = (s) => Math.max(0, ...s.points.map((p) => p.ratio || 0));
  for (const [name, s] of order) {
    const row = el("div", {class: cls, "data-subject": name}, el("h3", {}, name, el("br"),
      el("small", {}, "max " + fmt(worst(s)) + "× threshold")), el("div", {class: "chart"}));
    box.append(row);
    drawSubject(row, name, s, alertTimes, triggerTimes);
  }
}

async function loadPerformance() {
  const box = document.getElementById("performance");
  const perf = await api("/models/" + encodeURIComponent(MODEL) + "/performance?limit=1000&version=" + encodeURIComponent(VERSION));
  if (!perf.items.length) {
    box.dataset.state = perf.labels ? "empty" : "no-labels";
    box.append(el("p", {}, perf.labels ? "labels are configured; none has joined a prediction of this version yet"
                                       : "no labels configured for this model (models[].labels)"));
    return;
  }
  box.dataset.state = "shown";
  const items = perf.items, task = items[items.length - 1].task, metric = perf.headline_metrics[task][0];
  const x = items.map((r) => r.window.start), value = (r, k) => (r[k] || {})[metric] ?? null;
  const thin = items.filter((r) => r.enough === false);
  const traces = [
    {x, y: items.map((r) => value(r, "metrics")), name: "realized " + metric, type: "scatter", mode: "lines+markers",
     error_y: {type: "data", array: items.map((r) => (r.metrics.se || {})[metric] ?? 0), visible: true, thickness: 1},
     marker: {size: 8, symbol: items.map((r) => r.enough === false ? "circle-open" : "circle")},
     text: items.map((r) => esc(`#${r.window.seq ?? "-"}: ${r.labelled}/${r.count} labelled` + (r.enough === false ? " (not enough)" : ""))),
     hovertemplate: "%{x}<br>" + metric + " %{y}<br>%{text}<extra></extra>"},
    {x, y: items.map((r) => r.labelled_share), name: "labelled share", type: "bar", yaxis: "y2", opacity: 0.25,
     marker: {color: "#7f8c8d"}, hoverinfo: "x+y"},
  ];
  if (items.some((r) => r.estimated)) {
    traces.push({x, y: items.map((r) => value(r, "estimated")), name: "estimated " + metric, type: "scatter",
                 mode: "lines+markers", line: {dash: "dot"}});
  }
  const chart = el("div", {class: "chart", id: "performance-chart", "data-metric": metric});
  const note = el("p", {class: "note", id: "performance-note"}, thin.length
    ? `${thin.length} window(s) (open markers) have less than ${perf.min_labelled ?? "min_labelled"} of their predictions labelled: their ${metric} is of a small, possibly unrepresentative part`
    : `every window shown has enough labels (labels.min_labelled ${perf.min_labelled})`);
  const table = el("table", {id: "performance-table"}, el("tr", {}, ...["seq", "start", "labelled", "share", "enough", metric, "± se", "estimated", "revision"].map((h) => el("th", {}, h))));
  for (const r of items) {
    table.append(el("tr", {"data-enough": String(r.enough)}, el("td", {}, r.window.seq ?? "–"), el("td", {}, r.window.start ?? "–"),
      el("td", {}, r.labelled + "/" + r.count), el("td", {}, r.labelled_share == null ? "–" : (100 * r.labelled_share).toFixed(1) + " %"),
      el("td", {}, r.enough === false ? "not enough" : r.enough ? "yes" : "–"), el("td", {}, fmt(value(r, "metrics"))),
      el("td", {}, fmt((r.metrics.se || {})[metric])), el("td", {}, fmt(value(r, "estimated"))), el("td", {}, r.revision)));
  }
  box.append(note, chart, table);
  Plotly.newPlot(chart, traces, {margin: {l: 50, r: 60, t: 30, b: 30}, height: 260,
    legend: {orientation: "h", x: 0, y: 1.12}, yaxis: {title: esc(metric)},
    yaxis2: {overlaying: "y", side: "right", range: [0, 1], tickformat: ".0%", dtick: 0.25, title: "labelled share",
             showgrid: false}}, PLOT);
}

async function loadWindows() {
  const w = await api(BASE + "/windows?limit=1000&" + rangeQuery);
  const body = document.querySelector("#windows tbody");
  for (const r of w.items) {
    const button = el("button", {"data-window": r.id}, "histograms");
    button.addEventListener("click", () => showWindow(r.id));
    body.append(el("tr", {}, el("td", {}, r.seq), el("td", {}, r.start), el("td", {}, r.end), el("td", {}, r.count),
      el("td", {}, r.invalid), el("td", {}, (r.drifted || []).join(", ") || "none"), el("td", {}, button)));
  }
  const x = w.items.map((r) => r.end);
  Plotly.newPlot("counts", ["count", "invalid", "late"].map((k) => ({x, y: w.items.map((r) => r[k]), name: k, type: "scatter", mode: "lines"})),
    {margin: {l: 50, r: 10, t: 10, b: 30}, height: 200}, PLOT);
}

function histogram(name, h) {
  const box = el("div", {class: "hist", "data-hist": name});
  let x;
  if (h.kind === "numeric") {
    x = h.reference.map((_, i) => fmt(h.bounds[i]) + "–" + fmt(h.bounds[i + 1]));
  } else {
    x = h.labels.map(esc);
  }
  const traces = [{x, y: h.reference, name: "reference", type: "bar"}, {x, y: h.window, name: "window", type: "bar"}];
  setTimeout(() => Plotly.newPlot(box, traces, {title: {text: esc(name), font: {size: 13}}, barmode: "group", height: 220, width: 420,
    margin: {l: 40, r: 10, t: 30, b: 60}, yaxis: {title: "share"}, showlegend: false}, PLOT), 0);
  return box;
}

function testsTable(name, f) {
  const rows = (f.tests || (f.drift ? [f.drift] : [])).map((t) => el("tr", {},
    el("td", {}, name), el("td", {}, t.method), el("td", {}, fmt(t.statistic)), el("td", {}, fmt(t.threshold)),
    el("td", {}, fmt(t.p_value)), el("td", {}, t.level || (t.drifted ? "drift" : "ok")), el("td", {}, t.reason || ""),
    el("td", {}, JSON.stringify(t.effect || {}))));
  return rows;
}

async function showWindow(id) {
  const w = await api("/windows/" + id);
  const s = w.summary;
  document.getElementById("window-title").textContent = `#${s.seq} ${s.start} → ${s.end} (${s.count} events)`;
  const box = document.getElementById("window");
  box.replaceChildren();
  const hists = el("div", {id: "histograms"});
  const tests = el("table", {id: "tests"}, el("tr", {}, ...["subject", "method", "statistic", "threshold", "p", "level", "reason", "effect"].map((h) => el("th", {}, h))));
  const subjects = Object.assign({}, s.features, s.prediction ? {prediction: s.prediction} : {});
  for (const [name, f] of Object.entries(subjects)) {
    if (w.histograms[name]) hists.append(histogram(name, w.histograms[name]));
    tests.append(...testsTable(name, f));
  }
  if (s.multivariate) tests.append(...testsTable("multivariate", {drift: s.multivariate}));
  const cats = el("table", {id: "categories"}, el("tr", {}, ...["feature", "category", "reference share", "window share"].map((h) => el("th", {}, h))));
  for (const [name, h] of Object.entries(w.histograms)) {
    if (h.kind !== "categorical") continue;
    h.labels.forEach((c, i) => cats.append(el("tr", {}, el("td", {}, name), el("td", {class: "category"}, c), el("td", {}, fmt(h.reference[i])), el("td", {}, fmt(h.window[i])))));
    for (const [c, n] of Object.entries(h.other_top)) cats.append(el("tr", {}, el("td", {}, name), el("td", {class: "category"}, c), el("td", {}, "(outside top-K)"), el("td", {}, n + " events")));
    cats.append(el("tr", {}, el("td", {}, name), el("td", {}, "unseen / vanished"), el("td", {}, h.vanished.join(", ") || "–"), el("td", {}, fmt(h.unseen))));
  }
  const quality = el("table", {id: "quality"}, el("tr", {}, ...["check", "feature", "statistic", "threshold", "detail"].map((h) => el("th", {}, h))));
  for (const q of s.quality || []) quality.append(el("tr", {}, el("td", {}, q.check), el("td", {}, q.feature), el("td", {}, fmt(q.statistic)), el("td", {}, fmt(q.threshold)), el("td", {}, q.detail)));
  box.append(el("h3", {}, "Reference against window"), el("p", {}, "numeric: the reference's quantile bins; the window's share per bin is interpolated between its stored quantiles"),
    hists, el("h3", {}, "Categories"), cats, el("h3", {}, "Tests"), tests, el("h3", {}, "Data quality"), quality);
  box.dataset.window = id;
}

Promise.all([loadFeatures(), loadWindows(), loadPerformance()]).then(() => { document.body.dataset.loaded = "1"; })
  .catch((e) => showError(document.body, e));
