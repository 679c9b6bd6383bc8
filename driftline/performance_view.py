"""Stored realized performance as the CLI, the API and the dashboard read it back: pure, no I/O.

A ``performance`` table row (driftline/store/schema.py) becomes the performance line's shape
(README "Performance"), without ``type`` and with ``delay`` holding the stored p50, p90 and max.
``enough`` is recomputed from the model's *current* ``labels.min_labelled``, as it is not stored.

The headline metrics are ``roc_auc``, ``accuracy``, ``f1``, ``log_loss`` for ``binary`` and
``mae``, ``rmse``, ``r2`` for ``regression``; the first of them is *the* headline metric
(the fleet page's and the ``driftline_performance`` gauge's first).

>>> row = {"model": "m", "version": "v1", "window_key": 0, "window_kind": "count", "start": "s", "end": "e",
...        "seq": 0, "count": 10, "labelled": 4, "labelled_share": 0.4, "delay_p50": 1.0, "delay_p90": 2.0,
...        "delay_max": 3.0, "metrics": {"roc_auc": 0.8, "accuracy": 0.75, "se": {"roc_auc": 0.1}},
...        "revision": 2, "segment": "", "estimated": None, "reference": None, "findings": None, "updated_at": 1.0}
>>> line = from_row(row, min_labelled=0.3)
>>> line["task"], line["enough"], line["segment"], line["findings"], headline(line)
('binary', True, None, [], {'metric': 'roc_auc', 'value': 0.8, 'se': 0.1})
>>> coverage([line, from_row(row | {"window_key": 1, "labelled": 1, "labelled_share": 0.1}, 0.3)])
{'windows': 2, 'labelled': 5, 'count': 20, 'share': 0.25}
"""

from __future__ import annotations

HEADLINE = {"binary": ("roc_auc", "accuracy", "f1", "log_loss"), "regression": ("mae", "rmse", "r2")}
#: windows the fleet's label coverage is taken over (the newest ones with at least one label)
COVERAGE_WINDOWS = 10
MAX_SEGMENT = 400  # the column's width


def task_of(metrics: dict) -> str:
    """``regression`` when the metrics are a regression's (they have ``mae``), else ``binary``."""
    return "regression" if "mae" in (metrics or {}) else "binary"


def segment_of(stored: str) -> dict | None:
    """``""`` → ``None``; ``"country=DE"`` → ``{"feature": "country", "value": "DE"}``."""
    if not stored:
        return None
    feature, _, value = stored.partition("=")
    return {"feature": feature, "value": value}


def check_segment(text: str | None, where: str) -> str:
    """A segment as given by a user (``feature=value``, or empty: the whole version) as stored;
    a ``ValueError`` naming ``where`` otherwise."""
    if text is None or text == "":
        return ""
    feature, eq, _ = text.partition("=")
    if not eq or not feature or len(text) > MAX_SEGMENT:
        raise ValueError(f"{where}: expected FEATURE=VALUE (at most {MAX_SEGMENT} characters), e.g. country=DE, "
                         f"got {text[:60]!r}")
    return text


def from_row(row: dict, min_labelled: float | None) -> dict:
    """A stored row as a performance line (without ``type``); ``enough`` by ``min_labelled``
    (``None``: the model has no ``labels`` configured now, so ``enough`` is ``None``)."""
    share = row["labelled_share"]
    enough = None if min_labelled is None else share is not None and share >= min_labelled
    return {"model": row["model"], "version": row["version"],
            "window": {"start": row["start"], "end": row["end"], "seq": row["seq"]},
            "window_kind": row["window_kind"], "window_key": row["window_key"], "task": task_of(row["metrics"]),
            "count": row["count"], "labelled": row["labelled"], "labelled_share": share,
            "delay": {"p50": row["delay_p50"], "p90": row["delay_p90"], "max": row["delay_max"]},
            "segment": segment_of(row["segment"]), "metrics": row["metrics"], "estimated": row["estimated"],
            "reference": row["reference"], "versions": row.get("versions"), "findings": row["findings"] or [],
            "enough": enough,
            "revision": row["revision"], "updated_at": row["updated_at"]}


def headline(line: dict) -> dict | None:
    """The line's headline metric: its name, value and standard error (``None`` if undefined)."""
    name = HEADLINE[line["task"]][0]
    metrics = line["metrics"] or {}
    if metrics.get(name) is None:
        return None
    return {"metric": name, "value": metrics[name], "se": (metrics.get("se") or {}).get(name)}


def coverage(lines: list[dict]) -> dict:
    """Labelled share of ``lines`` together: Σ labelled / Σ count."""
    labelled, count = sum(x["labelled"] for x in lines), sum(x["count"] for x in lines)
    return {"windows": len(lines), "labelled": labelled, "count": count, "share": labelled / count if count else None}


def summary(lines: list[dict]) -> dict:
    """A model version's performance for the fleet: ``lines`` are its newest windows (whole
    version, oldest first). ``coverage`` over them; ``headline`` of the newest with ``enough``."""
    newest = next((x for x in reversed(lines) if x["enough"] and headline(x) is not None), None)
    return {"task": lines[-1]["task"] if lines else None, "coverage": coverage(lines),
            "headline": None if newest is None else {
                **headline(newest), "window": newest["window"], "labelled_share": newest["labelled_share"],
                "revision": newest["revision"],
                "estimated": (newest["estimated"] or {}).get(headline(newest)["metric"])}}


def text_row(line: dict) -> dict:
    """One line as ``driftline performance`` prints it: a cell per column of :func:`columns`."""
    w, metrics, est = line["window"], line["metrics"] or {}, line["estimated"] or {}
    row = {"model": line["model"], "version": line["version"],
           "window": f"#{w['seq']} {w['start']}" if w["seq"] is not None else w["start"],
           "segment": "" if line["segment"] is None else f"{line['segment']['feature']}={line['segment']['value']}",
           "labelled": f"{line['labelled']}/{line['count']}",
           "share": None if line["labelled_share"] is None else f"{100 * line['labelled_share']:.1f}%",
           "enough": {True: "yes", False: "NO", None: "-"}[line["enough"]],
           "delay_p50": line["delay"]["p50"], "delay_p90": line["delay"]["p90"], "revision": line["revision"]}
    for name in HEADLINE[line["task"]]:
        row[name] = metrics.get(name)
        row[f"est_{name}"] = est.get(name)
    return row


def columns(lines: list[dict], segment: bool) -> list[str]:
    """The table's columns: every shown task's headline metrics, an estimated one beside
    roc_auc and accuracy when a shown window has estimates, the segment when asked for one."""
    tasks = [t for t in HEADLINE if any(x["task"] == t for x in lines)]
    estimated = any(x["estimated"] for x in lines)
    metrics = [c for t in tasks for name in HEADLINE[t]
               for c in ([name, f"est_{name}"] if estimated and name in ("roc_auc", "accuracy") else [name])]
    return (["model", "version", "window"] + (["segment"] if segment else [])
            + ["labelled", "share", "enough"] + metrics + ["delay_p50", "delay_p90", "revision"])
