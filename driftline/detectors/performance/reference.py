"""The labelled reference's performance: what each window's realized and estimated
performance is compared with (docs/performance.md, "Against the reference").

:func:`reference_performance` measures a model on its reference file's predictions and
labels, and for a binary classifier fits the calibrator the estimate uses (isotonic when it
improves the cross-validated Brier score, else the identity) and the estimate on the
reference itself. :func:`against` compares a window's metrics with the reference's, metric
by metric, with both standard errors.

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> s = rng.uniform(size=4000); y = (rng.uniform(size=4000) < s).astype(float)
>>> ref = reference_performance("binary", 0.5, s, y)
>>> ref["n"], ref["calibrator"]["method"], round(ref["metrics"]["roc_auc"], 2)
(4000, 'identity', 0.84)
>>> win = BinaryStats(0.5); win.update(s[:1000], 1 - y[:1000])
>>> against(win.metrics(), ref["metrics"], z=3.0)["roc_auc"]["significant"]
True
"""

from __future__ import annotations

import numpy as np

from driftline.detectors.performance.binary import BinaryStats
from driftline.detectors.performance.compare import compare
from driftline.detectors.performance.estimation import EstimatedStats
from driftline.detectors.performance.isotonic import Calibrator
from driftline.detectors.performance.regression import RegressionStats


def label_values(column) -> np.ndarray:
    """A reference file's label column as floats: booleans 1/0, numbers as they are, anything
    else (missing, text) NaN, which the statistics count as invalid and leave out."""
    out = np.full(len(column), np.nan)
    for i, v in enumerate(column.tolist() if isinstance(column, np.ndarray) else column):
        if isinstance(v, (bool, np.bool_)):
            out[i] = float(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[i] = float(v)
    return out


def reference_performance(task: str, threshold: float, predictions, labels) -> dict | None:
    """``{"task", "n", "invalid", "metrics", "calibrator", "estimated"}`` of the reference's
    labelled predictions (``calibrator`` and ``estimated`` only for ``binary``), as plain data;
    ``None`` when no pair is usable."""
    p = np.asarray(predictions, dtype=np.float64).ravel()
    y = label_values(labels)
    if task == "binary":
        stats = BinaryStats(threshold)
        stats.update(p, y)
    else:
        stats = RegressionStats()
        stats.update(y, p)
    if stats.n == 0:
        return None
    out = {"task": task, "n": stats.n, "invalid": stats.invalid, "metrics": stats.metrics(),
           "calibrator": None, "estimated": None}
    if task == "binary":
        ok = np.isfinite(p) & (p >= 0) & (p <= 1) & ((y == 0) | (y == 1))
        cal = Calibrator.fit(p[ok], y[ok])
        est = EstimatedStats(cal, threshold)
        est.update(p[ok])
        state = cal.to_state()
        out["calibrator"] = state | {"x": state["x"].tolist(), "y": state["y"].tolist()}
        out["estimated"] = est.metrics()
    return out


def segment_performance(task: str, threshold: float, predictions, labels, segments: dict,
                        calibrator: dict | None, min_rows: int = 100, max_values: int = 1000) -> dict:
    """``{feature: {value: {"n", "invalid", "metrics", "estimated"}}}``: the reference's
    performance in each value of each segment feature (``segments``: feature → the file's
    values, as the profile stores them) that has at least ``min_rows`` labelled rows, at most
    ``max_values`` per feature (the commonest); a binary model's estimate with the whole
    reference's ``calibrator``, as a segment's windows are estimated."""
    from driftline.detectors.profile import label
    p = np.asarray(predictions, dtype=np.float64).ravel()
    y = label_values(labels)
    cal = Calibrator.from_state(calibrator) if calibrator is not None and task == "binary" else None
    out: dict[str, dict] = {}
    for feature, raw in segments.items():
        values = np.array([label(v) for v in raw], dtype=object)
        known, counts = np.unique(values[[v is not None for v in values]].astype(str), return_counts=True)
        out[feature] = {}
        for value in known[np.argsort(-counts, kind="stable")][:max_values].tolist():
            sel = values == value
            stats = BinaryStats(threshold) if task == "binary" else RegressionStats()
            if task == "binary":
                stats.update(p[sel], y[sel])
            else:
                stats.update(y[sel], p[sel])
            if stats.n < min_rows:
                continue
            entry = {"n": stats.n, "invalid": stats.invalid, "metrics": stats.metrics(), "estimated": None}
            if cal is not None:
                est = EstimatedStats(cal, threshold)
                ok = np.isfinite(p[sel]) & (p[sel] >= 0) & (p[sel] <= 1)
                est.update(p[sel][ok])
                entry["estimated"] = est.metrics() if est.n else None
            out[feature][value] = entry
    return out


def against(window: dict, reference: dict, z: float) -> dict[str, dict]:
    """Every metric with a standard error in both → :func:`compare` of the window with the
    reference (``delta``, ``se``, ``z``, ``significant`` when worse by more than ``z`` of it)."""
    w_se, r_se = window.get("se") or {}, reference.get("se") or {}
    return {m: compare(window, reference, m, z=z) for m in sorted(w_se) if m in r_se
            and w_se[m] is not None and r_se[m] is not None}
