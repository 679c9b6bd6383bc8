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


def against(window: dict, reference: dict, z: float) -> dict[str, dict]:
    """Every metric with a standard error in both → :func:`compare` of the window with the
    reference (``delta``, ``se``, ``z``, ``significant`` when worse by more than ``z`` of it)."""
    w_se, r_se = window.get("se") or {}, reference.get("se") or {}
    return {m: compare(window, reference, m, z=z) for m in sorted(w_se) if m in r_se
            and w_se[m] is not None and r_se[m] is not None}
