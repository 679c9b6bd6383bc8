"""Multivariate drift: PCA reconstruction error over the standardised numeric features.

The reference fixes a mean and a spread per numeric feature and the principal
components that explain ``variance`` of the standardised data. A window's
statistic is the mean squared reconstruction error of its rows — what those
components cannot explain. When the features' relation changes (a correlation
breaks, as in a broken join or a swapped column) the error grows even if every
feature's own distribution is unchanged.

The test is one-sided and rank-based (Mann–Whitney): each row's error is placed
among the reference's own per-row errors (100 quantile bins), and the window's
mean rank is compared with one half. Reconstruction errors are sums of squares
of standardised, often heavy-tailed features, so their window mean is far from
normal in the tail where a per-test alpha of 1e-5 lives; a mean rank is bounded
and its normal approximation holds there. The reference's errors are measured
held out (five folds of consecutive rows), as new rows' errors will be. The window keeps the bin counts, a
count, a sum and a sum of squares, so it merges and its state is a few numbers; the rank's design
effect is measured on the reference in arrival order. :class:`Multivariate` is the
window test (``detectors/base.py``) the registry lists.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(20_000, 2)); x = np.c_[z[:, 0], 0.9 * z[:, 0] + 0.44 * z[:, 1], rng.normal(size=20_000)]
>>> pca = PCAProfile.build({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
>>> win = ReconstructionStats(pca); win.update(pca, {"a": x[:1000, 0], "b": -x[:1000, 1], "c": x[:1000, 2]})
>>> r = pca.test(win, alpha=1e-4); r.drifted, r.effect["error_ratio"] > 5
(True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from driftline.detectors.binning import bins_for
from driftline.detectors.calibrate import block_windows
from driftline.types import Columns, DriftResult, NumericColumn

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
    error_edges: list[float] | None = None  # interior edges of the reference errors' quantile bins
    error_counts: list[int] | None = None  # reference rows in each bin

    @classmethod
    def build(cls, columns: dict[str, np.ndarray], variance: float = 0.9,
              seed: int = 0, bins: int = 100) -> PCAProfile | None:
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
        err = _held_out_errors(z, k)
        prof.error_mean, prof.error_std = float(err.mean()), float(err.std())
        edges = np.unique(np.quantile(err, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, err, side="left"), minlength=edges.size + 1)
        prof.error_edges, prof.error_counts = edges.tolist(), counts.tolist()
        prof.deff = _mean_deff(prof.ranks()[np.searchsorted(edges, err, side="left")],
                               np.random.default_rng(seed))
        return prof

    def ranks(self) -> np.ndarray:
        """Each bin's mid-rank among the reference errors, in (0, 1)."""
        c = np.asarray(self.error_counts, dtype=np.float64)
        return (np.cumsum(c) - c / 2) / c.sum()

    def errors(self, z: np.ndarray) -> np.ndarray:
        p = np.asarray(self.components)
        with one_blas_thread():
            r = z - (z @ p.T) @ p
        r *= r  # in place: the same squares as ``** 2``, without another n × d array
        return r.sum(axis=1)

    def standardise(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Rows of the window, standardised; a missing value counts as the reference mean.
        (Whole-matrix operations, element by element the same as ``(x - mean) / std`` per column.)"""
        z = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in self.features])
        z -= np.asarray(self.mean)
        z /= np.asarray(self.std)
        z[~np.isfinite(z)] = 0.0
        return z

    def test(self, win: ReconstructionStats, alpha: float | None = None, threshold: float | None = None,
             warn_alpha: float | None = None) -> dict:
        """One-sided test that the window's errors are larger than the reference's.

        The statistic is the mean rank of the window's rows among the reference errors
        (0.5 when nothing changed), with ``threshold`` (fixed mode) on that rank."""
        m, n = win.count, self.n
        ratio = win.mean / self.error_mean if self.error_mean > 0 else None
        effect = {"error_ratio": ratio, "components": len(self.components), "features": len(self.features)}
        if self.error_counts is None or win.hist is None:  # a reference stored before ranks: mean error
            cur, centre, sd = win.mean, self.error_mean, self.error_std
        else:
            u, c = self.ranks(), np.asarray(self.error_counts) / self.n
            cur, centre, sd = float(u @ win.hist) / m, 0.5, float(np.sqrt(c @ (u - 0.5) ** 2))
        se = sd * np.sqrt((1 / m + 1 / n) * max(self.deff, 1.0))
        z = (cur - centre) / se if se > 0 else 0.0
        p = float(special.ndtr(-z))
        effect["z"] = float(z)
        base = {"method": METHOD, "statistic": float(cur), "p_value": p, "n_ref": n, "n_cur": m, "effect": effect,
                "reason": "relations between numeric features (PCA reconstruction error, "
                          "mean rank among the reference's errors, one-sided)"}
        if threshold is not None:
            level = "drift" if cur >= threshold else "ok"
            return DriftResult(**base, threshold=threshold, drifted=level == "drift", level=level, mode="fixed")
        thr = centre - se * special.ndtri(alpha)
        level = "drift" if p < alpha else ("warning" if warn_alpha and p < warn_alpha else "ok")
        warn = float(centre - se * special.ndtri(warn_alpha)) if warn_alpha else None
        return DriftResult(**base, threshold=float(thr), drifted=level == "drift", level=level, mode="calibrated",
                           warning_threshold=warn)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> PCAProfile | None:
        return cls(**d) if d else None


class ReconstructionStats:
    """Count, sum, sum of squares and reference-quantile bin counts of a window's
    per-row reconstruction errors."""

    def __init__(self, prof: PCAProfile | None = None) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0
        self.hist = None  # a reference stored before the rank test has no error bins
        if prof is not None and prof.error_edges is not None:
            self.hist = np.zeros(len(prof.error_edges) + 1, dtype=np.int64)

    def to_state(self) -> dict:
        return {"count": self.count, "total": self.total, "squares": self.squares, "hist": self.hist}

    @classmethod
    def from_state(cls, state: dict, prof: PCAProfile) -> ReconstructionStats:
        out = cls(prof)
        out.count, out.total, out.squares, out.hist = state["count"], state["total"], state["squares"], state["hist"]
        return out

    def update(self, prof: PCAProfile, columns: dict[str, np.ndarray]) -> None:
        err = prof.errors(prof.standardise(columns))
        self.count += err.size
        self.total += float(err.sum())
        self.squares += float((err * err).sum())
        if self.hist is not None:
            idx = bins_for(np.asarray(prof.error_edges)).index(err)  # = np.searchsorted(edges, err, "left")
            self.hist += np.bincount(idx, minlength=self.hist.size)

    def merge(self, other: ReconstructionStats) -> None:
        self.count += other.count
        self.total += other.total
        self.squares += other.squares
        if self.hist is not None and other.hist is not None:
            self.hist += other.hist
        else:
            self.hist = None

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class Multivariate:
    """The window test: the window's reconstruction statistics against the reference's PCA."""

    name = "multivariate"

    def __init__(self, pca: PCAProfile, stats: ReconstructionStats | None = None):
        self.pca = pca
        self.stats = stats if stats is not None else ReconstructionStats(pca)

    @classmethod
    def build(cls, profile, spec=None) -> Multivariate | None:
        pca = PCAProfile.from_dict(profile.multivariate)
        return cls(pca) if pca is not None else None

    def update(self, cols: Columns) -> None:
        self.stats.update(self.pca, rows(cols))

    def merge(self, other: Multivariate) -> None:
        self.stats.merge(other.stats)

    def result(self, ctx) -> DriftResult | None:
        if self.stats.count == 0:
            return None
        if ctx.alpha is None:
            return self.pca.test(self.stats, threshold=self.pca.error_mean * 1.5)
        return self.pca.test(self.stats, ctx.alpha, warn_alpha=ctx.warn_alpha)

    def to_state(self) -> dict:
        return self.stats.to_state()

    @classmethod
    def from_state(cls, state: dict, profile, spec=None) -> Multivariate:
        pca = PCAProfile.from_dict(profile.multivariate)
        return cls(pca, ReconstructionStats.from_state(state, pca))


_BLAS: list = []


def one_blas_thread():
    """A context in which BLAS (OpenBLAS under numpy) runs on the calling thread only.

    A window's projection (10,000 × 20 by 20 × 18) is big enough for OpenBLAS to share it
    with a worker thread, which then spin-waits for the next job: in ``benchmarks/cpu.py``
    that doubled the process's CPU time, on a core that pyarrow's reader, librdkafka and
    the broker need. On one thread the products are the same up to their summation order."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def rows(cols: Columns) -> dict:
    """A window's features as rows for a test of whole rows: NaN for a missing number."""
    return {k: np.where(c.valid, c.values, np.nan) if isinstance(c, NumericColumn) else c.values
            for k, c in cols.features.items()}


def _held_out_errors(z: np.ndarray, k: int, folds: int = 5) -> np.ndarray:
    """Each reference row's error under components fitted without its fold (consecutive
    rows). Errors of the rows the components were fitted on are too small — the fit
    chose the subspace that suits them — and new rows would look drifted by that alone."""
    err = np.empty(z.shape[0])
    for part in np.array_split(np.arange(z.shape[0]), folds):
        rest = np.ones(z.shape[0], dtype=bool)
        rest[part] = False
        p = np.linalg.svd(z[rest], full_matrices=False)[2][:k]
        err[part] = ((z[part] - (z[part] @ p.T) @ p) ** 2).sum(axis=1)
    return err


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
