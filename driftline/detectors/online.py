"""Online detectors from river, for what a single window cannot show.

- :class:`Trends` runs a Page–Hinkley test per numeric feature over the series
  of its windows' mean-shift z scores (already divided by the design effect), so
  a slow drift that no single window's test flags accumulates until it does. The
  parameters are in z units: it tolerates a sustained ``delta`` = 0.5 and fires
  when the accumulated excess reaches ``threshold`` = 25. On stationary z scores
  that is a one-sided CUSUM with k = 0.5, h = 25 in each direction, whose average
  run length is far beyond any service's life; the false-alarm budget of the
  window tests is not spent on it.
- :class:`PredictionADWIN` runs river's ADWIN (default parameters) on the
  prediction stream event by event (about 3 million updates a second here) and
  reports, per window, how often it cut its window and the mean it now holds.
  It is informational: ADWIN's false-alarm rate is not calibrated (see
  ``docs/benchmarks.md``), so it does not page on its own.

Both are sequential, so they are not mergeable; they live with the model
version in the monitor's checkpoint and pickle with it.

>>> import numpy as np
>>> t = Trends()
>>> zs = np.r_[np.random.default_rng(1).normal(size=40), np.linspace(0, 4, 30)]
>>> [i for i, z in enumerate(zs) if t.update({"x": z})]
[65]
"""

from __future__ import annotations

import numpy as np
from river.drift import ADWIN, PageHinkley

DELTA, THRESHOLD = 0.5, 25.0


class Trends:
    """A Page–Hinkley detector per feature over per-window z scores."""

    def __init__(self, delta: float = DELTA, threshold: float = THRESHOLD):
        if delta < 0 or threshold <= 0:
            raise ValueError(f"delta must be >= 0 and threshold > 0, got {delta}, {threshold}")
        self.delta = delta
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        self._detectors: dict[str, PageHinkley] = {}

    def _new(self) -> PageHinkley:
        return PageHinkley(min_instances=5, delta=self.delta, threshold=self.threshold, alpha=1.0, mode="both")

    def update(self, zs: dict[str, float], drifted: frozenset = frozenset()) -> list[str]:
        """Add one window's z score per feature; return the features whose trend fired.
        A feature in ``drifted`` (its window test already fired) starts over instead, so
        a trend is only ever news, and the return to normal after a drift is not one."""
        fired = []
        for name, z in zs.items():
            if name in drifted:
                self._detectors.pop(name, None)
                continue
            det = self._detectors.setdefault(name, self._new())
            det.update(float(z))
            if det.drift_detected:
                fired.append(name)
        return fired


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
