"""Seeded synthetic streams with known change points, for `make bench-quality`.

25 features: 20 numeric (normal, log-normal, exponential and uniform in turn,
each with its own scale) and 5 categorical (six categories, shares .30 .25 .20
.12 .08 .05). Features 0 and 1 are correlated (ρ = 0.8) in normal traffic.
A stream is a reference of ``REFERENCE`` events followed by windows of
``WINDOW`` events; a change starts at window ``change`` (``None`` = stationary).
Every scenario is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_NUMERIC, N_CATEGORICAL = 20, 5
WINDOW, REFERENCE = 1_000, 10_000
CATS = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
P_CATS = np.array([.30, .25, .20, .12, .08, .05])
SHIFTED = (2, 5, 11)  # the numeric features a shift moves by default (exponential, log-normal, uniform)


@dataclass(frozen=True)
class Scenario:
    name: str
    windows: int
    change: int | None  # first window with changed traffic
    rho: float = 0.0  # AR(1) coefficient of every feature
    change_kind: str | None = None
    size: float = 0.0
    shifted: tuple[int, ...] = SHIFTED  # the numeric features a mean, variance or gradual change moves


SCENARIOS = [
    Scenario("stationary", 1000, None),
    Scenario("stationary AR(1) rho=0.5", 1000, None, rho=0.5),
    Scenario("mean shift 0.1 sd (3 normal features)", 90, 30, change_kind="mean", size=0.1, shifted=(4, 8, 12)),
    Scenario("mean shift 0.25 sd (3 features)", 90, 30, change_kind="mean", size=0.25),
    Scenario("mean shift 0.5 sd (3 features)", 90, 30, change_kind="mean", size=0.5),
    Scenario("variance x1.3 (3 features)", 90, 30, change_kind="var", size=1.3),
    Scenario("category frequency shift", 90, 30, change_kind="freq", size=0.08),
    Scenario("category disappears (5% share)", 90, 30, change_kind="vanish"),
    Scenario("gradual drift to 1 sd over 50 windows", 90, 30, change_kind="gradual", size=1.0),
    Scenario("correlation 0.8 -> 0 (marginals same)", 90, 30, change_kind="corr"),
]


def _latent(rng: np.random.Generator, n: int, k: int, rho: float) -> np.ndarray:
    """``n`` x ``k`` standard normals, each column AR(1) with coefficient ``rho``."""
    from scipy.signal import lfilter
    e = rng.standard_normal((n, k))
    if rho == 0:
        return e
    s = np.sqrt(1 - rho * rho)
    e[0] /= s  # start in the stationary distribution
    return lfilter([s], [1.0, -rho], e, axis=0)


def _shape(j: int, z: np.ndarray) -> np.ndarray:
    """Numeric feature ``j`` from standard-normal ``z``, keeping the dependence."""
    from scipy.stats import norm
    kind = j % 4
    if kind == 0:
        return 10 * j + (1 + j / 10) * z
    u = norm.cdf(z)
    if kind == 1:
        return np.exp(3 + 0.5 * z)
    if kind == 2:
        return -np.log1p(-u) * (5 + j)
    return u * (j + 1)


_SD = {0: lambda j: 1 + j / 10, 1: lambda j: float(np.sqrt((np.e ** 0.25 - 1) * np.e ** (6 + 0.25))),
       2: lambda j: 5 + j, 3: lambda j: (j + 1) / np.sqrt(12)}


def generate(sc: Scenario, seed: int) -> tuple[dict, list[dict], list[bool]]:
    """The reference columns, the windows' columns and, per window, whether it is changed."""
    rng = np.random.default_rng(seed)
    n = REFERENCE + sc.windows * WINDOW
    z = _latent(rng, n, N_NUMERIC + N_CATEGORICAL, sc.rho)
    # features 0 and 1: correlation 0.8 in normal traffic
    corr = np.full(n, 0.8)
    start = REFERENCE + (sc.change or 0) * WINDOW
    if sc.change_kind == "corr":
        corr[start:] = 0.0
    z[:, 1] = corr * z[:, 0] + np.sqrt(1 - corr ** 2) * z[:, 1]
    num = {f"num_{j:02d}": _shape(j, z[:, j]) for j in range(N_NUMERIC)}
    ramp = np.zeros(n)
    if sc.change is not None:
        ramp[start:] = 1.0
        if sc.change_kind == "gradual":
            ramp[start:] = np.minimum((np.arange(n - start) + 1) / (50 * WINDOW), 1.0)
    for j in sc.shifted:
        x, sd = num[f"num_{j:02d}"], _SD[j % 4](j)
        if sc.change_kind in ("mean", "gradual"):
            num[f"num_{j:02d}"] = x + sc.size * sd * ramp
        elif sc.change_kind == "var":
            mean = x[:REFERENCE].mean()
            num[f"num_{j:02d}"] = np.where(ramp > 0, mean + (x - mean) * sc.size, x)
    cats = {}
    from scipy.stats import norm
    cum = np.cumsum(P_CATS)[:-1]
    for j in range(N_CATEGORICAL):
        u = norm.cdf(z[:, N_NUMERIC + j])
        codes = np.searchsorted(cum, u, side="right")
        if j == 0 and sc.change_kind == "freq":  # share of "a" .30 -> .22, of "b" .25 -> .33
            flip = (codes == 0) & (rng.random(n) < sc.size / P_CATS[0]) & (ramp > 0)
            codes = np.where(flip, 1, codes)
        if j == 1 and sc.change_kind == "vanish":  # "f" (5%) no longer appears: those become "a"
            codes = np.where((codes == 5) & (ramp > 0), 0, codes)
        cats[f"cat_{j}"] = CATS[codes]
    cols = {**num, **cats}
    ref = {k: v[:REFERENCE] for k, v in cols.items()}
    windows = [{k: v[REFERENCE + i * WINDOW: REFERENCE + (i + 1) * WINDOW] for k, v in cols.items()}
               for i in range(sc.windows)]
    changed = [sc.change is not None and i >= sc.change for i in range(sc.windows)]
    return ref, windows, changed
