"""Multivariate drift by a domain classifier: can an online learner tell the window from the reference?

A river logistic regression is trained, one row at a time, on a sample of the
reference's rows (label 0) and of the window's rows (label 1), shuffled
together. Each row is scored *before* the model learns it (progressive
validation), so every score is out of sample, and the score of the test is the
AUC of those scores: 0.5 when the window cannot be told apart from the
reference, 1.0 when it always can. Rows are encoded as the features
standardised by the reference, their squares (a change of spread), a missing
indicator, and one indicator per category, so the learner sees shifts, spread
changes and category changes of all features at once.

Under no change the labels are exchangeable, and the AUC's z score
(Mann–Whitney, ``sqrt((n0 + n1 + 1) / (12 n0 n1))``) is about standard normal.
Two things make it less so: rows of a time-ordered window resemble each other
more than random rows do, and the stored reference sample is the same for every
window, so whatever is peculiar to it is a shared offset. So when the reference
is built the same test is run ``NULL_REPLICATES`` times between the stored
sample (drawn from the reference's first half) and pseudo-windows made of runs
of consecutive rows of its second half, and
the mean square of their z scores (at least 1) divides the window's z squared,
like a design effect. The test is one-sided (a classifier
that does better than chance).

This test needs raw rows at rest — a sample of the reference's rows is stored
with the reference profile, and each open window keeps a sample of its rows
(a bottom-k sample on random keys, which merges exactly) in the checkpoint —
so it is off unless a model asks for it (``domain_classifier: {enabled: true}``).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"a": rng.normal(size=6000), "b": rng.normal(size=6000), "c": rng.choice(["x", "y"], 6000)}
>>> prof = DomainProfile.build(ref, {"a": "numeric", "b": "numeric", "c": "categorical"}, sample=500, window=1000)
>>> win = RowSample(prof, seed=1); win.update({"a": rng.normal(size=1000), "b": rng.normal(1, 1, size=1000),
...                                           "c": rng.choice(["x", "y"], 1000)})
>>> r = prof.test(win, alpha=1e-4); r.level, r.statistic > 0.7
('drift', True)
"""

from __future__ import annotations

import warnings

import numpy as np
from river import linear_model, optim
from scipy import special
from scipy.stats import rankdata

from driftline.detectors.calibrate import block_windows
from driftline.detectors.multivariate import rows
from driftline.types import Columns, DriftResult

METHOD = "domain_classifier"
NULL_REPLICATES = 40
WARMUP = 0.1  # the first tenth of the shuffled rows trains the learner without being scored


