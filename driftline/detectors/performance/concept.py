"""Concept drift on the error stream: river's detectors' rules, label by label, in label-arrival order.

:class:`ConceptDrift` watches one model version. Every joined label gives two signals:

- ``loss`` — the per-label loss, into river's ``ADWIN``: the Brier score ``(p − y)²`` for a
  binary model (in [0, 1], the range ADWIN's bound assumes; log loss is unbounded and one
  confident miss would dominate the window), the absolute error for a regression model,
  divided by a scale fixed on its first ``warmup`` labels (4 × their mean absolute error)
  and clipped to 1, so the bound means the same at any unit of the target;
- ``error`` — the error indicator, into ``HDDM_A`` (river's rule over plain floats,
  :class:`HDDMA`; one-sided: an increase): a
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
from river.stats import Mean

FORMAT = 1
TASKS = ("binary", "regression")
_ADWIN_PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")
#: regression: the loss is |e| / (SCALE × warm-up mean |e|), clipped to 1; an error is |e| > ERROR × that mean
_SCALE, _ERROR = 4.0, 2.0


class HDDMA:
    """river's ``HDDM_A`` (``river.drift.binary.HDDMA``, one-sided), its update rule written out
    over plain floats for a batch: the same arithmetic in the same order, so the same cut points,
    warnings and detections bit for bit (``tests/unit/test_concept_exact.py`` checks it against
    river on random streams), without river's three ``Mean`` objects, their clones and its method
    calls per value (about 10× faster). Its state is river's: three running means (count, mean)
    and the two flags.

    >>> h = HDDMA(drift_confidence=1e-6, warning_confidence=1e-6)
    >>> [i for i, _, _ in h.update_many([0.0] * 2000 + [1.0] * 200)]
    [2007]
    """

    def __init__(self, drift_confidence: float = 0.001, warning_confidence: float = 0.005):
        for name, value in (("drift_confidence", drift_confidence), ("warning_confidence", warning_confidence)):
            if not 0 < value < 1:
                raise ValueError(f"{name}: {value!r} (expected a number in (0, 1))")
        self.drift_confidence, self.warning_confidence = drift_confidence, warning_confidence
        self._reset()

    def _reset(self) -> None:
        self.drift_detected = self.warning_detected = False
        self.z = [0.0, 0.0]  # the global mean: [n, mean]
        self.x_min = [0.0, 0.0]  # the cut point for an increase
        self.x_max = [0.0, 0.0]  # the cut point for a decrease (kept as river keeps it)

    def update_many(self, xs: list[float]) -> list[tuple[int, float, float]]:
        """Take the values in order; ``(position, mean before, mean after)`` of each detection
        (before: the mean up to the cut point; after: the mean since)."""
        found, sqrt = [], math.sqrt
        bound = math.log(1.0 / self.drift_confidence)  # river's _hoeffding_bound: sqrt(1 / (2n) × this)
        drift_log, warn_log = math.log(2.0 / self.drift_confidence), math.log(2.0 / self.warning_confidence)
        drift, warn = self.drift_detected, self.warning_detected
        (zn, zm), (an, am), (bn, bm) = self.z, self.x_min, self.x_max
        ea = sqrt(1.0 / (2 * an) * bound) if an else 0.0
        eb = sqrt(1.0 / (2 * bn) * bound) if bn else 0.0
        for i, x in enumerate(xs):
            if drift:  # river resets at the value after a detection
                zn = zm = an = am = bn = bm = 0.0
                drift = warn = False
            zn += 1.0
            zm += (1.0 / zn) * (x - zm)
            ez = sqrt(1.0 / (2 * zn) * bound)
            if an == 0:
                an, am, ea = zn, zm, ez
            if bn == 0:
                bn, bm, eb = zn, zm, ez
            if am + ea >= zm + ez:
                an, am, ea = zn, zm, ez
            if bm - eb <= zm - ez:
                bn, bm, eb = zn, zm, ez
            if an == zn:
                warn = False
                continue
            m = (zn - an) / an * (1.0 / zn)
            if zm - am >= sqrt(m / 2 * drift_log):
                drift, warn = True, False
                found.append((i, am, (zn * zm - an * am) / (zn - an)))
            else:
                warn = zm - am >= sqrt(m / 2 * warn_log)
        self.drift_detected, self.warning_detected = drift, warn
        self.z, self.x_min, self.x_max = [zn, zm], [an, am], [bn, bm]
        return found


def _adwin_many(adwin: ADWIN, xs: list[float]) -> list[tuple[int, float, float]]:
    """river's ``ADWIN.update`` for each value (reset after a detection, then its helper's update),
    without its property and method calls per value; ``(position, mean before, mean after)`` of
    each detection (before: the mean of the part it dropped; after: of the part it kept). Between
    resets the window only grows, so its width and total before a value are counted here (the
    helper adds the value to its total as one double addition: the same sum)."""
    found, helper, detected = [], adwin._helper, adwin._drift_detected
    width, total = (0, 0.0) if detected else (helper.get_width(), helper.get_total())
    for i, x in enumerate(xs):
        if detected:
            adwin._reset()
            helper, width, total = adwin._helper, 0, 0.0
        detected = helper.update(x)
        if detected:
            kept = helper.get_width()
            after = helper.get_total() / kept if kept else 0.0
            dropped = width + 1 - kept
            before = (total + x - kept * after) / dropped if dropped > 0 else total / max(width, 1)
            found.append((i, before, after))
        else:
            width += 1
            total += x
    if xs:
        adwin._drift_detected = bool(detected)
    return found


def _mean_state(m: Mean) -> list[float]:
    return [float(m.n), float(m._mean)]


def _mean(state: list[float]) -> Mean:
    m = Mean()
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
        self._hddm = HDDMA(drift_confidence=self.drift_confidence, warning_confidence=self.drift_confidence)
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
        (regression: the absolute error, before the warm-up's scale; non-finite values)."""
        p, y = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if self.task == "binary":
                ok = np.isfinite(p) & (p >= 0) & (p <= 1) & ((y == 0) | (y == 1))
                loss = np.where(ok, (p - y) ** 2, np.nan)
                error = np.where(ok, ((p >= self.threshold) != (y == 1)).astype(np.float64), np.nan)
                return loss, error
            e = np.abs(p - y)
            return e, e  # regression: scaled in _scaled (the scale may be set mid-batch)

    def update(self, preds: np.ndarray, labels: np.ndarray, windows: np.ndarray, label_ts: np.ndarray) -> None:
        """Take a batch of joined labels in arrival order (``windows``: each prediction's window
        key; ``label_ts``: each label's time, ms); detections go to :meth:`drain`."""
        loss, error = self.signals(preds, labels)
        if self.task == "regression":
            loss, error = self._scaled(loss)
        keep = np.flatnonzero(~(np.isnan(loss) | np.isnan(error)))
        if not keep.size:
            return
        found = [(i, 0, "adwin", "loss", b, a) for i, b, a in _adwin_many(self._adwin, loss[keep].tolist())]
        found += [(i, 1, "hddm_a", "error", b, a) for i, b, a in self._hddm.update_many(error[keep].tolist())]
        wins, ts = np.asarray(windows)[keep], np.asarray(label_ts)[keep]
        last = {"loss": -1, "error": -1}
        for i, _, detector, signal, before, after in sorted(found):  # label order, ADWIN first
            self._seen[signal] += i - last[signal]
            last[signal] = i
            self._detect(detector, signal, wins[i], ts[i], before, after, self._labels + i + 1)
        for signal, i in last.items():
            self._seen[signal] += keep.size - 1 - i
        self._labels += keep.size

    def _scaled(self, abs_error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Regression: the warm-up's labels fix the scale (and give no signal); after it the loss
        is ``|e| / (SCALE × m)`` clipped to 1 and the error ``|e| > ERROR × m``, NaN where ``|e|``
        is not finite."""
        loss = np.full(abs_error.shape, np.nan)
        finite = np.flatnonzero(np.isfinite(abs_error))
        k = 0
        values = abs_error[finite].tolist()
        while k < len(values) and self._scale.n < self.warmup:
            self._scale.update(values[k])
            k += 1
        error = loss.copy()
        if k == len(values):
            return loss, error
        rest, e = finite[k:], abs_error[finite[k:]]
        m = self._scale.get()
        if m <= 0:  # a perfect warm-up: any error is one
            loss[rest] = error[rest] = (e > 0).astype(np.float64)
        else:
            loss[rest] = np.minimum(e / (_SCALE * m), 1.0)
            error[rest] = (e > _ERROR * m).astype(np.float64)
        return loss, error

    def _detect(self, detector: str, signal: str, window, ts, before: float, after: float, at: int) -> None:
        self._found.append({"kind": "concept_drift", "detector": detector, "signal": signal,
                            "window": int(window), "label_ts": int(ts), "before": float(before),
                            "after": float(after), "direction": "worse" if after > before else "better",
                            "labels_seen": self._seen[signal], "at": at})
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
                "hddm": {"drift_detected": bool(h.drift_detected), "warning_detected": bool(h.warning_detected),
                         "x_min": [float(v) for v in h.x_min], "x_max": [float(v) for v in h.x_max],
                         "z": [float(v) for v in h.z]}}

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
        out._hddm.x_min, out._hddm.x_max, out._hddm.z = ([float(v) for v in h[k]] for k in ("x_min", "x_max", "z"))
        out._hddm.drift_detected, out._hddm.warning_detected = bool(h["drift_detected"]), bool(h["warning_detected"])
        return out
