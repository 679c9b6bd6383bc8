"""Multivariate drift: PCA reconstruction error over the standardised numeric features.

The reference fixes a mean and a spread per numeric feature and the principal
components that explain ``variance`` of the standardised data. A window's
statistic is the mean squared reconstruction error of its rows — what those
components cannot explain. When the features' relation changes (a correlation
breaks, as in a broken join or a swapped column) the error grows even if every
feature's own distribution is unchanged. The window keeps only a count, a sum
and a sum of squares, so it merges and pickles; the threshold comes from the
reference's own per-row errors, their spread and their design effect.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(20_000, 2)); x = np.c_[z[:, 0], 0.9 * z[:, 0] + 0.44 * z[:, 1], rng.normal(size=20_000)]
>>> pca = PCAProfile.build({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
>>> win = ReconstructionStats(); win.update(pca, {"a": x[:1000, 0], "b": -x[:1000, 1], "c": x[:1000, 2]})
>>> r = pca.test(win, alpha=1e-4); r["drifted"], r["effect"]["error_ratio"] > 5
(True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from driftline.detectors.calibrate import block_windows

METHOD = "pca_reconstruction"


@dataclass
class PCAProfile:
    features: list[str]
    mean: list[float]
    std: list[float]
    components: list[list[float]]  # k rows of len(features)
    n: int
    error_mean: float
    error_std: float
    deff: float = 1.0

    @classmethod
    def build(cls, columns: dict[str, np.ndarray], variance: float = 0.9,
              seed: int = 0) -> PCAProfile | None:
        """From raw numeric reference columns (NaN = missing); ``None`` if fewer than two
        features vary or fewer than 50 rows are complete."""
        names = [k for k, v in columns.items() if _varies(np.asarray(v, dtype=np.float64))]
        if len(names) < 2:
            return None
        x = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in names])
        x = x[np.isfinite(x).all(axis=1)]
        if x.shape[0] < 50:
            return None
        mean, std = x.mean(axis=0), x.std(axis=0)
        z = (x - mean) / std
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        share = np.cumsum(s ** 2) / np.sum(s ** 2)
        k = int(min(np.searchsorted(share, variance) + 1, len(names) - 1))
        prof = cls(names, mean.tolist(), std.tolist(), vt[:k].tolist(), int(x.shape[0]), 0.0, 1.0)
        err = prof.errors(z)
        prof.error_mean, prof.error_std = float(err.mean()), float(err.std())
        prof.deff = _mean_deff(err, np.random.default_rng(seed))
        return prof

    def errors(self, z: np.ndarray) -> np.ndarray:
        p = np.asarray(self.components)
        return ((z - (z @ p.T) @ p) ** 2).sum(axis=1)

    def standardise(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Rows of the window, standardised; a missing value counts as the reference mean."""
        z = np.column_stack([(np.asarray(columns[k], dtype=np.float64) - m) / s
                             for k, m, s in zip(self.features, self.mean, self.std)])
        return np.where(np.isfinite(z), z, 0.0)

    def test(self, win: ReconstructionStats, alpha: float | None = None, threshold: float | None = None,
             warn_alpha: float | None = None) -> dict:
        """One-sided z test of the window's mean error against the reference's."""
        m, n = win.count, self.n
        se = self.error_std * np.sqrt((1 / m + 1 / n) * max(self.deff, 1.0))
        cur = win.mean
        z = (cur - self.error_mean) / se if se > 0 else 0.0
        p = float(special.ndtr(-z))
        effect = {"error_ratio": cur / self.error_mean if self.error_mean > 0 else None,
                  "components": len(self.components), "features": len(self.features), "z": float(z)}
        base = {"method": METHOD, "statistic": float(cur), "p_value": p, "n_ref": n, "n_cur": m,
                "effect": effect, "reason": "relations between numeric features (PCA reconstruction error)"}
        if threshold is not None:
            level = "drift" if cur >= threshold else "ok"
            return base | {"threshold": threshold, "drifted": level == "drift", "level": level,
                           "warning_threshold": None, "mode": "fixed"}
        thr = self.error_mean - se * special.ndtri(alpha)
        level = "drift" if p < alpha else ("warning" if warn_alpha and p < warn_alpha else "ok")
        return base | {"threshold": float(thr), "drifted": level == "drift", "level": level, "mode": "calibrated",
                       "warning_threshold": float(self.error_mean - se * special.ndtri(warn_alpha))
                       if warn_alpha else None}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> PCAProfile | None:
        return cls(**d) if d else None


class ReconstructionStats:
    """Count, sum and sum of squares of a window's per-row reconstruction errors."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0

    def update(self, prof: PCAProfile, columns: dict[str, np.ndarray]) -> None:
        err = prof.errors(prof.standardise(columns))
        self.count += err.size
        self.total += float(err.sum())
        self.squares += float((err * err).sum())

    def merge(self, other: ReconstructionStats) -> None:
        self.count += other.count
        self.total += other.total
        self.squares += other.squares

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


def _varies(x: np.ndarray) -> bool:
    x = x[np.isfinite(x)]
    return x.size > 1 and float(x.std()) > 0


def _mean_deff(err: np.ndarray, rng: np.random.Generator, m: int = 1000) -> float:
    m = min(m, err.size)
    var = err.var()
    if var == 0 or m < 2:
        return 1.0
    base = max(1, round(err.size ** (1 / 3)))
    return max([1.0] + [float(m * err[block_windows(err.size, m, b, 300, rng)].mean(axis=1).var() / var)
                        for b in (base, 4 * base)])
