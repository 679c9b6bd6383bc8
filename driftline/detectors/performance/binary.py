"""Mergeable sufficient statistics of a binary classifier's window: score (probability of the
positive class) and label (0/1) in, metrics with their standard errors out.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = rng.uniform(size=4000); y = (rng.uniform(size=4000) < s).astype(int)
>>> a, b = BinaryStats(), BinaryStats()
>>> a.update(s[:1000], y[:1000]); b.update(s[1000:], y[1000:]); a.merge(b)
>>> m = a.metrics(); m["n"], round(m["roc_auc"], 3), m["roc_auc_max_error"] < 0.002
(4000, 0.827, True)
"""

from __future__ import annotations

import math

import numpy as np

from driftline.detectors.performance import curves
from driftline.detectors.performance._common import (
    FORMAT,
    bin_index,
    binomial_se,
    chan,
    check_same,
    check_state,
    mean_se,
    moments,
    num,
    ratio,
    score_edges,
    valid_scores,
)

EPS = float(np.finfo(np.float64).eps)  # log loss clips probabilities to [EPS, 1 - EPS], as scikit-learn does
_LOSSES = ("log_loss", "brier")  # rows of the losses' moments: count, mean, centred sum of squares


class BinaryStats:
    """Confusion counts at ``threshold`` (positive when score ≥ threshold), per-class score
    histograms on :func:`score_edges` ``(bins)`` for ROC AUC and average precision, log-loss
    and Brier moments (count, mean, centred sum of squares, for the standard errors), and ``calibration_bins``
    equal-width bins (count, Σ score, Σ label) for the expected calibration error."""

    def __init__(self, threshold: float = 0.5, bins: int = 1000, calibration_bins: int = 15):
        if isinstance(threshold, bool) or not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if not isinstance(calibration_bins, int) or calibration_bins < 1:
            raise ValueError(f"calibration_bins must be a positive integer, got {calibration_bins!r}")
        self.threshold = float(threshold)
        self.bins = bins
        self.calibration_bins = calibration_bins
        self.edges = score_edges(bins)
        self._reset()

    def _reset(self) -> None:
        self.tp = self.fp = self.tn = self.fn = self.invalid = 0
        self._pos = np.zeros(self.edges.size - 1, dtype=np.int64)
        self._neg = np.zeros(self.edges.size - 1, dtype=np.int64)
        self._loss = np.zeros((len(_LOSSES), 3), dtype=np.float64)
        self._cal = np.zeros((3, self.calibration_bins), dtype=np.float64)  # count, Σ score, Σ label

    def update(self, scores, labels) -> None:
        """Add events; a score outside [0, 1] or not finite, or a label other than 0/1, is
        counted in ``invalid`` and left out."""
        s, ok = valid_scores(scores)
        y = np.asarray(labels).ravel()
        if y.shape != s.shape:
            raise ValueError(f"scores and labels differ in length: {s.size} and {y.size}")
        ok &= (y == 0) | (y == 1)
        self.invalid += int(s.size - np.count_nonzero(ok))
        s, y = s[ok], y[ok].astype(bool)
        pred = s >= self.threshold
        self.tp += int(np.count_nonzero(pred & y))
        self.fp += int(np.count_nonzero(pred & ~y))
        self.fn += int(np.count_nonzero(~pred & y))
        self.tn += int(np.count_nonzero(~pred & ~y))
        b = bin_index(self.edges, s)
        self._pos += np.bincount(b[y], minlength=self._pos.size)
        self._neg += np.bincount(b[~y], minlength=self._neg.size)
        self._add_losses(s, y)

    def _add_losses(self, s: np.ndarray, y: np.ndarray) -> None:
        c = np.clip(s, EPS, 1.0 - EPS)
        ll = -np.where(y, np.log(c), np.log1p(-c))
        self._loss = chan(self._loss, np.array([moments(ll), moments((s - y) ** 2)]))
        ci = np.minimum((s * self.calibration_bins).astype(np.int64), self.calibration_bins - 1)
        for row, w in enumerate((None, s, y.astype(np.float64))):
            self._cal[row] += np.bincount(ci, weights=w, minlength=self.calibration_bins)

    def merge(self, other: BinaryStats) -> None:
        """Add ``other``'s events (built with the same threshold and bins)."""
        check_same(self, other, ("threshold", "bins", "calibration_bins"))
        for f in ("tp", "fp", "tn", "fn", "invalid"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self._pos += other._pos
        self._neg += other._neg
        self._cal += other._cal
        self._loss = chan(self._loss, other._loss)

    def to_state(self) -> dict:
        return {"format": FORMAT, "kind": "binary", "threshold": self.threshold, "bins": self.bins,
                "calibration_bins": self.calibration_bins, "tp": self.tp, "fp": self.fp, "tn": self.tn,
                "fn": self.fn, "invalid": self.invalid, "pos": self._pos, "neg": self._neg,
                "calibration": self._cal, "losses": self._loss}

    @classmethod
    def from_state(cls, state: dict) -> BinaryStats:
        check_state(state, "binary")
        out = cls(state["threshold"], state["bins"], state["calibration_bins"])
        for f in ("tp", "fp", "tn", "fn", "invalid"):
            setattr(out, f, int(state[f]))
        out._pos = np.array(state["pos"], dtype=np.int64)
        out._neg = np.array(state["neg"], dtype=np.int64)
        out._cal = np.array(state["calibration"], dtype=np.float64).reshape(3, out.calibration_bins)
        if out._pos.shape != out._neg.shape or out._pos.size != out.edges.size - 1:
            raise ValueError(f"stored histograms do not have the {out.edges.size - 1} bins of bins={out.bins}")
        out._loss = np.array(state["losses"], dtype=np.float64).reshape(len(_LOSSES), 3)
        return out

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def ece(self) -> float | None:
        """Expected calibration error: Σ_b n_b/n · |mean score_b − positive rate_b|."""
        count, ssum, ysum = self._cal
        return num(np.abs(ssum - ysum).sum() / self.n) if self.n else None

    def metrics(self) -> dict:
        """Every metric, ``None`` where undefined, and ``se``: the standard error of each headline one."""
        n, tp, fp, fn = self.n, self.tp, self.fp, self.fn
        pos, pp = tp + fn, tp + fp
        auc = curves.roc_auc(self._pos, self._neg)
        ap = curves.average_precision(self._pos, self._neg)
        out = {"n": n, "invalid": self.invalid, "positives": pos, "negatives": n - pos, "threshold": self.threshold,
               "tp": tp, "fp": fp, "tn": self.tn, "fn": fn,
               "base_rate": ratio(pos, n), "predicted_positive_rate": ratio(pp, n),
               "accuracy": ratio(tp + self.tn, n), "precision": ratio(tp, pp), "recall": ratio(tp, pos),
               "specificity": ratio(self.tn, n - pos), "f1": ratio(2 * tp, 2 * tp + fp + fn),
               "roc_auc": auc["roc_auc"], "roc_auc_max_error": auc["max_error"],
               "average_precision": ap["average_precision"], "average_precision_max_error": ap["max_error"],
               "log_loss": num(self._loss[0, 1]) if n else None, "brier": num(self._loss[1, 1]) if n else None,
               "mean_score": ratio(self._cal[1].sum(), n), "ece": self.ece()}
        out["se"] = self._errors(out)
        return out

    def _errors(self, m: dict) -> dict:
        n, tp, fp, fn = m["n"], m["tp"], m["fp"], m["fn"]
        return {"accuracy": binomial_se(m["accuracy"], n), "precision": binomial_se(m["precision"], tp + fp),
                "recall": binomial_se(m["recall"], tp + fn), "specificity": binomial_se(m["specificity"], m["negatives"]),
                "f1": f1_se(tp, fp, fn), "base_rate": binomial_se(m["base_rate"], n),
                "predicted_positive_rate": binomial_se(m["predicted_positive_rate"], n),
                "roc_auc": curves.hanley_mcneil_se(m["roc_auc"], m["positives"], m["negatives"]),
                "log_loss": mean_se(self._loss[0]), "brier": mean_se(self._loss[1])}


def f1_se(tp: int, fp: int, fn: int) -> float | None:
    """F1 = 2x/(1+x) with x = tp/(tp+fp+fn), a binomial proportion of the events that are not
    true negatives; its standard error by the delta method."""
    m = tp + fp + fn
    if not m:
        return None
    x = tp / m
    return num(2.0 / (1.0 + x) ** 2 * math.sqrt(x * (1.0 - x) / m))
