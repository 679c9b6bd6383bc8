"""Calibration of a binary classifier's scores on a labelled reference: isotonic regression
(pool-adjacent-violators, numpy only), used only when it beats the identity out of sample.

The calibrator is chosen by k-fold cross-validation: every reference event gets an
out-of-fold isotonic prediction, and the paired difference of Brier scores (isotonic minus
identity) is averaged. Isotonic is kept only when that mean is below zero by more than
``min_z`` of its standard error; otherwise the scores are taken as calibrated (identity).
The choice and its evidence are part of the state.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> q = rng.uniform(size=5000); y = (rng.uniform(size=5000) < q).astype(int)
>>> Calibrator.fit(q, y).method                # already calibrated
'identity'
>>> Calibrator.fit(q ** 3, y).method           # too low everywhere
'isotonic'
"""

from __future__ import annotations

import hashlib

import numpy as np

from driftline.detectors.performance._common import FORMAT, check_state, num, valid_scores


def pav(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares (pool adjacent
    violators: a block that is above its successor merges with it into their weighted mean)."""
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for v, wt in zip(y.tolist(), w.tolist()):
        size = 1
        while values and values[-1] >= v:
            pw = weights.pop()
            v = (values.pop() * pw + v * wt) / (pw + wt)
            wt += pw
            size += sizes.pop()
        values.append(v)
        weights.append(wt)
        sizes.append(size)
    return np.repeat(values, sizes)


def isotonic_knots(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the isotonic fit of ``y`` on ``x``: ties in ``x`` are averaged first, and only
    the ends of each constant block are kept (linear interpolation between them, clipped
    outside, is the fitted function — scikit-learn's ``IsotonicRegression`` predicts the same)."""
    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    mean = np.bincount(inverse, weights=y) / counts
    fit = pav(mean, counts.astype(np.float64))
    keep = np.ones(fit.size, dtype=bool)
    keep[1:-1] = (fit[1:-1] != fit[:-2]) | (fit[1:-1] != fit[2:])
    return ux[keep], fit[keep]


class Calibrator:
    """A monotone map from score to probability of the positive class: ``"identity"`` or
    ``"isotonic"`` (knots ``x`` → ``y``). ``evidence`` says why it was chosen."""

    def __init__(self, method: str = "identity", x=(), y=(), evidence: dict | None = None):
        if method not in ("identity", "isotonic"):
            raise ValueError(f"method must be 'identity' or 'isotonic', got {method!r}")
        self.method = method
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        if method == "isotonic" and (self.x.size == 0 or self.x.shape != self.y.shape):
            raise ValueError("an isotonic calibrator needs knots x and y of the same, non-zero length")
        self.evidence = evidence or {}

    def __call__(self, scores) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        return np.interp(s, self.x, self.y) if self.method == "isotonic" else s

    @classmethod
    def fit(cls, scores, labels, folds: int = 5, min_z: float = 2.0, seed: int = 0) -> Calibrator:
        """Isotonic when it improves the cross-validated Brier score beyond its noise, else identity."""
        s, ok = valid_scores(scores)
        y = np.asarray(labels).ravel()
        if y.shape != s.shape:
            raise ValueError(f"scores and labels differ in length: {s.size} and {y.size}")
        ok &= (y == 0) | (y == 1)
        s, y = s[ok], y[ok].astype(np.float64)
        if s.size < 2 * folds or np.unique(y).size < 2:
            return cls(evidence={"n": int(s.size), "reason": "too few events or one class only"})
        oof = _out_of_fold(s, y, folds, np.random.default_rng(seed))
        d = (oof - y) ** 2 - (s - y) ** 2
        se = float(d.std(ddof=1) / np.sqrt(d.size))
        z = float(-d.mean() / se) if se > 0 else 0.0
        evidence = {"n": int(s.size), "folds": folds, "brier_identity": float(((s - y) ** 2).mean()),
                    "brier_isotonic": float(((oof - y) ** 2).mean()), "improvement_z": num(z), "min_z": min_z}
        if z <= min_z:
            return cls(evidence=evidence)
        return cls("isotonic", *isotonic_knots(s, y), evidence=evidence)

    def fingerprint(self) -> str:
        """Identifies the map: statistics estimated with different calibrators do not merge."""
        h = hashlib.sha256(self.method.encode())
        h.update(self.x.tobytes())
        h.update(self.y.tobytes())
        return h.hexdigest()[:16]

    def to_state(self) -> dict:
        return {"format": FORMAT, "kind": "calibrator", "method": self.method, "x": self.x, "y": self.y,
                "evidence": dict(self.evidence)}

    @classmethod
    def from_state(cls, state: dict) -> Calibrator:
        check_state(state, "calibrator")
        return cls(state["method"], state["x"], state["y"], state.get("evidence"))


def _out_of_fold(s: np.ndarray, y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    fold = rng.permutation(s.size) % folds
    out = np.empty_like(s)
    for k in range(folds):
        test = fold == k
        kx, ky = isotonic_knots(s[~test], y[~test])
        out[test] = np.interp(s[test], kx, ky)
    return out
