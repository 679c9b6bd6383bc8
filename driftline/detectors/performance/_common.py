"""What every performance statistic shares: JSON-safe numbers, state checks, the score bins."""

from __future__ import annotations

import math

import numpy as np

#: the format of the state these statistics write; they read this one only
FORMAT = 1


def num(x) -> float | None:
    """``x`` as a float, or ``None`` when it is undefined (NaN, inf, ``None``): output stays JSON-safe."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(a, b) -> float | None:
    """``a / b``, ``None`` when ``b`` is zero."""
    return num(a / b) if b else None


def binomial_se(p: float | None, m) -> float | None:
    """Standard error of a proportion ``p`` of ``m`` trials."""
    return num(math.sqrt(p * (1.0 - p) / m)) if p is not None and m else None


def mean_se(row: np.ndarray) -> float | None:
    """Standard error of a mean from its count, mean and centred sum of squares."""
    n, _, m2 = row
    return num(math.sqrt(max(m2, 0.0) / (n * (n - 1)))) if n >= 2 else None


def moments(v: np.ndarray) -> tuple[float, float, float]:
    """Count, mean and centred sum of squares of ``v``."""
    if not v.size:
        return 0.0, 0.0, 0.0
    mean = float(v.mean())
    mean += float((v - mean).mean())  # a second pass takes out the rounding of the first
    return float(v.size), mean, float(((v - mean) ** 2).sum())


def chan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Count, mean and centred sum of squares of the union, row by row (Chan et al.)."""
    na, nb = a[:, 0], b[:, 0]
    n = na + nb
    w = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
    delta = b[:, 1] - a[:, 1]
    mean = np.where(nb > 0, np.where(na > 0, a[:, 1] + delta * w, b[:, 1]), a[:, 1])
    m2 = a[:, 2] + b[:, 2] + np.where((na > 0) & (nb > 0), delta * delta * na * w, 0.0)
    return np.stack([n, mean, m2], axis=1)


def check_state(state: dict, kind: str) -> dict:
    """``state`` if it is a ``kind`` state of this :data:`FORMAT`, else a ``ValueError``."""
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"expected the state of a {kind!r} statistic, got {found!r}")
    if state.get("format") != FORMAT:
        raise ValueError(f"{kind} state has format {state.get('format')!r}, this release reads {FORMAT}")
    return state


def check_same(a, b, fields: tuple[str, ...]) -> None:
    """Two statistics merge only when they were built alike."""
    if type(a) is not type(b):
        raise TypeError(f"cannot merge {type(b).__name__} into {type(a).__name__}")
    for f in fields:
        if not np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))):
            raise ValueError(f"cannot merge statistics with different {f}: {getattr(a, f)!r} and {getattr(b, f)!r}")


def score_edges(bins: int = 1000, tail: float = 1e-6) -> np.ndarray:
    """Fixed edges over [0, 1]: ``bins`` equal-width bins, the first and last of them split
    further on a log scale (10 per decade) down to ``tail`` from 0 and 1, where the scores
    of rare-event models crowd.

    >>> e = score_edges(1000); e.size - 1, float(e[1]), float(e[-2])
    (1060, 1e-06, 0.999999)
    """
    if not isinstance(bins, (int, np.integer)) or bins < 10:
        raise ValueError(f"bins must be an integer of at least 10, got {bins!r}")
    if not 0 < tail < 1.0 / bins:
        raise ValueError(f"tail must lie in (0, 1/bins), got {tail!r}")
    small = 10.0 ** (np.arange(round(math.log10(tail) * 10), math.ceil(math.log10(1.0 / bins) * 10 - 1e-9)) / 10)
    inner = np.linspace(0.0, 1.0, bins + 1)
    return np.unique(np.round(np.concatenate([inner, small, 1.0 - small]), 15))


def bin_index(edges: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The bin of each score in [0, 1]; 1.0 falls in the last bin."""
    return np.clip(np.searchsorted(edges, s, side="right") - 1, 0, edges.size - 2)


def valid_scores(s) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and the mask of those that are probabilities (finite, in [0, 1])."""
    s = np.asarray(s, dtype=np.float64).ravel()
    return s, np.isfinite(s) & (s >= 0.0) & (s <= 1.0)
