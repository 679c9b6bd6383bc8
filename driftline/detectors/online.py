"""ADWIN from river on the prediction stream.

:class:`PredictionADWIN` runs river's ADWIN (default parameters) on the
prediction stream event by event (about 3 million updates a second here) and
reports, per window, how often it cut its window and the mean it now holds.
It is informational: ADWIN's false-alarm rate is not calibrated (at default
parameters it raised 82 false alarms per 1,000 stationary windows in
``make bench-quality``), so it does not page on its own. It is sequential, so
it is not mergeable; it lives with the model version in the monitor's
checkpoint and pickles with it.

Slow drift over windows is :mod:`driftline.detectors.trend`'s pooled test, not
river's Page–Hinkley: over per-window z scores Page–Hinkley accumulates the
reference's own sampling error and, relative to its running mean, absorbs a step
before it fires (see that module).

>>> import numpy as np
>>> a = PredictionADWIN()
>>> a.update(np.r_[np.zeros(2000), np.ones(2000)]); r = a.get()
>>> r["detections"] >= 1, round(r["mean"], 1)
(True, 1.0)
"""

from __future__ import annotations

import numpy as np
from river.drift import ADWIN


class Trends:
    """Page–Hinkley per feature, used before the pooled trend test; kept only so that
    checkpoints written then still load (the monitor no longer reads it)."""


class PredictionADWIN:
    """ADWIN over the prediction stream, one update per event."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._adwin = ADWIN()
        self.detections = 0

    def update(self, values: np.ndarray) -> None:
        adwin = self._adwin
        for x in values.tolist():
            adwin.update(x)
            if adwin.drift_detected:
                self.detections += 1

    def get(self) -> dict:
        """Detections since the last call, and ADWIN's current window."""
        out = {"method": "adwin", "detections": self.detections, "width": int(self._adwin.width),
               "mean": float(self._adwin.estimation)}
        self.detections = 0
        return out
