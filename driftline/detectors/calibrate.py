"""Thresholds derived from the reference for a false-alarm budget.

The user sets one target for a model, ``false_alarms: 1 per 1000 windows``.
Each of the model's ``n_tests`` tests gets ``alpha = rate / n_tests``
(Bonferroni over features, methods and checks), and a test reports drift when
its p-value falls below ``alpha``. Two things make those p-values honest on
real streams, and both are measured here, once, from the raw reference in the
order it arrived, and stored with the reference profile:

- **design effect** (autocorrelation). Windows of ``m`` events are resampled
  from the reference as runs of consecutive events (moving-block bootstrap,
  blocks of ``n^(1/3)`` and four times that), and the spread of their
  histograms, means and variances is compared with what independent events
  would give. A stream with AR(1) ρ = 0.5 has a design effect of about 3 for
  the mean: its windows wander three times as much as independent ones, and
  every test's effective sample size is divided by that.
- **Monte Carlo tails** for the distances that have no closed-form null
  (Wasserstein, total variation, L∞): their statistic scaled by the square
  root of the effective size is simulated from the reference's own bins, and
  past the 95th percentile an exponential tail is fitted, which is
  conservative for these light-tailed statistics.

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> e = rng.normal(size=20_000); x = np.empty_like(e); x[0] = e[0]
>>> for i in range(1, x.size): x[i] = 0.5 * x[i - 1] + e[i]
>>> d = design_effects(x, (x > 0).astype(np.int64), 2, 1000, rng)
>>> round(d["mean"]), round(d["cells"], 1)
(3, 2.2)
>>> parse_rate("1 per 1000 windows")
0.001
"""

from __future__ import annotations

import math
import re

import numpy as np

from driftline.detectors import distances as dist
from driftline.detectors.drift import METHODS, outer_cells
from driftline.detectors.profile import NumericProfile, ReferenceProfile, label

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:per|/|in)\s*(\d+(?:\.\d+)?)\s*windows?\s*$")
DEFF_REPLICATES = 300
DEFF_MAX_WINDOW = 20_000
MC_REPLICATES = 2_000
TAIL_Q0 = 0.05


def parse_rate(text: object) -> float:
    """``"1 per 1000 windows"`` → 0.001; a number is taken as the rate itself."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        rate = float(text)
    else:
        match = _RATE.match(str(text))
        if not match:
            raise ValueError(f"expected a rate like '1 per 1000 windows', got {text!r}")
        per = float(match.group(2))
        if per == 0:
            raise ValueError(f"a false-alarm rate needs a number of windows above 0, got {text!r}")
        rate = float(match.group(1)) / per
    if not 0 < rate < 1:
        raise ValueError(f"a false-alarm rate must be between 0 and 1 per window, got {text!r}")
    return rate


def block_windows(n: int, m: int, block: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Row ``i`` holds the positions of one resampled window of ``m`` events made
    of runs of ``block`` consecutive reference events."""
    block = max(1, min(block, n))
    k = math.ceil(m / block)
    starts = rng.integers(0, n - block + 1, size=(replicates, k))
    return (starts[:, :, None] + np.arange(block)).reshape(replicates, -1)[:, :m]


def design_effects(values: np.ndarray | None, codes: np.ndarray, bins: int, m: int,
                   rng: np.random.Generator) -> dict[str, float]:
    """Variance inflation of windows of ``m`` consecutive events over independent ones:
    ``cells``, the largest over the cells of ``codes`` (``bins`` of them) of a cell's
    share; ``cdf``, the largest over the cut points between cells of the cumulative share;
    given ``values``, ``mean`` (the larger of the mean's and the outer cells' share, the
    spread). Each is at least 1."""
    n = codes.size
    m = min(m, DEFF_MAX_WINDOW, n)
    out = {"cells": 1.0, "cdf": 1.0, "mean": 1.0}
    if n < 20 or m < 2:
        return out
    p = np.bincount(codes, minlength=bins) / n
    cells = (p * m >= 5) & (p < 1)  # a category that is every value has no variance to inflate
    cum = np.cumsum(p)[:-1]
    cuts = (cum * m >= 5) & ((1 - cum) * m >= 5)
    lo, hi = outer_cells(np.bincount(codes, minlength=bins)) if values is not None else (None, None)
    base = max(1, round(n ** (1 / 3)))
    for block in (base, 4 * base):
        pos = block_windows(n, m, block, DEFF_REPLICATES, rng)
        rows = np.repeat(np.arange(pos.shape[0]), m) * bins
        share = np.bincount(rows + codes[pos].ravel(), minlength=pos.shape[0] * bins).reshape(-1, bins) / m
        if cells.any():
            out["cells"] = max(out["cells"], float(np.max(m * share[:, cells].var(axis=0) /
                                                           (p[cells] * (1 - p[cells])))))
        if cuts.any():
            cs = np.cumsum(share, axis=1)[:, :-1][:, cuts]
            out["cdf"] = max(out["cdf"], float(np.max(m * cs.var(axis=0) / (cum[cuts] * (1 - cum[cuts])))))
        if values is not None and values.var() > 0:
            w = values[pos]
            var = values.var()
            out["mean"] = max(out["mean"], float(m * w.mean(axis=1).var() / var))
            outer = share[:, [lo, hi]].sum(axis=1) if lo is not None else None
            q = p[lo] + p[hi] if lo is not None else 0.0
            if outer is not None and 0 < q < 1:  # the spread: share in the outer cells
                out["mean"] = max(out["mean"], float(m * outer.var() / (q * (1 - q))))
    return out


