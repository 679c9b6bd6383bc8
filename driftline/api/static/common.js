// Shared by the pages. Every producer-supplied string reaches the page through
// textContent (never innerHTML), and through esc() into plotly's labels, which
// plotly reads as its own small markup: escaped, it shows as text.
"use strict";
const api = (path) => fetch("/api/v1" + path, {credentials: "same-origin"}).then(async (r) => {
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
});
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "href") e.href = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}
function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
function statusBadge(status) {
  return el("span", {class: "status-" + status.replace(" ", ""), "data-status": status}, status);
}
function fmt(x) { return x == null ? "–" : (Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0)) ? x.toExponential(2) : (+x).toPrecision(3); }
function showError(where, err) { where.append(el("p", {class: "error"}, "could not load: " + err.message)); }
const PLOT = {displayModeBar: false, responsive: true};
