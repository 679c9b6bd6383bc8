"""Mergeable sufficient statistics of a regression model's window.

The error is ``e = prediction − target`` (so ``bias > 0`` means over-prediction). For each
of the target ``y``, ``e``, ``|e|``, ``e²`` and ``|e|/|y|`` (over the targets that are not
zero: MAPE leaves ``y == 0`` out and counts it) the window keeps the count, the mean and
the centred sum of squares, merged by Chan's formula. That is the information in Σv and
Σv² — MAE, MSE, bias and MAPE are means, R² = 1 − n·mean(e²)/M2(y), the standard errors
need the variances — without the cancellation that Σv² − (Σv)²/n suffers on large values.

>>> import numpy as np
>>> y = np.array([1.0, 2.0, 4.0, 0.0]); p = np.array([1.5, 1.5, 5.0, 0.5])
>>> r = RegressionStats(); r.update(y, p); m = r.metrics()
>>> m["mae"], m["bias"], m["mape"], m["mape_excluded"]
(0.625, 0.375, 0.3333333333333333, 1)
"""

from __future__ import annotations

import math

import numpy as np

from driftline.detectors.performance._common import FORMAT, chan, check_same, check_state, mean_se, moments, num

_ROWS = ("y", "e", "abs", "sq", "ape")  # rows of the moments: count, mean, centred sum of squares


#: targets smaller than this in magnitude are left out of MAPE, like zero ones (``mape_excluded``)
NEAR_ZERO = 1e-12


class RegressionStats:
    """MAE, RMSE, MSE, MAPE, R² and bias of a window, and the standard errors of the first four
    and of the bias (of a mean; the RMSE's by the delta method from the MSE's)."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.invalid = 0
        self._moments = np.zeros((len(_ROWS), 3), dtype=np.float64)

    @property
    def n(self) -> int:
        return int(self._moments[0, 0])

    @property
    def mape_n(self) -> int:
        return int(self._moments[4, 0])

    def update(self, targets, predictions) -> None:
        """Add events; a pair with a non-finite value is counted in ``invalid`` and left out."""
        y = np.asarray(targets, dtype=np.float64).ravel()
        p = np.asarray(predictions, dtype=np.float64).ravel()
        if y.shape != p.shape:
            raise ValueError(f"targets and predictions differ in length: {y.size} and {p.size}")
        ok = np.isfinite(y) & np.isfinite(p)
        self.invalid += int(y.size - np.count_nonzero(ok))
        y, p = y[ok], p[ok]
        if not y.size:
            return
        e = p - y
        nz = np.abs(y) >= NEAR_ZERO  # a zero or near-zero target is left out of MAPE (its |e|/|y| is unbounded)
        with np.errstate(over="ignore", invalid="ignore"):
            ape = np.abs(e[nz]) / np.abs(y[nz])
            self._moments = chan(self._moments, np.array([moments(v) for v in (y, e, np.abs(e), e * e, ape)]))

    def merge(self, other: RegressionStats) -> None:
        check_same(self, other, ())
        self.invalid += other.invalid
        with np.errstate(over="ignore", invalid="ignore"):
            self._moments = chan(self._moments, other._moments)

    def to_state(self) -> dict:
        return {"format": FORMAT, "kind": "regression", "invalid": self.invalid, "moments": self._moments}

    @classmethod
    def from_state(cls, state: dict) -> RegressionStats:
        check_state(state, "regression")
        out = cls()
        out.invalid = int(state["invalid"])
        out._moments = np.array(state["moments"], dtype=np.float64).reshape(len(_ROWS), 3)
        return out

    def _mean(self, row: str) -> float | None:
        n, mean, _ = self._moments[_ROWS.index(row)]
        return num(mean) if n else None

    def _se(self, row: str) -> float | None:
        return mean_se(self._moments[_ROWS.index(row)])

    def metrics(self) -> dict:
        n, mse = self.n, self._mean("sq")
        _, y_mean, y_m2 = self._moments[0]
        varies = n and y_m2 > n * y_mean * y_mean * 1e-28  # above the rounding noise of a constant target
        rmse = num(math.sqrt(mse)) if mse is not None else None
        out = {"n": n, "invalid": self.invalid, "mae": self._mean("abs"), "mse": mse, "rmse": rmse,
               "bias": self._mean("e"), "mape": self._mean("ape"), "mape_excluded": n - self.mape_n,
               "r2": num(1.0 - n * mse / y_m2) if varies else None,
               "target_mean": self._mean("y"), "target_std": num(math.sqrt(y_m2 / n)) if n else None}
        mse_se = self._se("sq")
        out["se"] = {"mae": self._se("abs"), "bias": self._se("e"), "mse": mse_se,
                     "rmse": num(mse_se / (2.0 * rmse)) if mse_se is not None and rmse else None,
                     "mape": self._se("ape")}
        return out

