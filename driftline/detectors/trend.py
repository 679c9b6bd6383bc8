"""Slow drift that no single window shows: the mean of the last windows, pooled.

A mean that moves by 0.08 of a standard deviation is invisible in one window
of 1,000 events at a per-test alpha of 1e-5 (its z is about 2.5), but the last
16 windows together hold 16,000 events and show it. For each numeric feature
:class:`Trend` keeps the count and mean of its last ``max(spans)`` tested
windows and, for each span L (4 and 16 by default), z-tests the mean of the
last L windows pooled against the reference mean:

    z = (pooled mean - reference mean) / (reference std * sqrt((1/n + 1/M) * deff))

with ``M`` the pooled count and ``deff`` the reference's design effect for the
mean. This is a two-sample z test like a window's own, so its p-value is exact
in the same sense; its false alarms are counted per window like every other
test's (``alpha`` per window and per feature, Bonferroni over the spans), so
it takes one share of the model's ``false_alarms`` budget. Because the
reference's own sampling error is in the denominator, a long run of windows
cannot turn the reference's noise into an alarm, which a CUSUM or river's
Page–Hinkley over per-window z scores does: they accumulate the reference's
offset without bound (Page–Hinkley, relative to its own running mean, also
absorbs a step before it reaches the threshold).

When the feature's own window test fires, its history starts over, so a trend
is news, and the windows of a past drift do not keep it firing afterwards.
It is sequential, so it is not mergeable; its state (the last windows' counts and
means per feature) is stored with the model version. :class:`TrendTest` is the
sequence test (``detectors/base.py``) the registry lists.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = Trend()
>>> ref = {"n": 10_000, "mean": 0.0, "std": 1.0}
>>> fired = [i for i in range(40)
...          if t.update("x", 1000, float(rng.normal(0.08 if i >= 20 else 0, 1, 1000).mean()), ref,
...                      alpha=1e-5).level == "drift"]
>>> fired[0] - 20 < 10, all(i >= 20 for i in fired)
(True, True)
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import special

from driftline.detectors.base import NotMergeable
from driftline.types import Columns, DriftResult

METHOD = "trend"
SPANS = (4, 16)


class Trend:
    """Per feature, the counts and means of its last tested windows."""

    def __init__(self, spans: tuple[int, ...] = SPANS):
        if not spans or min(spans) < 2:
            raise ValueError(f"trend spans must be at least 2 windows, got {spans}")
        self.spans = tuple(sorted(spans))
        self._history: dict[str, deque] = {}

    def reset(self, name: str) -> None:
        self._history.pop(name, None)

    def update(self, name: str, count: int, mean: float, ref: dict, alpha: float,
               warn_alpha: float | None = None, deff: float = 1.0) -> DriftResult:
        """Add one tested window of feature ``name`` and test every span that is full.

        ``ref`` holds the reference's ``n``, ``mean`` and ``std``. The result has the
        shape of a drift test's (``method``, ``statistic`` = |z| of the most significant
        span, ``p_value``, ``threshold`` in |z|, ``level``, ``n_ref``, ``n_cur`` = pooled
        count, ``effect`` with the span and the pooled mean shift in reference sds)."""
        hist = self._history.setdefault(name, deque(maxlen=self.spans[-1]))
        hist.append((int(count), float(mean)))
        k = len(self.spans)
        best = None
        all_counts, all_means = (np.array(col, dtype=np.float64) for col in zip(*hist))
        for span in self.spans:
            if len(hist) < span:
                continue
            counts, means = all_counts[-span:], all_means[-span:]
            pooled_n = float(counts.sum())
            if pooled_n == 0 or not ref["std"] > 0 or not ref["n"]:
                continue
            pooled = float(counts @ means / pooled_n)
            se = ref["std"] * np.sqrt((1 / ref["n"] + 1 / pooled_n) * max(deff, 1.0))
            z = (pooled - ref["mean"]) / se
            p = float(min(1.0, 2 * k * special.ndtr(-abs(z))))
            if best is None or p < best["p_value"]:
                best = {"span": span, "z": float(z), "p_value": p, "pooled_n": int(pooled_n),
                        "shift": (pooled - ref["mean"]) / ref["std"]}
        thr = float(-special.ndtri(alpha / (2 * k)))
        warn = float(-special.ndtri(warn_alpha / (2 * k))) if warn_alpha else None
        if best is None:
            return DriftResult(METHOD, 0.0, None, thr, False, int(ref["n"]), int(count), "ok", warn,
                               f"mean of the last {', '.join(map(str, self.spans))} windows pooled; "
                               f"{len(hist)} of {self.spans[0]} windows so far", "calibrated",
                               {"windows": len(hist), "needs": self.spans[0]})
        p = best["p_value"]
        level = "drift" if p < alpha else ("warning" if warn_alpha and p < warn_alpha else "ok")
        return DriftResult(METHOD, abs(best["z"]), p, thr, level == "drift", int(ref["n"]), best["pooled_n"], level,
                           warn, f"slow drift: mean of the last {', '.join(map(str, self.spans))} windows pooled "
                                 f"against the reference; calibrated: alpha {alpha:.2g} per test, "
                                 f"design effect {max(deff, 1.0):.2f}", "calibrated",
                           {"windows": best["span"], "mean_shift_sd": best["shift"], "z": best["z"]})

    def to_state(self) -> dict:
        return {"spans": list(self.spans),
                "history": {k: [list(x) for x in h] for k, h in self._history.items()}}

    @classmethod
    def from_state(cls, state: dict) -> Trend:
        out = cls(tuple(state["spans"]))
        out._history = {k: deque((tuple(x) for x in h), maxlen=out.spans[-1]) for k, h in state["history"].items()}
        return out


class TrendTest:
    """The sequence test: each numeric feature's trend over its tested windows, added
    to that feature's ``tests``; a feature whose own window test fired starts over."""

    name = "trend"
    per_feature = True

    def __init__(self, trend: Trend, features: list[str]):
        self.trend, self.features = trend, features

    @classmethod
    def build(cls, profile, spec) -> TrendTest | None:
        return cls(Trend(tuple(spec.trend_windows) or (2,)), list(spec.trend_features()))

    def update(self, cols: Columns) -> None:
        """It learns from windows' results, not from events."""

    def merge(self, other: TrendTest) -> None:
        raise NotMergeable("the trend test follows one model version's windows in order")

    def result(self, ctx) -> dict[str, DriftResult]:
        if not ctx.run_tests:
            return {}
        cal = (ctx.profile.calibration or {}).get("features", {})
        out = {}
        for name in self.features:
            f, prof = ctx.features.get(name), ctx.profile.features.get(name)
            if not f or not f.get("tests") or not f.get("count") or prof is None:
                continue
            if f["drift"]["drifted"]:
                self.trend.reset(name)
                continue
            deff = cal.get(name, {}).get("deff", {}).get("mean", 1.0)
            ref = {"n": prof.n, "mean": prof.mean, "std": prof.std}
            out[name] = self.trend.update(name, f["count"], f["mean"], ref, ctx.alpha, ctx.warn_alpha, deff)
        return out

    def to_state(self) -> dict:
        return self.trend.to_state()

    @classmethod
    def from_state(cls, state: dict, profile, spec) -> TrendTest:
        test = cls.build(profile, spec)
        saved = Trend.from_state(state)
        if saved.spans == test.trend.spans:  # spans changed in the configuration: start over
            test.trend = saved
        return test
