"""Model performance on the stream: pure computation, no I/O (see docs/performance.md).

Every statistic here is mergeable (``merge`` of two windows' statistics gives the
statistics of their union), updated with numpy arrays (``update``), and says what it
must remember as plain data (``to_state`` with a ``format`` and a ``kind``, and
``from_state``). ``metrics()`` returns a JSON-safe dict: an undefined metric is
``None``, never NaN, and ``se`` holds the standard error of each headline metric.

- :class:`BinaryStats` — a binary classifier with labels (score = P(positive)).
- :class:`MulticlassStats` — a confusion matrix over class indexes.
- :class:`RegressionStats` — a regression model with targets.
- :class:`Calibrator` and :class:`EstimatedStats` — estimated performance of a binary
  classifier before its labels arrive, calibrated on the labelled reference.
- :class:`DelayStats` — how late the labels come.
- :func:`compare` — is a window worse than the reference by more than its noise?

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> ref = BinaryStats(); ref.update(s := rng.uniform(size=5000), rng.uniform(size=5000) < s)
>>> win = BinaryStats(); win.update(s := rng.uniform(size=2000), rng.uniform(size=2000) < 0.5 + (s - 0.5) / 2)
>>> compare(win.metrics(), ref.metrics(), "roc_auc")["significant"]
True
"""

from driftline.detectors.performance.binary import BinaryStats
from driftline.detectors.performance.compare import compare
from driftline.detectors.performance.delay import DelayStats
from driftline.detectors.performance.estimation import EstimatedStats
from driftline.detectors.performance.isotonic import Calibrator
from driftline.detectors.performance.multiclass import MulticlassStats
from driftline.detectors.performance.regression import RegressionStats

__all__ = ["BinaryStats", "Calibrator", "DelayStats", "EstimatedStats", "MulticlassStats", "RegressionStats",
           "compare"]