class DomainProfile:
    """A random sample of the reference's rows, how to encode them, and the null spread."""

    def __init__(self, numeric: list[str], categorical: list[str], mean: list[float], std: list[float],
                 rows_num: list, rows_cat: list, inflation: float = 1.0, n: int = 0):
        self.numeric, self.categorical = numeric, categorical
        self.mean, self.std = np.asarray(mean), np.asarray(std)
        self.rows_num = np.asarray(rows_num, dtype=np.float64).reshape(-1, len(numeric))
        self.rows_cat = np.asarray(rows_cat, dtype=object).reshape(-1, len(categorical))
        self.inflation = inflation
        self.n = n

    @property
    def size(self) -> int:
        return self.rows_num.shape[0]

    @classmethod
    def build(cls, columns: dict, kinds: dict[str, str], sample: int, window: int,
              seed: int = 0) -> DomainProfile | None:
        """From the raw reference columns in arrival order (NaN / None = missing); ``None``
        when the reference has fewer than 100 rows."""
        numeric = [k for k, kind in kinds.items() if kind == "numeric"]
        categorical = [k for k in kinds if k not in numeric]
        n = len(next(iter(columns.values())))
        if n < 100 or not kinds:
            return None
        num = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in numeric]) \
            if numeric else np.empty((n, 0))
        cat = np.empty((n, len(categorical)), dtype=object)
        for j, k in enumerate(categorical):
            cat[:, j] = [None if v is None else str(v) for v in columns[k]]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: mean 0, std 1
            mean, std = np.nan_to_num(np.nanmean(num, axis=0)), np.nan_to_num(np.nanstd(num, axis=0))
        std = np.where(std > 0, std, 1.0)
        rng = np.random.default_rng(seed)
        half = n // 2  # the sample from the first half, the null's pseudo-windows from the second
        pick = np.sort(rng.choice(half, min(sample, half), replace=False))
        prof = cls(numeric, categorical, mean.tolist(), std.tolist(), num[pick], cat[pick], 1.0, n)
        prof.inflation = prof._null_spread(num, cat, np.arange(half, n), window, rng)
        return prof

    def _null_spread(self, num: np.ndarray, cat: np.ndarray, rest: np.ndarray, m: int,
                     rng: np.random.Generator) -> float:
        """Mean square of the test's z when the stored sample meets pseudo-windows of ``m``
        rows of ``rest`` (the reference's second half; the sample is from its first), at
        least 1. A pseudo-window is made of runs of consecutive rows (a moving-block
        bootstrap, blocks of ``4 n^(1/3)``), so it has the stream's autocorrelation while
        there are many more of them than of disjoint windows. The stored sample is the same
        for every window, so whatever is peculiar to it is an offset all windows share, and
        meeting pseudo-windows of a later stretch puts that offset in the null as well."""
        m = min(m, self.size, rest.size)
        block = 4 * max(1, round(rest.size ** (1 / 3)))
        zs = [self._z(self.rows_num, self.rows_cat, num[a], cat[a], rng)[1]
              for a in rest[block_windows(rest.size, m, block, NULL_REPLICATES, rng)]]
        return max(1.0, float(np.mean(np.square(zs))))

    def _encode(self, num: np.ndarray, cat: np.ndarray) -> list[dict]:
        z = (num - self.mean) / self.std
        missing = ~np.isfinite(z)
        z = np.where(missing, 0.0, np.clip(z, -10, 10))
        rows = []
        for zr, mr, cr in zip(z.tolist(), missing.tolist(), cat.tolist()):
            x = {}
            for k, v, miss in zip(self.numeric, zr, mr):
                x[k] = v
                x[k + "²"] = v * v
                if miss:
                    x[k + " missing"] = 1.0
            for k, v in zip(self.categorical, cr):
                if v is not None:
                    x[f"{k}={v}"] = 1.0
            rows.append(x)
        return rows

    def _z(self, ref_num, ref_cat, cur_num, cur_cat, rng) -> tuple[float, float, int, int]:
        """(AUC, its z score, reference rows scored, window rows scored) of one run."""
        rows = self._encode(np.vstack([ref_num, cur_num]), np.vstack([ref_cat, cur_cat]))
        labels = np.r_[np.zeros(len(ref_num), dtype=bool), np.ones(len(cur_num), dtype=bool)]
        order = rng.permutation(len(rows))
        model = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
        scores = np.empty(len(rows))
        for i in order.tolist():
            scores[i] = model.predict_proba_one(rows[i]).get(True, 0.5)
            model.learn_one(rows[i], bool(labels[i]))
        scored = order[int(WARMUP * len(order)):]
        s, y = scores[scored], labels[scored]
        n1, n0 = int(y.sum()), int((~y).sum())
        if n0 == 0 or n1 == 0:
            return 0.5, 0.0, n0, n1
        ranks = rankdata(s)
        auc = (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n0 * n1)
        z = (auc - 0.5) / np.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
        return float(auc), float(z), n0, n1

    def test(self, win: RowSample, alpha: float | None = None, warn_alpha: float | None = None,
             threshold: float | None = None) -> dict:
        """Train and score on the reference sample and the window's; ``threshold`` (fixed
        mode) is on the AUC."""
        rng = np.random.default_rng(win.count)
        auc, z, n0, n1 = self._z(self.rows_num, self.rows_cat, win.num, win.cat, rng)
        z /= np.sqrt(self.inflation)
        p = float(special.ndtr(-z))
        base = {"method": METHOD, "statistic": auc, "p_value": p, "n_ref": n0, "n_cur": n1,
                "effect": {"auc": auc, "z": z, "null_inflation": self.inflation, "rows_in_window": win.count},
                "reason": "multivariate: an online logistic regression (river) told window rows from "
                          "reference rows; AUC of its progressive-validation scores"}
        if threshold is not None:
            level = "drift" if auc >= threshold else "ok"
            return DriftResult(**base, threshold=threshold, drifted=level == "drift", level=level, mode="fixed")
        scale = np.sqrt((n0 + n1 + 1) / (12 * max(n0, 1) * max(n1, 1)) * self.inflation)
        level = "drift" if p < alpha else ("warning" if warn_alpha and p < warn_alpha else "ok")
        warn = float(0.5 - scale * special.ndtri(warn_alpha)) if warn_alpha else None
        return DriftResult(**base, threshold=float(0.5 - scale * special.ndtri(alpha)), warning_threshold=warn,
                           drifted=level == "drift", level=level, mode="calibrated")

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "rows_num": np.where(np.isfinite(self.rows_num), self.rows_num,
                                                               None).tolist(),
                "rows_cat": self.rows_cat.tolist(), "inflation": self.inflation, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict | None) -> DomainProfile | None:
        if not d:
            return None
        num = np.asarray(d["rows_num"], dtype=object)
        num = np.where(num == None, np.nan, num).astype(np.float64)  # noqa: E711 (JSON null = missing)
        return cls(d["numeric"], d["categorical"], d["mean"], d["std"], num, d["rows_cat"], d["inflation"], d["n"])


