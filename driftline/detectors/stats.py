"""Window statistics that can be updated, read and merged.

They are bounded in size (a histogram on the reference's bins, moments, and
the sketches of Apache DataSketches), their state is data (``to_state`` gives the
counts, the arrays and each sketch's own ``serialize()`` bytes; ``from_state``
rebuilds them on the reference's edges or categories), and merging the
statistics of two halves gives the statistics of the whole.

>>> import numpy as np
>>> from driftline.detectors.profile import NumericProfile
>>> rng = np.random.default_rng(1)
>>> prof = NumericProfile.build(rng.normal(size=5000), bins=20)
>>> a, b = NumericStats(prof.edges), NumericStats(prof.edges)
>>> x = rng.normal(size=1000)
>>> a.update(x[:400]); b.update(x[400:]); a.merge(b)
>>> round(a.mean, 6) == round(float(x.mean()), 6)
True
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from datasketches import frequent_items_error_type, frequent_strings_sketch, kll_doubles_sketch

from driftline.detectors.binning import bins_for

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_UNSEEN_LG_MAP = 7  # frequent-items sketch of at most 96 tracked values


class NumericStats:
    """Count, missing, invalid, mean, std, min, max, a histogram (counts and sums)
    on fixed edges, and a KLL quantile sketch (Apache DataSketches, ~1.3% rank error
    at k=200) for the quantiles."""

    def __init__(self, edges: np.ndarray, k: int = 200, bounds: tuple[float, float] | None = None):
        self.edges = edges
        self._bins = bins_for(edges)
        self.k = k
        self.bounds = bounds  # values outside are counted as out of range
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.missing = 0
        self.invalid = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.out_of_range = 0
        self.hist = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.sums = np.zeros(self.edges.size + 1, dtype=np.float64)
        self._sketch = kll_doubles_sketch(self.k)

    def update(self, values: np.ndarray, missing: int = 0, invalid: int = 0) -> None:
        """Add finite ``values``; ``missing``/``invalid`` are counted alongside."""
        self.missing += missing
        self.invalid += invalid
        n = values.size
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self._combine(n, mean, m2, float(values.min()), float(values.max()))
        idx = self._bins.index(values)  # = np.searchsorted(self.edges, values, side="left")
        self.hist += np.bincount(idx, minlength=self.hist.size)
        self.sums += np.bincount(idx, weights=values, minlength=self.hist.size)
        # sorted: the same values, the sketch's guarantee holds for any order, and its compactions
        # sort less (2.5x faster; on 300 log-normal windows of 10,000 the mean rank error of its
        # quantiles was 0.0015 against 0.0020 in arrival order)
        self._sketch.update(np.sort(values))
        if self.bounds is not None:
            self.out_of_range += int(np.count_nonzero((values < self.bounds[0]) | (values > self.bounds[1])))

    def _combine(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self._m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def merge(self, other: NumericStats) -> None:
        self.missing += other.missing
        self.invalid += other.invalid
        self.out_of_range += other.out_of_range
        if other.count:
            self._combine(other.count, other.mean, other._m2, other.min, other.max)
            self.hist += other.hist
            self.sums += other.sums
            self._sketch.merge(other._sketch)

    def to_state(self) -> dict:
        """What changes as values come (the edges, ``k`` and bounds come from the reference)."""
        return {"count": self.count, "missing": self.missing, "invalid": self.invalid, "mean": self.mean,
                "m2": self._m2, "min": self.min, "max": self.max, "out_of_range": self.out_of_range,
                "hist": self.hist, "sums": self.sums, "sketch": self._sketch.serialize()}

    @classmethod
    def from_state(cls, state: dict, edges: np.ndarray, k: int = 200,
                   bounds: tuple[float, float] | None = None) -> NumericStats:
        out = cls(edges, k, bounds)
        if state["hist"].size != out.hist.size:
            raise ValueError(f"stored histogram has {state['hist'].size} bins, the reference {out.hist.size}")
        out.count, out.missing, out.invalid = state["count"], state["missing"], state["invalid"]
        out.mean, out._m2, out.min, out.max = state["mean"], state["m2"], state["min"], state["max"]
        out.out_of_range, out.hist, out.sums = state["out_of_range"], state["hist"], state["sums"]
        out._sketch = kll_doubles_sketch.deserialize(state["sketch"])
        return out

    @property
    def std(self) -> float:
        return (self._m2 / self.count) ** 0.5 if self.count else 0.0

    def quantile(self, q: float) -> float:
        return float(self._sketch.get_quantile(q))

    def get(self) -> dict:
        out = {"kind": "numeric", "count": self.count, "missing": self.missing,
               "invalid": self.invalid}
        if self.count:
            out |= {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                    "out_of_range": self.out_of_range,
                    "quantiles": {str(q): self.quantile(q) for q in _QUANTILES}}
        return out


class CategoricalStats:
    """Counts over the reference's categories plus "other" (values outside the reference's
    top-K), and the commonest of those in a frequent-items sketch (Apache DataSketches,
    bounded, mergeable; an estimate over-counts by at most ``epsilon`` of the "other" total)."""

    def __init__(self, index: dict[str, int], kind: str = "categorical", known: frozenset | None = None):
        self.index = index
        self.kind = kind
        self.known = known  # every category of the reference; values outside are unseen
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.missing = 0
        self.invalid = 0
        self.hist = np.zeros(len(self.index) + 1, dtype=np.int64)
        self.unseen = frequent_strings_sketch(_UNSEEN_LG_MAP)  # the commonest values outside the top-K
        self.unseen_total = 0  # values the reference never had (when it kept them all)

    def to_state(self) -> dict:
        """What changes as values come (the categories come from the reference)."""
        return {"count": self.count, "missing": self.missing, "invalid": self.invalid, "hist": self.hist,
                "unseen": self.unseen.serialize(), "unseen_total": self.unseen_total}

    @classmethod
    def from_state(cls, state: dict, index: dict[str, int], kind: str = "categorical",
                   known: frozenset | None = None) -> CategoricalStats:
        out = cls(index, kind, known)
        if state["hist"].size != out.hist.size:
            raise ValueError(f"stored table has {state['hist'].size} categories, the reference {out.hist.size}")
        out.count, out.missing, out.invalid = state["count"], state["missing"], state["invalid"]
        out.hist, out.unseen_total = state["hist"], state["unseen_total"]
        out.unseen = frequent_strings_sketch.deserialize(state["unseen"])
        return out

    def update(self, counts: Counter | dict, missing: int = 0, invalid: int = 0) -> None:
        """Add a table of ``value -> count``."""
        self.missing += missing
        self.invalid += invalid
        other = len(self.index)
        for value, c in counts.items():
            i = self.index.get(value, other)
            self.hist[i] += c
            if i == other:
                self.unseen.update(str(value), int(c))
                if self.known is not None and value not in self.known:
                    self.unseen_total += c
            self.count += c

    def other_top(self, k: int = 5) -> dict[str, int]:
        """The commonest values outside the top-K, with estimated counts."""
        items = self.unseen.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {item: int(est) for item, est, _, _ in items[:k]}

    def merge(self, other: CategoricalStats) -> None:
        self.missing += other.missing
        self.invalid += other.invalid
        self.count += other.count
        self.hist += other.hist
        self.unseen_total += other.unseen_total
        self.unseen.merge(other.unseen)

    def get(self) -> dict:
        """Every category of the reference's top-K under ``top`` (commonest first, zeros
        included), so ``sum(top) + other == count`` and, with ``missing`` and ``invalid``,
        the window's event count."""
        names = sorted(self.index, key=self.index.get)
        order = np.argsort(-self.hist[:-1], kind="stable")
        return {"kind": self.kind, "count": self.count, "missing": self.missing,
                "invalid": self.invalid, "other": int(self.hist[-1]),
                "top": {names[i]: int(self.hist[i]) for i in order}, "unseen": self.unseen_total,
                "other_top": self.other_top(5)}
