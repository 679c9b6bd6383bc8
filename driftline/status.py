"""What ``driftline status`` and ``driftline windows`` show, built from the store's read queries.

>>> print(table([{"model": "fraud", "events": 1200}], ["model", "events"]))
model  events
fraud  1200
"""

from __future__ import annotations

from datetime import datetime, timezone

from driftline.summary import alert_row

STATUS_COLUMNS = ["model", "version", "last_window_end", "events_1h", "invalid_1h", "drifted_now", "firing",
                  "pending"]
WINDOW_COLUMNS = ["version", "end", "count", "invalid", "feature", "method", "statistic", "threshold", "drifted"]


def iso(seconds: float) -> str:
    """Epoch seconds as the windows' ISO-8601 (milliseconds, ``Z``), which sorts like time."""
    t = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _subject(payload: dict) -> tuple[str | None, str | None]:
    data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
    return data.get("model"), data.get("version")


def status_rows(reads, now: float) -> list[dict]:
    """One row per model version: its newest window, the last hour's events and invalid share,
    the features drifted in the newest window, alerts firing (with since when), deliveries pending."""
    since = iso(now - 3600)
    latest = reads.latest_windows()
    shown = {(w["model"], w["version"]) for w in latest}
    firing: dict[tuple, list[dict]] = {}
    for a in reads.firing():
        segment = (a["state"].get("last_event") or {}).get("segment")
        key, rule = alert_row(a["model"], a["version"], a["rule"], segment, shown)
        firing.setdefault(key, []).append(
            {"rule": rule, "since": a["state"].get("since"), "severity": a["state"].get("severity")})
    pending: dict[tuple, int] = {}
    for payload in reads.pending_payloads():
        key = _subject(payload)
        pending[key] = pending.get(key, 0) + 1
    rows = []
    for w in latest:
        key = (w["model"], w["version"])
        hour = reads.counts_since(w["model"], w["version"], since)
        seen = hour["count"] + hour["invalid"]
        rows.append({"model": w["model"], "version": w["version"], "last_window_end": w["end"],
                     "last_window_seq": w["seq"], "events_1h": int(hour["count"]),
                     "invalid_1h": round(hour["invalid"] / seen, 4) if seen else None,
                     "drifted_now": list(w["summary"].get("drifted") or []),
                     "firing": firing.get(key, []), "pending": pending.get(key, 0)})
    return rows


def status_cells(row: dict) -> dict:
    """A status row for the table: lists joined, the share as a percentage."""
    return row | {"invalid_1h": "-" if row["invalid_1h"] is None else f"{100 * row['invalid_1h']:.2f}%",
                  "drifted_now": ", ".join(row["drifted_now"]) or "-",
                  "firing": ", ".join(f"{a['rule']} since {a['since']}" for a in row["firing"]) or "-"}


def window_rows(summaries: list[dict], feature: str | None) -> list[dict]:
    """Per window: end, count, invalid and one feature's drift (the most drifted one without ``feature``)."""
    rows = []
    for s in summaries:
        name, drift = _drift(s, feature)
        rows.append({"version": s.get("version"), "start": s.get("start"), "end": s.get("end"),
                     "count": s.get("count"), "invalid": s.get("invalid"), "feature": name,
                     "method": drift.get("method"), "statistic": drift.get("statistic"),
                     "threshold": drift.get("threshold"), "drifted": drift.get("drifted"),
                     "drifted_features": s.get("drifted") or []})
    return rows


def _drift(summary: dict, feature: str | None) -> tuple[str | None, dict]:
    parts = dict(summary.get("features") or {})
    for extra in ("prediction", "multivariate", "domain_classifier"):
        if isinstance(summary.get(extra), dict):
            part = summary[extra]
            parts.setdefault(extra, part if "drift" in part else {"drift": part})
    if feature is not None:
        return feature, (parts.get(feature) or {}).get("drift") or {}
    scored = [(n, f["drift"]) for n, f in parts.items() if isinstance(f.get("drift"), dict)]
    return max(scored, key=lambda item: _ratio(item[1])) if scored else (None, {})


def _ratio(drift: dict) -> tuple[bool, float]:
    """Drifted first, then how far the statistic is towards its threshold."""
    stat, threshold = drift.get("statistic"), drift.get("threshold")
    near = abs(stat) / abs(threshold) if stat is not None and threshold else float("-inf")
    return bool(drift.get("drifted")), near


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    """Rows as aligned text columns under a header."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