class RowSample:
    """A uniform sample of at most ``size`` of a window's rows: each row gets a random key
    and the rows with the smallest keys are kept, so two samples merge into the sample of
    the whole."""

    def __init__(self, prof: DomainProfile, seed: int | None = None):
        self.size = prof.size
        self.numeric, self.categorical = prof.numeric, prof.categorical
        self.count = 0
        self.keys = np.empty(0)
        self.num = np.empty((0, len(prof.numeric)))
        self.cat = np.empty((0, len(prof.categorical)), dtype=object)
        self._rng = np.random.default_rng(seed)

    def update(self, columns: dict) -> None:
        """Add rows: ``columns`` maps every feature to its values (NaN / None = missing)."""
        n = len(next(iter(columns.values())))
        self.count += n
        num = (np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in self.numeric])
               if self.numeric else np.empty((n, 0)))
        cat = np.empty((n, len(self.categorical)), dtype=object)
        for j, k in enumerate(self.categorical):
            cat[:, j] = columns[k]  # raw values; encoded as text only for the rows kept, at test time
        self._keep(self._rng.random(n), num, cat)

    def merge(self, other: RowSample) -> None:
        self.count += other.count
        self._keep(other.keys, other.num, other.cat)

    def _keep(self, keys, num, cat) -> None:
        keys, num, cat = np.r_[self.keys, keys], np.vstack([self.num, num]), np.vstack([self.cat, cat])
        if keys.size > self.size:
            pick = np.argpartition(keys, self.size - 1)[:self.size]
            keys, num, cat = keys[pick], num[pick], cat[pick]
        self.keys, self.num, self.cat = keys, num, cat


    def to_state(self) -> dict:
        """The kept rows (categorical values as text or ``None``), their keys, and the
        random generator's position, so a restored sample draws the keys it would have."""
        return {"count": self.count, "keys": self.keys, "num": self.num, "cat": self.cat.tolist(),
                "rng": _rng_state(self._rng)}

    @classmethod
    def from_state(cls, state: dict, prof: DomainProfile) -> RowSample:
        out = cls(prof)
        out.count, out.keys, out.num = state["count"], state["keys"], state["num"].reshape(-1, len(prof.numeric))
        out.cat = np.empty((len(state["cat"]), len(prof.categorical)), dtype=object)
        if state["cat"]:
            out.cat[:] = state["cat"]
        out._rng.bit_generator.state = _rng_from(state["rng"])
        return out


def _rng_state(rng: np.random.Generator) -> dict:
    st = rng.bit_generator.state  # PCG64: 128-bit integers, kept as text
    return {"bit_generator": st["bit_generator"], "state": {k: str(v) for k, v in st["state"].items()},
            "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}


def _rng_from(state: dict) -> dict:
    return {**state, "state": {k: int(v) for k, v in state["state"].items()}}


class DomainClassifier:
    """The window test: a sample of the window's rows against the reference's sample."""

    name = "domain_classifier"

    def __init__(self, prof: DomainProfile, sample: RowSample | None = None):
        self.prof = prof
        self.sample = sample if sample is not None else RowSample(prof)

    @classmethod
    def build(cls, profile, spec=None) -> DomainClassifier | None:
        prof = DomainProfile.from_dict(profile.domain)
        return cls(prof) if prof is not None else None

    def update(self, cols: Columns) -> None:
        self.sample.update(rows(cols))

    def merge(self, other: DomainClassifier) -> None:
        self.sample.merge(other.sample)

    def result(self, ctx) -> DriftResult | None:
        if self.sample.count == 0:
            return None
        if ctx.alpha is None:
            return self.prof.test(self.sample, threshold=0.6)
        return self.prof.test(self.sample, ctx.alpha, ctx.warn_alpha)

    def to_state(self) -> dict:
        return self.sample.to_state()

    @classmethod
    def from_state(cls, state: dict, profile, spec=None) -> DomainClassifier:
        prof = DomainProfile.from_dict(profile.domain)
        return cls(prof, RowSample.from_state(state, prof))
