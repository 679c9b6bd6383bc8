"""Mergeable confusion matrix of a multiclass classifier over ``classes`` class indexes (the
caller maps its top-K classes to 0..K−1 and may map the rest to one more "other" index).

>>> m = MulticlassStats(3); m.update([0, 1, 2, 2], [0, 1, 1, 2]); r = m.metrics()
>>> r["accuracy"], round(r["macro_f1"], 4), r["balanced_accuracy"]
(0.75, 0.7778, 0.8333333333333334)
"""

from __future__ import annotations

import numpy as np

from driftline.detectors.performance._common import FORMAT, binomial_se, check_same, check_state, num, ratio


class MulticlassStats:
    """``confusion[label, prediction]`` counts; accuracy, macro F1 and balanced accuracy (the
    mean recall) over the classes seen, as scikit-learn averages them."""

    def __init__(self, classes: int):
        if not isinstance(classes, int) or not 2 <= classes <= 1000:
            raise ValueError(f"classes must be an integer from 2 to 1000, got {classes!r}")
        self.classes = classes
        self._reset()

    def _reset(self) -> None:
        self.invalid = 0
        self.confusion = np.zeros((self.classes, self.classes), dtype=np.int64)

    def update(self, labels, predictions) -> None:
        """Add events; an index outside 0..classes−1 is counted in ``invalid``."""
        y, p = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
        if y.shape != p.shape:
            raise ValueError(f"labels and predictions differ in length: {y.size} and {p.size}")
        ok = (y >= 0) & (y < self.classes) & (p >= 0) & (p < self.classes) & (y == np.round(y)) & (p == np.round(p))
        self.invalid += int(y.size - np.count_nonzero(ok))
        cell = y[ok].astype(np.int64) * self.classes + p[ok].astype(np.int64)
        self.confusion += np.bincount(cell, minlength=self.classes ** 2).reshape(self.classes, self.classes)

    def merge(self, other: MulticlassStats) -> None:
        check_same(self, other, ("classes",))
        self.invalid += other.invalid
        self.confusion += other.confusion

    def to_state(self) -> dict:
        return {"format": FORMAT, "kind": "multiclass", "classes": self.classes, "invalid": self.invalid,
                "confusion": self.confusion}

    @classmethod
    def from_state(cls, state: dict) -> MulticlassStats:
        check_state(state, "multiclass")
        out = cls(int(state["classes"]))
        out.invalid = int(state["invalid"])
        out.confusion = np.array(state["confusion"], dtype=np.int64).reshape(out.classes, out.classes)
        return out

    def metrics(self) -> dict:
        c = self.confusion
        n, tp = int(c.sum()), np.diag(c).astype(np.float64)
        support, predicted = c.sum(axis=1), c.sum(axis=0)
        seen = (support + predicted) > 0
        f1 = 2 * tp[seen] / (support + predicted)[seen]
        acc = ratio(tp.sum(), n)
        return {"n": n, "invalid": self.invalid, "accuracy": acc,
                "macro_f1": num(f1.mean()) if f1.size else None,
                "balanced_accuracy": num((tp[support > 0] / support[support > 0]).mean()) if n else None,
                "support": support.tolist(), "predicted": predicted.tolist(),
                "se": {"accuracy": binomial_se(acc, n)}}
