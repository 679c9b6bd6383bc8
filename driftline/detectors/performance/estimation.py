"""Estimated performance of a binary classifier before its labels arrive (confidence-based,
like NannyML's CBPE).

With ``p = calibrator(score)`` the probability that an event is positive, the label of each
event is taken as an independent Bernoulli(p). Then, at the decision threshold ``t`` on the
raw score, the expected confusion matrix is

    E[tp] = Σ p·1[s ≥ t]   E[fp] = Σ (1−p)·1[s ≥ t]   E[fn] = Σ p·1[s < t]   E[tn] = Σ (1−p)·1[s < t]

and the metrics are ratios of those expectations. The realised count of correct decisions
has the Poisson-binomial variance Σ p(1−p), which gives each metric's ``se`` (the band in
which the realised value should fall *if the calibration still holds*). The ROC AUC comes
from the expected positive and negative mass per score bin, as the realised one comes from
counts. It all holds as long as P(y | score) has not changed since the reference: under
concept drift the estimate stays put while the realised performance moves.

>>> import numpy as np
>>> from driftline.detectors.performance import BinaryStats
>>> rng = np.random.default_rng(0)
>>> s = rng.beta(2, 5, size=20_000); y = (rng.uniform(size=s.size) < s).astype(int)
>>> est = EstimatedStats(Calibrator(), threshold=0.3); est.update(s)
>>> real = BinaryStats(threshold=0.3); real.update(s, y)
>>> e, r = est.metrics(), real.metrics()
>>> round(e["accuracy"], 3), round(r["accuracy"], 3), round(e["roc_auc"], 3), round(r["roc_auc"], 3)
(0.663, 0.662, 0.719, 0.717)
"""

from __future__ import annotations

import math

import numpy as np

from driftline.detectors.performance import curves
from driftline.detectors.performance._common import (
    FORMAT,
    bin_index,
    binomial_se,
    check_same,
    check_state,
    num,
    ratio,
    score_edges,
    valid_scores,
)
from driftline.detectors.performance.binary import EPS
from driftline.detectors.performance.isotonic import Calibrator

_SUMS = ("brier", "log_loss", "brier_var", "log_loss_var")  # expected sums and their variances