def fit_tail(pivots: np.ndarray, q0: float = TAIL_Q0) -> dict:
    """Body quantiles below the ``1 - q0`` quantile and an exponential tail above it."""
    pivots = np.sort(pivots)
    u = float(np.quantile(pivots, 1 - q0))
    excess = pivots[pivots > u] - u
    beta = float(excess.mean()) if excess.size else max(u, 1e-9) * 0.1
    body = np.quantile(pivots, np.linspace(0, 1 - q0, 48, endpoint=False)).tolist()
    return {"u": u, "beta": max(beta, 1e-12), "q0": q0, "body": body}


def mc_tail(method: str, prof, m: int, rng: np.random.Generator) -> dict:
    """Simulate ``sqrt(N) * statistic`` for two independent samples of the reference's
    bins (``n`` and ``m`` events) and fit its tail."""
    n = prof.n
    p = prof.counts / prof.counts.sum()
    refs = rng.multinomial(n, p, size=MC_REPLICATES)
    curs = rng.multinomial(m, p, size=MC_REPLICATES)
    big_n = n * m / (n + m)
    if isinstance(prof, NumericProfile):
        atoms = np.divide(prof.sums, prof.counts, out=np.zeros(p.size), where=prof.counts > 0)
        scale = prof.std if prof.std > 0 else 1.0
        stats = [dist.wasserstein_binned(r, r * atoms, c, c * atoms) / scale for r, c in zip(refs, curs)]
    else:
        fn = dist.tvd if method == "tvd" else dist.linf
        stats = [fn(r, c) for r, c in zip(refs, curs)]
    return fit_tail(np.asarray(stats) * np.sqrt(big_n))


def codes_of(prof, column) -> tuple[np.ndarray | None, np.ndarray, int]:
    """(finite values, cell codes, number of cells) of a raw reference column: the coarse
    quantile bins of a numeric feature, the categories (and "other") of a categorical one."""
    if isinstance(prof, NumericProfile):
        x = np.asarray(column, dtype=np.float64)
        x = x[np.isfinite(x)]
        fine = np.searchsorted(prof.edges, x, side="left")
        return x, dist.coarse_groups(prof.counts)[fine], dist.COARSE_BINS
    other = len(prof.categories)
    labels = (label(v) for v in column)
    codes = np.fromiter((prof.index.get(v, other) for v in labels if v is not None), dtype=np.int64)
    return None, codes, other + 1


def calibrate(profile: ReferenceProfile, columns: dict, methods: dict[str, list[str]], window: int,
              rate: float, n_tests: int, seed: int = 0) -> dict:
    """Measure design effects and Monte Carlo tails for every feature of ``profile``
    (``columns`` are its raw reference columns in arrival order; ``methods`` maps a
    feature to the methods it is tested with) and return the calibration to store."""
    rng = np.random.default_rng(seed)
    feats = {}
    for name, prof in profile.features.items():
        if prof.n < 20:
            continue
        m = max(2, min(window, prof.n))
        values, codes, bins = codes_of(prof, columns[name])
        entry = {"deff": design_effects(values, codes, bins, m, rng)}
        entry["tails"] = {meth: mc_tail(meth, prof, m, rng)
                          for meth in methods.get(name, []) if METHODS[meth].null == "mc"}
        feats[name] = entry
    alpha = rate / max(n_tests, 1)
    return {"rate": rate, "n_tests": n_tests, "alpha": alpha, "warn_alpha": min(10 * alpha, 0.5),
            "window": window, "features": feats}
