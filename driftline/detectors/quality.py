"""Data-quality findings for one window, each against the reference.

Every check is a test with the model's per-test ``alpha``, so quality findings
share the false-alarm budget with the drift tests:

- ``missing_rate``: the share of missing values changed (two-proportion z test,
  and by at least ``MIN_MISSING_CHANGE``); ``absent`` when a field the reference
  had is missing from every record of the window;
- ``wrong_type``: values of the wrong type, NaN or infinity (any is a finding);
- ``out_of_range``: values outside the reference's range widened by ``RANGE_MARGIN``
  of it on each side. For exchangeable data a new value falls outside the range of
  ``n`` reference values with probability at most ``2 / (n + 1)``, so the count is
  tested against a Poisson bound that holds whatever the distribution;
- ``unseen_categories``: values the reference never had, tested against Good–Turing's
  estimate of unseen mass (categories seen once / n);
- ``category_vanished``: reference categories that no longer appear, when that
  would be this unlikely under the reference's shares (``exp(-m p / deff)``);
- ``constant``: one value in the whole window where the reference varied;
- ``field_added``: a field the model does not declare, carried by at least
  ``MIN_ADDED_SHARE`` of the window's records, that no record of the reference
  carried (a producer started sending something new, or renamed a field:
  ``absent`` names the old one). Not checked for a reference read from a file.

>>> import numpy as np
>>> from driftline.detectors.profile import CategoricalProfile
>>> from driftline.detectors.stats import CategoricalStats
>>> rng = np.random.default_rng(0)
>>> prof = CategoricalProfile.build(rng.choice(["a", "b", "c"], 20_000, p=[.6, .3, .1]).tolist())
>>> win = CategoricalStats(prof.index, known=frozenset(prof.known)); win.update({"a": 700, "b": 300})
>>> [f["check"] + ": " + f["detail"] for f in categorical_findings("colour", prof, win, 1e-5)]
["category_vanished: 'c' (9.8% of the reference) did not appear in 1000 values"]
"""

from __future__ import annotations

import numpy as np
from scipy import special

from driftline.detectors.profile import CategoricalProfile, NumericProfile

RANGE_MARGIN = 0.05
MIN_MISSING_CHANGE = 0.01
MIN_ADDED_SHARE = 0.01
CHECKS_PER_FEATURE = 3  # how many of these each feature adds to the false-alarm budget


def bounds(prof: NumericProfile) -> tuple[float, float] | None:
    if prof.n == 0:
        return None
    pad = RANGE_MARGIN * (prof.max - prof.min)
    return prof.min - pad, prof.max + pad


def _finding(check: str, feature: str, value: float, threshold: float, p: float | None, detail: str) -> dict:
    return {"check": check, "feature": feature, "method": check, "statistic": float(value),
            "threshold": float(threshold), "p_value": p, "detail": detail}


def fields_added(seen: dict[str, float] | None, extra: dict[str, int], records: int) -> list[dict]:
    """Undeclared fields new since the reference (see the module's docstring)."""
    if seen is None or not records:
        return []
    return [_finding("field_added", name, k / records, MIN_ADDED_SHARE, None,
                     f"undeclared field carried by {k} of {records} records, by none in the reference")
            for name, k in sorted(extra.items()) if name not in seen and k / records >= MIN_ADDED_SHARE]


def _common(name: str, prof, win, alpha: float) -> list[dict]:
    out = []
    rows = win.count + win.missing + win.invalid
    if win.invalid:
        out.append(_finding("wrong_type", name, win.invalid, 1, None,
                            f"{win.invalid} of {rows} values had the wrong type, or were NaN/inf"))
    if rows == 0 or prof.n == 0:
        return out
    rate = win.missing / rows
    if win.missing == rows and prof.missing_rate < 1:
        return out + [_finding("absent", name, 1.0, 1.0, None,
                               f"missing from all {rows} records (reference: {prof.missing_rate:.1%} missing)")]
    n_ref = prof.n / max(1 - prof.missing_rate, 1e-9)
    pooled = (prof.missing_rate * n_ref + win.missing) / (n_ref + rows)
    if 0 < pooled < 1 and abs(rate - prof.missing_rate) >= MIN_MISSING_CHANGE:
        z = abs(rate - prof.missing_rate) / np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / rows))
        p = float(2 * special.ndtr(-z))
        if p < alpha:
            out.append(_finding("missing_rate", name, rate, prof.missing_rate, p,
                                f"missing {prof.missing_rate:.1%} → {rate:.1%} of values"))
    return out


def _poisson(count: int, lam: float) -> float:
    return float(special.pdtrc(count - 1, lam)) if count > 0 else 1.0


def numeric_findings(name: str, prof: NumericProfile, win, alpha: float) -> list[dict]:
    out = _common(name, prof, win, alpha)
    if prof.n == 0 or win.count == 0:
        return out
    lam = 2 * win.count / (prof.n + 1)
    p = _poisson(win.out_of_range, lam)
    if p < alpha:
        lo, hi = bounds(prof)
        out.append(_finding("out_of_range", name, win.out_of_range, lam, p,
                            f"{win.out_of_range} values outside [{lo:.4g}, {hi:.4g}] (expected at most {lam:.2g})"))
    top = prof.counts.max() / prof.n
    if win.min == win.max and prof.std > 0 and win.count * np.log(top) < np.log(alpha):
        out.append(_finding("constant", name, win.min, prof.std, None,
                            f"all {win.count} values were {win.min:.6g} (reference std {prof.std:.4g})"))
    return out


def categorical_findings(name: str, prof: CategoricalProfile, win, alpha: float, deff: float = 1.0) -> list[dict]:
    out = _common(name, prof, win, alpha)
    if prof.n == 0 or win.count == 0:
        return out
    m = win.count
    if prof.known is not None and win.unseen_total:
        lam = m * max(prof.singletons, 1) / prof.n
        p = _poisson(win.unseen_total, lam)
        if p < alpha:
            known = set(map(str, prof.known))
            names = ", ".join(repr(k) for k in [v for v in win.other_top(50) if v not in known][:5])
            out.append(_finding("unseen_categories", name, win.unseen_total, lam, p,
                                f"{win.unseen_total} values of categories the reference never had ({names})"))
    shares = prof.counts[:-1] / prof.n
    gone = [(c, s) for c, s, k in zip(prof.categories, shares, win.hist[:-1])
            if k == 0 and -m * s / max(deff, 1.0) < np.log(alpha)]
    if gone:
        p = float(np.exp(-m * min(s for _, s in gone) / max(deff, 1.0)))
        what = ", ".join(f"{c!r} ({s:.1%} of the reference)" for c, s in gone)
        out.append(_finding("category_vanished", name, len(gone), 0, p, f"{what} did not appear in {m} values"))
    nonzero = np.count_nonzero(win.hist)
    top = prof.counts.max() / prof.n
    if nonzero == 1 and win.unseen_total == 0 and len(prof.categories) > 1 and m * np.log(top) < np.log(alpha):
        out.append(_finding("constant", name, 1, 1, None, f"every one of {m} values was the same category"))
    return out