class EstimatedStats:
    """Mergeable sums over scores only: per side of ``threshold`` the count, Σp and Σp(1−p),
    the expected positive and negative mass per bin of :func:`score_edges` ``(bins)``, and the
    expected Brier and log-loss sums with their variances."""

    def __init__(self, calibrator: Calibrator, threshold: float = 0.5, bins: int = 1000):
        if isinstance(threshold, bool) or not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.bins = bins
        self.edges = score_edges(bins)
        self._reset()

    def _reset(self) -> None:
        self.invalid = 0
        self._side = np.zeros((3, 2), dtype=np.float64)  # rows: count, Σp, Σp(1−p); columns: s < t, s ≥ t
        self._pos = np.zeros(self.edges.size - 1, dtype=np.float64)
        self._neg = np.zeros(self.edges.size - 1, dtype=np.float64)
        self._sums = dict.fromkeys(_SUMS, 0.0)

    @property
    def calibration(self) -> str:
        return self.calibrator.fingerprint()

    def update(self, scores) -> None:
        """Add scores; one outside [0, 1] or not finite is counted in ``invalid`` and left out."""
        s, ok = valid_scores(scores)
        self.invalid += int(s.size - np.count_nonzero(ok))
        s = s[ok]
        p = np.clip(self.calibrator(s), 0.0, 1.0)
        side = (s >= self.threshold).astype(np.int64)
        for row, w in enumerate((None, p, p * (1.0 - p))):
            self._side[row] += np.bincount(side, weights=w, minlength=2)
        b = bin_index(self.edges, s)
        self._pos += np.bincount(b, weights=p, minlength=self._pos.size)
        self._neg += np.bincount(b, weights=1.0 - p, minlength=self._neg.size)
        self._add_losses(s, p)

    def _add_losses(self, s: np.ndarray, p: np.ndarray) -> None:
        """An event's loss is one value if its label is 1, another if 0: mean and variance follow."""
        c = np.clip(s, EPS, 1.0 - EPS)
        v = p * (1.0 - p)
        for key, if_1, if_0 in (("brier", (1.0 - s) ** 2, s * s), ("log_loss", -np.log(c), -np.log1p(-c))):
            self._sums[key] += float(np.sum(p * if_1 + (1.0 - p) * if_0))
            self._sums[key + "_var"] += float(np.sum(v * (if_1 - if_0) ** 2))

    def merge(self, other: EstimatedStats) -> None:
        check_same(self, other, ("threshold", "bins", "calibration"))
        self.invalid += other.invalid
        self._side += other._side
        self._pos += other._pos
        self._neg += other._neg
        for key in _SUMS:
            self._sums[key] += other._sums[key]

    def to_state(self) -> dict:
        """The sums; the calibrator comes from the reference (its fingerprint is checked on restore)."""
        return {"format": FORMAT, "kind": "estimated", "threshold": self.threshold, "bins": self.bins,
                "calibration": self.calibration, "invalid": self.invalid, "side": self._side,
                "pos": self._pos, "neg": self._neg, **{k: self._sums[k] for k in _SUMS}}

    @classmethod
    def from_state(cls, state: dict, calibrator: Calibrator) -> EstimatedStats:
        check_state(state, "estimated")
        out = cls(calibrator, state["threshold"], state["bins"])
        if state["calibration"] != out.calibration:
            raise ValueError("the stored estimate was made with another calibrator "
                             f"({state['calibration']}, this one is {out.calibration})")
        out.invalid = int(state["invalid"])
        out._side = np.array(state["side"], dtype=np.float64).reshape(3, 2)
        out._pos, out._neg = np.array(state["pos"], np.float64), np.array(state["neg"], np.float64)
        if out._pos.shape != out._neg.shape or out._pos.size != out.edges.size - 1:
            raise ValueError(f"stored masses do not have the {out.edges.size - 1} bins of bins={out.bins}")
        out._sums = {k: float(state[k]) for k in _SUMS}
        return out

    @property
    def n(self) -> int:
        return int(round(self._side[0].sum()))

    def metrics(self) -> dict:
        """The estimated metrics under the names :class:`BinaryStats` uses, and their ``se``."""
        (n_neg, n_pp), (p_neg, p_pp), _ = self._side
        n = n_neg + n_pp
        tp, fp, fn, tn = p_pp, n_pp - p_pp, p_neg, n_neg - p_neg
        auc = curves.roc_auc(self._pos, self._neg, self_pairs=float(self._side[2].sum()))
        out = {"n": self.n, "invalid": self.invalid, "threshold": self.threshold, "calibration": self.calibrator.method,
               "tp": num(tp), "fp": num(fp), "tn": num(tn), "fn": num(fn),
               "positives": num(tp + fn), "negatives": num(n - tp - fn),
               "base_rate": ratio(tp + fn, n), "predicted_positive_rate": ratio(n_pp, n),
               "accuracy": ratio(tp + tn, n), "precision": ratio(tp, n_pp), "recall": ratio(tp, tp + fn),
               "specificity": ratio(tn, tn + fp), "f1": ratio(2 * tp, tp + fn + n_pp),
               "roc_auc": auc["roc_auc"], "roc_auc_max_error": auc["max_error"],
               "log_loss": ratio(self._sums["log_loss"], n), "brier": ratio(self._sums["brier"], n)}
        out["se"] = self._errors(out)
        return out

    def _errors(self, m: dict) -> dict:
        (n_neg, n_pp), (p_neg, p_pp), (v_neg, v_pp) = self._side
        n, tp, fn = n_neg + n_pp, p_pp, p_neg
        pos = tp + fn
        out = {"accuracy": _sqrt(v_neg + v_pp, n), "precision": _sqrt(v_pp, n_pp),
               "base_rate": _sqrt(v_neg + v_pp, n), "predicted_positive_rate": binomial_se(m["predicted_positive_rate"], n),
               "brier": _sqrt(self._sums["brier_var"], n), "log_loss": _sqrt(self._sums["log_loss_var"], n)}
        if pos > 0:
            r = tp / pos  # R = TP/(TP+FN), TP and FN independent sums
            out["recall"] = _sqrt((1 - r) ** 2 * v_pp + r * r * v_neg, pos)
            d = pos + n_pp  # F1 = 2 TP / (TP + FN + #predicted positive)
            out["f1"] = _sqrt((2 * (d - tp)) ** 2 * v_pp + (2 * tp) ** 2 * v_neg, d * d)
        neg = n - pos
        if neg > 0:  # specificity = TN/(TN+FP): the negatives' share, each with variance p(1−p)
            sp = m["specificity"]
            out["specificity"] = _sqrt(sp * sp * v_pp + (1 - sp) ** 2 * v_neg, neg)
        out["roc_auc"] = curves.hanley_mcneil_se(m["roc_auc"], pos, neg)
        # with under one expected positive (or negative) the delta method blows up: no value in
        # [0, 1] has a standard deviation above 0.5
        return {k: None if out.get(k) is None else min(out[k], 0.5) if k in _PROPORTIONS else out[k]
                for k in _PROPORTIONS + ("predicted_positive_rate", "brier", "log_loss")}


_PROPORTIONS = ("accuracy", "precision", "recall", "specificity", "f1", "base_rate", "roc_auc")


def _sqrt(var: float, denominator: float) -> float | None:
    """√var / denominator, ``None`` when the denominator is zero."""
    return num(math.sqrt(max(var, 0.0)) / denominator) if denominator > 0 else None
