"""ROC AUC and average precision from per-class score histograms, with how far each can be
from the value on the unbinned scores.

``pos[b]`` and ``neg[b]`` are the positives and negatives (counts, or expected masses for an
estimate) whose score fell in bin ``b``, bins in ascending order of score. Scores in one bin
are treated as tied; the exact curves differ only in the order of the scores *within* a
bin, so the error is bounded by what that order can change:

- ROC AUC: a positive-negative pair in the same bin counts ½; on the exact scores it counts 0
  or 1. Hence ``|AUC_bins − AUC_exact| ≤ ½ Σ_b pos[b]·neg[b] / (P·N)`` — at most half the
  largest share of either class that falls into a single bin.
- Average precision: the ``j``-th positive of bin ``b`` has a precision between the one with
  every negative of the bin ranked above it and the one with none; the sums of those
  extremes (closed form with the digamma function) bracket every within-bin order.

>>> import numpy as np
>>> pos, neg = np.array([0, 1, 3]), np.array([3, 1, 0])
>>> a = roc_auc(pos, neg); a["roc_auc"], a["max_error"]
(0.96875, 0.03125)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma

from driftline.detectors.performance._common import num


def roc_auc(pos: np.ndarray, neg: np.ndarray, self_pairs: float = 0.0) -> dict:
    """``{"roc_auc", "max_error"}``, both ``None`` without both classes. ``self_pairs`` is
    Σ p(1−p) for expected masses: an event is not a pair with itself."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    pairs = pos.sum() * neg.sum() - self_pairs
    if pos.sum() <= 0 or neg.sum() <= 0 or pairs <= 0:
        return {"roc_auc": None, "max_error": None}
    below = np.cumsum(neg) - neg
    ties = float(pos @ neg) - self_pairs
    wins = float(pos @ below)
    return {"roc_auc": num((wins + 0.5 * ties) / pairs), "max_error": num(0.5 * ties / pairs)}


def _best_sum(p: np.ndarray, tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Σ_{j=1..p} (tp+j)/(tp+fp+j): the precisions of ``p`` positives ranked in a row after
    ``tp`` positives and ``fp`` negatives."""
    c = tp + fp
    with np.errstate(invalid="ignore"):
        harmonic = np.where(fp > 0, digamma(c + p + 1) - digamma(c + 1), 0.0)
    return p - fp * harmonic


def average_precision(pos: np.ndarray, neg: np.ndarray) -> dict:
    """``{"average_precision", "max_error"}`` (the binned scores' AP, ties as one threshold, as
    scikit-learn counts them), ``None`` without positives."""
    pos, neg = np.asarray(pos, np.float64)[::-1], np.asarray(neg, np.float64)[::-1]
    total = pos.sum()
    if total <= 0:
        return {"average_precision": None, "max_error": None}
    tp_end, fp_end = np.cumsum(pos), np.cumsum(neg)
    tp0, fp0 = tp_end - pos, fp_end - neg
    hit = pos > 0
    ap = float(np.sum(pos[hit] * tp_end[hit] / (tp_end[hit] + fp_end[hit]))) / total
    hi = float(np.sum(_best_sum(pos[hit], tp0[hit], fp0[hit]))) / total
    lo = float(np.sum(_best_sum(pos[hit], tp0[hit], fp_end[hit]))) / total
    return {"average_precision": num(ap), "max_error": num(max(hi - ap, ap - lo, 0.0))}


def hanley_mcneil_se(auc: float | None, positives: float, negatives: float) -> float | None:
    """Standard error of a ROC AUC over ``positives`` and ``negatives`` (Hanley & McNeil, 1982);
    ``None`` with less than one of either (an estimate's expected counts can be)."""
    positives, negatives = float(positives), float(negatives)
    if auc is None or positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc))
    return num(math.sqrt(max(var, 0.0) / (positives * negatives)))
