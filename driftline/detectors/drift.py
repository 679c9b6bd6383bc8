"""Drift tests between a reference profile and a window's statistics.

The catalogue is the explicit dict :data:`METHODS`. Every test compares the
window with the reference on the reference's own bins (or moments) and returns
a :class:`DriftResult` naming the method, why it was used, the statistic, a
p-value where one exists, the thresholds, the level (``ok``, ``warning``,
``drift``) and both sample sizes. The method is the one configured; it never
changes with sample size.

A test runs in one of two modes:

- **fixed**: the threshold the user named (a p-value for the tests marked
  ``on_p``, a statistic otherwise), e.g. PSI 0.25 or p < 0.05;
- **calibrated**: drift when the p-value falls below ``alpha``, the share of
  the model's false-alarm budget given to this test (see
  :mod:`driftline.detectors.calibrate`). The p-value accounts for both sample
  sizes and for the reference's design effect (autocorrelation), and the
  reported threshold is the statistic that ``alpha`` corresponds to at this
  window's count, so time windows of any size get their own threshold.

>>> import numpy as np
>>> from driftline.detectors.profile import NumericProfile
>>> from driftline.detectors.stats import NumericStats
>>> rng = np.random.default_rng(7)
>>> ref = NumericProfile.build(rng.normal(size=50_000))
>>> win = NumericStats(ref.edges); win.update(rng.normal(0.5, 1, size=10_000))
>>> r = run_test(Plan("wasserstein", threshold=0.1), ref, win)
>>> r.method, round(r.statistic, 2), r.level
('wasserstein', 0.51, 'drift')
>>> r = run_test(Plan("meanvar", alpha=1e-5), ref, win)
>>> r.level, r.p_value < 1e-5, round(r.effect["mean_shift_sd"], 2)
('drift', True, 0.51)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps

from driftline.detectors import distances as dist
from driftline.detectors.profile import CategoricalProfile, NumericProfile, Profile
from driftline.types import DriftResult

LN2 = float(np.log(2))


@dataclass(frozen=True)
class Plan:
    """How one feature is tested: a method, and either a fixed ``threshold``
    (with an optional ``warning`` below it) or a calibrated ``alpha``."""

    method: str
    threshold: float | None = None
    warning: float | None = None
    alpha: float | None = None
    warn_alpha: float | None = None
    reason: str = "configured"


@dataclass(frozen=True)
class Method:
    """A catalogue entry: what it measures and how its null distribution is known.

    ``null`` is ``chi2`` (``pivot(stat, N)`` is asymptotically chi-square),
    ``ks`` (Kolmogorov), ``normal`` (the statistic is a z score), ``exact``
    (the test computes its own p-value) or ``mc`` (Monte Carlo tail fitted
    at calibration; no p-value in fixed mode).
    """

    kinds: tuple[str, ...]
    null: str
    fixed: float
    on_p: bool
    deff: str
    why: str
    measure: Callable


def _fine(prof, cur):
    return prof.counts, cur.hist


def _coarse(prof, cur):
    return dist.coarsen(prof.counts, cur.hist)


def _m_ks(prof, cur):
    return dist.ks_binned(*_fine(prof, cur)), None, {}


def _m_wasserstein(prof, cur):
    w = dist.wasserstein_binned(prof.counts, prof.sums, cur.hist, cur.sums)
    return (w / prof.std if prof.std > 0 else w), None, {}


def _binned(fn, coarse: bool):
    def measure(prof, cur):
        r, c = _coarse(prof, cur) if coarse and isinstance(prof, NumericProfile) else _fine(prof, cur)
        return fn(r, c), int((r > 0).sum()) - 1, {}
    return measure


def _m_chisquare(prof, cur):
    stat, _, dof = dist.chisquare(prof.counts, cur.hist)
    return stat, dof, {}


def _m_meanvar(prof, cur):
    """The larger of the mean's z and the spread's z. The spread is the share of values
    in the reference's outer deciles (below its 10th, above its 90th percentile), a
    two-proportion z: the sample variance of heavy-tailed data is itself so skewed that
    its normal approximation gave false alarms at alpha 1e-5, a share is bounded."""
    n, m = prof.n, cur.count
    inv = 1 / n + 1 / m
    sd = prof.std if prof.std > 0 else 1.0
    z_mean = (cur.mean - prof.mean) / (sd * np.sqrt(inv))
    r, c = _coarse(prof, cur)
    z_spread, outer_ref, outer_cur = 0.0, None, None
    lo, hi = outer_cells(r)
    if lo is not None and c.sum() > 0:
        a, b = r[lo] + r[hi], c[lo] + c[hi]
        outer_ref, outer_cur = float(a / r.sum()), float(b / c.sum())
        pooled = (a + b) / (r.sum() + c.sum())
        if 0 < pooled < 1:
            z_spread = (outer_cur - outer_ref) / np.sqrt(pooled * (1 - pooled) * (1 / r.sum() + 1 / c.sum()))
    effect = {"mean_shift_sd": (cur.mean - prof.mean) / sd,
              "std_ratio": cur.std / prof.std if prof.std > 0 else None,
              "outer_share_ref": outer_ref, "outer_share_cur": outer_cur,
              "z_mean": float(z_mean), "z_spread": float(z_spread)}
    return float(max(abs(z_mean), abs(z_spread))), None, effect


def outer_cells(ref_coarse: np.ndarray) -> tuple[int | None, int | None]:
    """The lowest and highest non-empty coarse cells, if there is a middle between them."""
    nz = np.flatnonzero(ref_coarse)
    return (int(nz[0]), int(nz[-1])) if nz.size >= 3 else (None, None)


def _binary(prof: CategoricalProfile, cur):
    a, b = int(prof.counts[0]), int(cur.hist[0])
    return a, prof.n - a, b, cur.count - b


def _m_z(prof, cur):
    a, a2, b, b2 = _binary(prof, cur)
    n, m = a + a2, b + b2
    pooled = (a + b) / (n + m)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m)) if 0 < pooled < 1 else 1.0
    return float(abs(b / m - a / n) / se), None, {"share_ref": a / n, "share_cur": b / m}


def _m_fisher(prof, cur):
    a, a2, b, b2 = _binary(prof, cur)
    odds, p = sps.fisher_exact([[a, a2], [b, b2]])
    return float(odds), None, {"p": float(p), "share_ref": a / (a + a2), "share_cur": b / max(b + b2, 1)}


NUM, CAT = ("numeric",), ("categorical", "boolean")
METHODS: dict[str, Method] = {
    "ks": Method(NUM, "ks", 0.05, True, "cdf", "any change in the distribution's shape", _m_ks),
    "wasserstein": Method(NUM, "mc", 0.1, False, "cdf",
                          "how far values moved, in reference standard deviations", _m_wasserstein),
    "psi": Method(NUM + CAT, "chi2", 0.25, False, "cells", "population stability index",
                  _binned(dist.psi, True)),
    "jensenshannon": Method(NUM + CAT, "chi2", 0.1, False, "cells", "bounded (0-1) divergence",
                            _binned(dist.jensenshannon, True)),
    "hellinger": Method(NUM + CAT, "chi2", 0.1, False, "cells", "bounded (0-1) distance",
                        _binned(dist.hellinger, True)),
    "meanvar": Method(NUM, "normal", 0.05, True, "mean", "shift of the mean or of the outer deciles' share", _m_meanvar),
    "chisquare": Method(CAT, "chi2", 0.05, True, "cells", "change in category frequencies", _m_chisquare),
    "tvd": Method(CAT, "mc", 0.1, False, "cells", "total share of records that changed category", _binned(dist.tvd, False)),
    "linf": Method(CAT, "mc", 0.1, False, "cells", "largest change of one category's share", _binned(dist.linf, False)),
    "z": Method(CAT, "normal", 0.05, True, "cells", "two-proportion z test on the commonest category", _m_z),
    "fisher": Method(CAT, "exact", 0.05, True, "cells", "Fisher's exact test on the commonest category", _m_fisher),
}
# The chi-square methods' pivots: statistic at sample size N -> asymptotically chi2(dof).
_PIVOT = {"chisquare": (lambda s, n: s, lambda t, n: t),  # X² has the sizes in it; scaled by 1/deff below
          "psi": (lambda s, n: n * s, lambda t, n: t / n),
          "jensenshannon": (lambda s, n: 8 * LN2 * n * s * s, lambda t, n: np.sqrt(t / (8 * LN2 * n))),
          "hellinger": (lambda s, n: 8 * n * s * s, lambda t, n: np.sqrt(t / (8 * n)))}


def methods_for(kind: str) -> list[str]:
    return [name for name, m in METHODS.items() if kind in m.kinds]


def lookup(method: str, kind: str) -> Method:
    """The catalogue entry; ``ValueError`` listing the valid methods for ``kind``."""
    if method not in METHODS or kind not in METHODS[method].kinds:
        raise ValueError(f"unknown drift method {method!r} for a {kind} feature "
                         f"(expected {', '.join(methods_for(kind))})")
    return METHODS[method]


def effective_n(prof: Profile, cur, deff: float = 1.0) -> float:
    """``n m / (n + m)`` divided by the design effect."""
    n, m = prof.n, cur.count
    return n * m / (n + m) / max(deff, 1.0)


def p_value(method: str, stat: float, dof: int | None, n_eff: float, tail: dict | None,
            chi_deff: float = 1.0) -> float | None:
    """The p-value of ``stat`` at effective size ``n_eff`` (``None`` if unknown);
    ``chi_deff`` is the design effect for ``chisquare``, whose statistic holds the raw sizes."""
    m = METHODS[method]
    if m.null == "chi2":
        return float(special.chdtrc(max(dof, 1), _PIVOT[method][0](stat, n_eff) / chi_deff))
    if m.null == "ks":
        return float(special.kolmogorov(stat * _ks_scale(n_eff)))
    if m.null == "normal":
        return float(min(1.0, (4 if method == "meanvar" else 2) * special.ndtr(-stat)))
    if m.null == "mc" and tail:
        return tail_p(tail, stat * np.sqrt(n_eff))
    return None


def stat_threshold(method: str, alpha: float, dof: int | None, n_eff: float, tail: dict | None,
                   chi_deff: float = 1.0) -> float:
    """The statistic whose p-value is ``alpha`` at effective size ``n_eff``."""
    m = METHODS[method]
    if m.null == "chi2":
        return float(_PIVOT[method][1](special.chdtri(max(dof, 1), alpha) * chi_deff, n_eff))
    if m.null == "ks":
        return float(special.kolmogi(alpha) / _ks_scale(n_eff))
    if m.null == "normal":
        return float(-special.ndtri(alpha / (4 if method == "meanvar" else 2)))
    if m.null == "mc" and tail:
        return float(tail_quantile(tail, alpha) / np.sqrt(n_eff))
    return alpha  # exact tests: the threshold is on the p-value itself


def _ks_scale(n_eff: float) -> float:
    """Stephens' small-sample correction of the asymptotic Kolmogorov distribution."""
    r = np.sqrt(max(n_eff, 1.0))
    return float(r + 0.12 + 0.11 / r)


