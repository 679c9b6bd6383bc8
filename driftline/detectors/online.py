"""ADWIN from river on the prediction stream.

:class:`PredictionADWIN` runs river's ADWIN (default parameters) on the
prediction stream event by event (about 3 million updates a second here) and
reports, per window, how often it cut its window and the mean it now holds.
It is informational: ADWIN's false-alarm rate is not calibrated (at default
parameters it raised 82 false alarms per 1,000 stationary windows in
``make bench-quality``), so it does not page on its own. It is sequential, so
it is not mergeable; its state (river's own serialized buckets) is stored with
the model version. :class:`AdwinTest` is the sequence test the registry lists.

Slow drift over windows is :mod:`driftline.detectors.trend`'s pooled test, not
river's Page–Hinkley: over per-window z scores Page–Hinkley accumulates the
reference's own sampling error and, relative to its running mean, absorbs a step
before it fires (see that module).

>>> import numpy as np
>>> a = PredictionADWIN()
>>> a.update(np.r_[np.zeros(2000), np.ones(2000)]); r = a.get()
>>> r["detections"] >= 1, round(r["mean"], 1)
(True, 1.0)
>>> b = PredictionADWIN.from_state(a.to_state()); (b.width, b.mean) == (a.width, a.mean)
True
"""

from __future__ import annotations

import numpy as np
from river.drift import ADWIN

from driftline.detectors.base import NotMergeable
from driftline.types import Columns, NumericColumn

_PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")


class PredictionADWIN:
    """ADWIN over the prediction stream, one update per event."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._adwin = ADWIN()
        self.detections = 0

    def update(self, values: np.ndarray) -> None:
        # river's ADWIN.update (reset after a detection, then its helper's update), without
        # its property and method call per event: 2x faster, the same state
        adwin = self._adwin
        helper = adwin._helper
        for x in values.tolist():
            if adwin._drift_detected:
                adwin._reset()
                helper = adwin._helper
            detected = adwin._drift_detected = helper.update(x)
            if detected:
                self.detections += 1

    @property
    def width(self) -> int:
        return int(self._adwin.width)

    @property
    def mean(self) -> float:
        return float(self._adwin.estimation)

    def get(self) -> dict:
        """Detections since the last call, and ADWIN's current window."""
        out = {"method": "adwin", "detections": self.detections, "width": self.width, "mean": self.mean}
        self.detections = 0
        return out

    def to_state(self) -> dict:
        """river's parameters and clock, and its buckets as river serializes them."""
        a = self._adwin
        return {"detections": self.detections, "params": {k: getattr(a, k) for k in _PARAMS},
                "drift_detected": bool(a._drift_detected), "window": a._helper.__getstate__()}

    @classmethod
    def from_state(cls, state: dict) -> PredictionADWIN:
        out = cls()
        out.detections = state["detections"]
        out._adwin = ADWIN(**state["params"])
        out._adwin._helper.__setstate__(state["window"])
        out._adwin._drift_detected = state["drift_detected"]
        return out


class AdwinTest:
    """The sequence test on a numeric prediction: ADWIN over every event, read per window."""

    name = "prediction_adwin"
    per_feature = False

    def __init__(self, adwin: PredictionADWIN | None = None):
        self.adwin = adwin or PredictionADWIN()

    @classmethod
    def build(cls, profile, spec) -> AdwinTest | None:
        numeric = spec.prediction is not None and spec.prediction.kind == "numeric"
        return cls() if numeric else None

    def update(self, cols: Columns) -> None:
        pred = cols.features.get("prediction")
        if isinstance(pred, NumericColumn):
            self.adwin.update(pred.values[pred.valid])

    def merge(self, other: AdwinTest) -> None:
        raise NotMergeable("ADWIN follows one ordered stream of predictions")

    def result(self, ctx) -> dict:
        return self.adwin.get()

    def to_state(self) -> dict:
        return self.adwin.to_state()

    @classmethod
    def from_state(cls, state: dict, profile, spec) -> AdwinTest:
        return cls(PredictionADWIN.from_state(state))
