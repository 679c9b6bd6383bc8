"""Reference against window, per feature, for the dashboard: pure numpy, no I/O.

Numeric: the reference profile's quantile bins (``edges``, ``counts``) merged into at
most ``bins`` bins; the window's share of each bin is read off the window's stored
quantiles (its summary keeps no raw values), with the CDF interpolated linearly
between min, the 5/25/50/75/95 % quantiles and max. Categorical and boolean: shares of
the reference's top-K, ``other`` and (for the window) ``unseen``.

>>> ref = {"kind": "numeric", "edges": [1.0, 2.0, 3.0], "counts": [25, 25, 25, 25]}
>>> win = {"kind": "numeric", "min": 0.0, "max": 4.0, "count": 100,
...        "quantiles": {"0.05": 0.2, "0.25": 1.0, "0.5": 2.0, "0.75": 3.0, "0.95": 3.8}}
>>> h = numeric(ref, win, bins=4)
>>> [round(x, 2) for x in h["reference"]], [round(x, 2) for x in h["window"]]
([0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25])
"""

from __future__ import annotations

import numpy as np


def numeric(ref: dict, win: dict, bins: int = 20) -> dict:
    edges = np.asarray(ref["edges"], dtype=float)
    counts = np.asarray(ref["counts"], dtype=float)
    groups = np.array_split(np.arange(counts.size), min(bins, counts.size))
    ref_share = np.array([counts[g].sum() for g in groups]) / max(counts.sum(), 1.0)
    inner = np.array([edges[g[-1]] for g in groups[:-1]])  # bin i ends at edges[last index of group i]
    lo = min(edges[0], win.get("min", edges[0])) if edges.size else 0.0
    hi = max(edges[-1], win.get("max", edges[-1])) if edges.size else 1.0
    bounds = np.concatenate([[lo], inner, [hi]])
    return {"kind": "numeric", "bounds": bounds.tolist(), "reference": ref_share.tolist(),
            "window": _window_shares(win, bounds).tolist(), "window_from": "interpolated between its quantiles"}


def _window_shares(win: dict, bounds: np.ndarray) -> np.ndarray:
    q = win.get("quantiles") or {}
    if not q or win.get("count", 0) == 0 or win.get("min") is None:
        return np.zeros(bounds.size - 1)
    xs = [win["min"]] + [q[k] for k in sorted(q, key=float)] + [win["max"]]
    ps = [0.0] + [float(k) for k in sorted(q, key=float)] + [1.0]
    xs = np.maximum.accumulate(np.asarray(xs, dtype=float))
    cdf = np.interp(bounds, xs, ps, left=0.0, right=1.0)
    cdf[0], cdf[-1] = 0.0, 1.0
    return np.diff(cdf)


def categorical(ref: dict, win: dict) -> dict:
    cats = list(ref["categories"])
    counts = list(ref["counts"]) + [0] * (len(cats) + 1 - len(ref["counts"]))
    n_ref = max(sum(counts), 1)
    top = win.get("top") or {}
    n_win = max(sum(top.values()) + win.get("other", 0), 1)
    labels = cats + ["other"]
    ref_share = [c / n_ref for c in counts[:len(cats) + 1]]
    win_share = [top.get(c, 0) / n_win for c in cats] + [win.get("other", 0) / n_win]
    vanished = [c for c, r in zip(cats, counts) if r > 0 and top.get(c, 0) == 0]
    return {"kind": "categorical", "labels": labels, "reference": ref_share, "window": win_share,
            "unseen": win.get("unseen", 0) / n_win, "other_top": win.get("other_top") or {}, "vanished": vanished}


def for_window(summary: dict, profile: dict | None, bins: int = 20) -> dict:
    """Per feature (and the prediction) of ``summary``: its histograms, when the reference has it."""
    feats = profile.get("features", {}) if profile else {}
    subjects = dict(summary.get("features", {}))
    if isinstance(summary.get("prediction"), dict):
        subjects["prediction"] = summary["prediction"]
    out = {}
    for name, win in subjects.items():
        ref = feats.get(name)
        if ref is None or not isinstance(win, dict):
            continue
        if ref.get("kind") == "numeric" and ref.get("edges") is not None:
            out[name] = numeric(ref, win, bins)
        elif "categories" in ref:
            out[name] = categorical(ref, win)
    return out