def tail_p(tail: dict, pivot: float) -> float:
    """P(null pivot ≥ ``pivot``): the Monte Carlo body, an exponential tail past ``u``."""
    if pivot > tail["u"]:
        return float(tail["q0"] * np.exp(-(pivot - tail["u"]) / tail["beta"]))
    body = np.asarray(tail["body"])  # quantiles 0, 1/len, ..., of the null pivot below u
    return float(1 - (1 - tail["q0"]) * np.searchsorted(body, pivot, side="right") / body.size)


def tail_quantile(tail: dict, alpha: float) -> float:
    if alpha >= tail["q0"]:
        body = np.asarray(tail["body"])
        return float(body[min(int((1 - alpha) / (1 - tail["q0"]) * body.size), body.size - 1)])
    return float(tail["u"] + tail["beta"] * np.log(tail["q0"] / alpha))


def run_test(plan: Plan, prof: Profile, cur, calibration: dict | None = None) -> DriftResult:
    """Run ``plan`` on one feature; ``calibration`` is the feature's entry of the
    reference's calibration (design effects and Monte Carlo tails), if any."""
    m = lookup(plan.method, prof.kind if isinstance(prof, NumericProfile) else "categorical")
    stat, dof, effect = m.measure(prof, cur)
    cal = calibration or {}
    deff = cal.get("deff", {}).get(m.deff, 1.0)
    tail = cal.get("tails", {}).get(plan.method)
    n_eff = effective_n(prof, cur, deff)
    chi_deff = max(deff, 1.0) if plan.method == "chisquare" else 1.0
    if m.null == "normal":
        stat /= np.sqrt(max(deff, 1.0))
    p = effect.pop("p") if m.null == "exact" else p_value(plan.method, stat, dof, n_eff, tail, chi_deff)
    common = dict(method=plan.method, statistic=float(stat), p_value=p, n_ref=int(prof.n),
                  n_cur=int(cur.count), effect=effect)
    if plan.threshold is None and plan.alpha is not None and (m.null != "mc" or tail):
        thr = stat_threshold(plan.method, plan.alpha, dof, n_eff, tail, chi_deff)
        warn = stat_threshold(plan.method, plan.warn_alpha, dof, n_eff, tail, chi_deff) if plan.warn_alpha else None
        level = "drift" if p < plan.alpha else ("warning" if plan.warn_alpha and p < plan.warn_alpha else "ok")
        if m.null == "exact":
            thr, warn = plan.alpha, plan.warn_alpha
        why = f"calibrated: alpha {plan.alpha:.2g} per test, design effect {deff:.2f}"
        return DriftResult(**common, threshold=thr, drifted=level == "drift", level=level,
                           warning_threshold=warn, reason=f"{plan.reason}; {m.why}; {why}", mode="calibrated")
    thr = plan.threshold if plan.threshold is not None else m.fixed
    value = p if m.on_p else stat
    hit = (lambda t: value < t) if m.on_p else (lambda t: value >= t)
    level = "drift" if hit(thr) else ("warning" if plan.warning is not None and hit(plan.warning) else "ok")
    why = "fixed threshold" if plan.threshold is not None else "conventional threshold (no calibration stored)"
    return DriftResult(**common, threshold=float(thr), drifted=level == "drift", level=level,
                       warning_threshold=plan.warning, reason=f"{plan.reason}; {m.why}; {why}")
