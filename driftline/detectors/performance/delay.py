"""How late labels come: a mergeable histogram of delays in seconds on fixed log-spaced bins.

Bins run from 1 ms to 10⁸ s (over three years), 20 per decade, plus one bin for [0, 1 ms)
and one for longer delays. A quantile is placed in the bin holding that order statistic
(log-linear inside it, within the exact min and max), so it is off by less than one bin:
a factor of 10^(1/20) ≈ 1.122, i.e. under 12.2 %, or 1 ms below 1 ms. Negative delays
(a label stamped before its prediction: clock skew) are counted and taken as 0.

>>> d = DelayStats(); d.update([30.0, 60.0, 3600.0, 86400.0])
>>> m = d.metrics(); m["count"], m["max"], 55 < m["p50"] < 65
(4, 86400.0, True)
"""

from __future__ import annotations

import math

import numpy as np

from driftline.detectors.performance._common import FORMAT, check_same, check_state, num, ratio

PER_DECADE = 20
LOW, HIGH = -3, 8  # decades of seconds
EDGES = np.concatenate([[0.0], 10.0 ** (np.arange(LOW * PER_DECADE, HIGH * PER_DECADE + 1) / PER_DECADE)])
QUANTILES = (0.5, 0.9, 0.99)


class DelayStats:
    """Count, negative, invalid, Σ delay, min, max and the log-spaced histogram of delays."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.count = self.negative = self.invalid = 0
        self.total = 0.0
        self.min, self.max = math.inf, -math.inf
        self._hist = np.zeros(EDGES.size, dtype=np.int64)  # the last bin: longer than EDGES[-1]

    def update(self, delays) -> None:
        """Add delays in seconds; a non-finite one is counted in ``invalid``."""
        d = np.asarray(delays, dtype=np.float64).ravel()
        ok = np.isfinite(d)
        self.invalid += int(d.size - np.count_nonzero(ok))
        d = d[ok]
        if not d.size:
            return
        self.negative += int(np.count_nonzero(d < 0))
        d = np.maximum(d, 0.0)
        self.count += int(d.size)
        self.total += float(d.sum())
        self.min, self.max = min(self.min, float(d.min())), max(self.max, float(d.max()))
        self._hist += np.bincount(np.searchsorted(EDGES, d, side="right") - 1, minlength=EDGES.size)

    def merge(self, other: DelayStats) -> None:
        check_same(self, other, ())
        self.count += other.count
        self.negative += other.negative
        self.invalid += other.invalid
        self.total += other.total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self._hist += other._hist

    def to_state(self) -> dict:
        return {"format": FORMAT, "kind": "delay", "count": self.count, "negative": self.negative,
                "invalid": self.invalid, "total": self.total, "min": self.min, "max": self.max, "hist": self._hist}

    @classmethod
    def from_state(cls, state: dict) -> DelayStats:
        check_state(state, "delay")
        out = cls()
        out.count, out.negative, out.invalid = int(state["count"]), int(state["negative"]), int(state["invalid"])
        out.total, out.min, out.max = float(state["total"]), float(state["min"]), float(state["max"])
        out._hist = np.array(state["hist"], dtype=np.int64)
        if out._hist.size != EDGES.size:
            raise ValueError(f"stored delay histogram has {out._hist.size} bins, this release {EDGES.size}")
        return out

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (the ⌈q·n⌉-th smallest delay), to within one bin."""
        if not self.count:
            return None
        k = max(1, math.ceil(q * self.count))
        cum = np.cumsum(self._hist)
        b = int(np.searchsorted(cum, k))
        lo = EDGES[b]
        hi = EDGES[b + 1] if b + 1 < EDGES.size else self.max
        frac = (k - (cum[b] - self._hist[b]) - 0.5) / self._hist[b]
        value = lo + frac * (hi - lo) if lo == 0.0 else lo * (hi / lo) ** frac
        return float(min(max(value, self.min, lo), self.max))

    def metrics(self) -> dict:
        out = {"count": self.count, "negative": self.negative, "invalid": self.invalid,
               "mean": ratio(self.total, self.count), "min": num(self.min), "max": num(self.max)}
        return out | {f"p{round(q * 100)}": self.quantile(q) for q in QUANTILES}
