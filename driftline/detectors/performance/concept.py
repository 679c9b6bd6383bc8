"""Concept drift on the error stream: river's detectors, label by label, in label-arrival order.

:class:`ConceptDrift` watches one model version. Every joined label gives two signals:

- ``loss`` — the per-label loss, into river's ``ADWIN``: the Brier score ``(p − y)²`` for a
  binary model (in [0, 1], the range ADWIN's bound assumes; log loss is unbounded and one
  confident miss would dominate the window), the absolute error for a regression model,
  divided by a scale fixed on its first ``warmup`` labels (4 × their mean absolute error)
  and clipped to 1, so the bound means the same at any unit of the target;
- ``error`` — the error indicator, into river's ``HDDM_A`` (one-sided: an increase): a
  binary model's decision (``p ≥ threshold``) differs from the label; a regression error
  is larger than twice the warm-up's mean absolute error.

Both are sequential (not mergeable). A detection says which detector and signal fired,
at which label (its ``ts``, the window key of its prediction), the estimate before and
after the change (ADWIN: the mean of the part it dropped and of the part it kept;
HDDM_A: the mean up to its cut point and after it), ``direction`` (``worse``/``better``)
and how many labels the detector had seen since it last fired. The false-alarm rate on
stationary streams and the delay on real changes are measured by
``benchmarks/concept.py`` (docs/performance.md, "Concept drift on the error stream"),
which chose the defaults here.

State is plain data: ADWIN's buckets as river serializes them, HDDM_A's three running
means (count and mean each), the warm-up scale.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> p = rng.uniform(size=8000)
>>> y = (rng.uniform(size=8000) < p).astype(float)
>>> y[4000:] = 1.0 - y[4000:]                      # same scores, the relation to the label flips
>>> c = ConceptDrift("binary")
>>> c.update(p, y, np.arange(8000) // 1000, np.arange(8000))
>>> sorted({(d["signal"], d["window"], d["direction"]) for d in c.drain()})
[('error', 4, 'worse'), ('loss', 4, 'worse')]
>>> c2 = ConceptDrift.from_state(c.to_state()); c2.to_state() == c.to_state()
True
"""

from __future__ import annotations

import math

import numpy as np
from river.drift import ADWIN
from river.drift.binary import HDDMA
from river.stats import Mean

FORMAT = 1
TASKS = ("binary", "regression")
_ADWIN_PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")
#: regression: the loss is |e| / (SCALE × warm-up mean |e|), clipped to 1; an error is |e| > ERROR × that mean
_SCALE, _ERROR = 4.0, 2.0


class _Mean(Mean):
    """river's running mean with a cheap copy: HDDM_A copies its mean at every new cut point, and
    river's generic ``clone`` (signature inspection, deep copy) made that 60 % of its time."""

    def clone(self, new_params=None, include_attributes=False) -> _Mean:
        out = _Mean()
        out.n, out._mean = self.n, self._mean
        return out


class _HDDMA(HDDMA):
    """river's HDDM_A, unchanged but for :class:`_Mean` (the same detections, 2.5× faster)."""

    def _reset(self) -> None:
        super()._reset()
        self._x_min, self._x_max, self._z = _Mean(), _Mean(), _Mean()


def _mean_state(m: Mean) -> list[float]:
    return [float(m.n), float(m._mean)]


def _mean(state: list[float]) -> Mean:
    m = _Mean()
    m.n, m._mean = float(state[0]), float(state[1])
    return m


class ConceptDrift:
    """ADWIN on the per-label loss and HDDM_A on the error indicator, for one model version.

    ``delta``: ADWIN's confidence; ``drift_confidence``: HDDM_A's; ``grace_period``: labels
    ADWIN takes before it may cut; ``warmup``: regression labels that fix the error scale.
    """

    def __init__(self, task: str, threshold: float = 0.5, delta: float = 1e-5, drift_confidence: float = 1e-6,
                 grace_period: int = 1000, warmup: int = 500):
        if task not in TASKS:
            raise ValueError(f"task: {task!r} (expected one of {', '.join(TASKS)})")
        for name, value in (("delta", delta), ("drift_confidence", drift_confidence)):
            if not 0 < value < 1:
                raise ValueError(f"{name}: {value!r} (expected a number in (0, 1))")
        if grace_period < 1 or warmup < 1:
            raise ValueError(f"grace_period and warmup must be at least 1 (got {grace_period}, {warmup})")
        self.task, self.threshold, self.delta, self.drift_confidence = task, threshold, delta, drift_confidence
        self.grace_period, self.warmup = grace_period, warmup
        self._reset()

    def _reset(self) -> None:
        self._adwin = ADWIN(delta=self.delta, grace_period=self.grace_period)
        self._hddm = _HDDMA(drift_confidence=self.drift_confidence, warning_confidence=self.drift_confidence)
        self._seen = {"loss": 0, "error": 0}
        self._scale = Mean()  # regression: mean |e| of the warm-up labels
        self._found: list[dict] = []
        self._labels = 0  # labels given to the detectors

    @property
    def labels(self) -> int:
        """Labels taken since the start (the warm-up included)."""
        return int(self._scale.n) + self._labels

    # -- update -----------------------------------------------------------------------------

    def signals(self, preds: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-label loss in [0, 1] and error indicator (0/1) for a batch, NaN where not defined
        (regression during the warm-up, non-finite values)."""
        p, y = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if self.task == "binary":
                ok = np.isfinite(p) & (p >= 0) & (p <= 1) & ((y == 0) | (y == 1))
                loss = np.where(ok, (p - y) ** 2, np.nan)
                error = np.where(ok, ((p >= self.threshold) != (y == 1)).astype(np.float64), np.nan)
                return loss, error
            e = np.abs(p - y)
            return e, e  # regression: scaled per label in _regression (the scale may be set mid-batch)

    def update(self, preds: np.ndarray, labels: np.ndarray, windows: np.ndarray, label_ts: np.ndarray) -> None:
        """Take a batch of joined labels in arrival order (``windows``: each prediction's window
        key; ``label_ts``: each label's time, ms); detections go to :meth:`drain`."""
        loss, error = self.signals(preds, labels)
        wins, ts = np.asarray(windows).tolist(), np.asarray(label_ts).tolist()
        for i, (lo, er) in enumerate(zip(loss.tolist(), error.tolist())):
            if self.task == "regression":
                lo, er = self._regression(lo)
            if math.isnan(lo) or math.isnan(er):
                continue
            self._labels += 1
            self._step_adwin(lo, wins[i], ts[i])
            self._step_hddm(er, wins[i], ts[i])

    def _regression(self, abs_error: float) -> tuple[float, float]:
        if not math.isfinite(abs_error):
            return math.nan, math.nan
        if self._scale.n < self.warmup:
            self._scale.update(abs_error)
            return math.nan, math.nan
        m = self._scale.get()
        if m <= 0:  # a perfect warm-up: any error is one
            return (1.0 if abs_error > 0 else 0.0), float(abs_error > 0)
        return min(abs_error / (_SCALE * m), 1.0), float(abs_error > _ERROR * m)

    def _step_adwin(self, x: float, window, ts) -> None:
        a = self._adwin
        width, total = a._helper.get_width(), a._helper.get_total()  # river's, without its properties' cost
        a.update(x)
        self._seen["loss"] += 1
        if a.drift_detected:
            kept, after = a.width, a.estimation
            dropped = width + 1 - kept
            before = (total + x - kept * after) / dropped if dropped > 0 else total / max(width, 1)
            self._detect("adwin", "loss", window, ts, before, after)

    def _step_hddm(self, x: float, window, ts) -> None:
        h = self._hddm
        h.update(x)
        self._seen["error"] += 1
        if h.drift_detected:
            cut, z = h._x_min, h._z
            rest = z.n - cut.n
            after = (z.n * z.get() - cut.n * cut.get()) / rest if rest > 0 else z.get()
            self._detect("hddm_a", "error", window, ts, cut.get(), after)

    def _detect(self, detector: str, signal: str, window, ts, before: float, after: float) -> None:
        self._found.append({"kind": "concept_drift", "detector": detector, "signal": signal,
                            "window": int(window), "label_ts": int(ts), "before": float(before),
                            "after": float(after), "direction": "worse" if after > before else "better",
                            "labels_seen": self._seen[signal], "at": self._labels})
        self._seen[signal] = 0

    def drain(self) -> list[dict]:
        """The detections since the last call, in label order."""
        out, self._found = self._found, []
        return out

    # -- state ------------------------------------------------------------------------------

    def to_state(self) -> dict:
        a, h = self._adwin, self._hddm
        return {"format": FORMAT, "task": self.task, "threshold": self.threshold, "delta": self.delta,
                "drift_confidence": self.drift_confidence, "grace_period": self.grace_period,
                "warmup": self.warmup, "labels": self._labels, "seen": dict(self._seen),
                "scale": _mean_state(self._scale), "found": [dict(f) for f in self._found],
                "adwin": {"params": {k: getattr(a, k) for k in _ADWIN_PARAMS},
                          "drift_detected": bool(a._drift_detected), "window": a._helper.__getstate__()},
                "hddm": {"drift_detected": bool(h._drift_detected), "warning_detected": bool(h._warning_detected),
                         "x_min": _mean_state(h._x_min), "x_max": _mean_state(h._x_max), "z": _mean_state(h._z)}}

    @classmethod
    def from_state(cls, state: dict) -> ConceptDrift:
        if state.get("format") != FORMAT:
            raise ValueError(f"concept drift state: format {state.get('format')!r} (this release reads {FORMAT})")
        out = cls(state["task"], state["threshold"], state["delta"], state["drift_confidence"],
                  state["grace_period"], state["warmup"])
        out._labels, out._seen = int(state["labels"]), {k: int(v) for k, v in state["seen"].items()}
        out._scale, out._found = _mean(state["scale"]), [dict(f) for f in state["found"]]
        out._adwin = ADWIN(**state["adwin"]["params"])
        out._adwin._helper.__setstate__(state["adwin"]["window"])
        out._adwin._drift_detected = state["adwin"]["drift_detected"]
        h = state["hddm"]
        out._hddm._x_min, out._hddm._x_max, out._hddm._z = _mean(h["x_min"]), _mean(h["x_max"]), _mean(h["z"])
        out._hddm._drift_detected, out._hddm._warning_detected = h["drift_detected"], h["warning_detected"]
        return out
