"""Reference profiles: what "normal" looks like for each feature.

A numeric feature keeps the interior edges of ``bins`` quantile bins of the
reference and the reference's count in each; every window is histogrammed on
the same edges, so the drift tests compare counts on identical bins. A
categorical feature keeps its top-K categories plus an "other" bucket.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = NumericProfile.build(rng.normal(size=10_000), bins=10)
>>> len(p.counts), int(p.counts.sum())
(10, 10000)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

OTHER = "__other__"
KNOWN_CAP = 10_000


@dataclass
class NumericProfile:
    edges: np.ndarray
    counts: np.ndarray
    sums: np.ndarray  # sum of the values in each bin, for Wasserstein
    n: int
    mean: float
    std: float
    min: float
    max: float
    kurtosis: float = 3.0  # for the variance test; 3 for references stored before it was kept
    missing_rate: float = 0.0
    kind: str = "numeric"

    @classmethod
    def build(cls, values: np.ndarray, bins: int = 100) -> NumericProfile:
        raw = np.asarray(values, dtype=np.float64)
        x = raw[np.isfinite(raw)]
        missing = 1 - x.size / raw.size if raw.size else 0.0
        if x.size == 0:  # nothing to compare against: the feature is summarised, not tested
            return cls(np.empty(0), np.zeros(1, dtype=np.int64), np.zeros(1), 0,
                       float("nan"), float("nan"), float("nan"), float("nan"))
        qs = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
        edges = np.unique(qs)
        idx = np.searchsorted(edges, x, side="left")
        counts = np.bincount(idx, minlength=edges.size + 1)
        sums = np.bincount(idx, weights=x, minlength=edges.size + 1)
        std = float(x.std())
        kurt = float(np.mean((x - x.mean()) ** 4) / std ** 4) if std > 0 else 3.0
        return cls(edges, counts.astype(np.int64), sums, int(x.size), float(x.mean()),
                   std, float(x.min()), float(x.max()), kurt, missing)

    def to_dict(self) -> dict:
        stats = {k: (None if v != v else v) for k, v in
                 (("mean", self.mean), ("std", self.std), ("min", self.min), ("max", self.max))}
        return {"kind": "numeric", "edges": self.edges.tolist(), "counts": self.counts.tolist(),
                "sums": self.sums.tolist(), "n": self.n, **stats,
                "kurtosis": self.kurtosis, "missing_rate": self.missing_rate}

    @classmethod
    def from_dict(cls, d: dict) -> NumericProfile:
        nan = float("nan")
        return cls(np.asarray(d["edges"], dtype=np.float64), np.asarray(d["counts"], dtype=np.int64),
                   np.asarray(d["sums"], dtype=np.float64), d["n"],
                   *(nan if d[k] is None else d[k] for k in ("mean", "std", "min", "max")),
                   d.get("kurtosis", 3.0), d.get("missing_rate", 0.0))


@dataclass
class CategoricalProfile:
    categories: list[str]
    counts: np.ndarray  # one per category, then "other"
    n: int
    known: list[str] | None = None  # every category seen, up to KNOWN_CAP; None past it
    singletons: int = 0  # categories seen once: Good–Turing's estimate of unseen mass
    missing_rate: float = 0.0
    kind: str = "categorical"
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.categories)}

    @classmethod
    def build(cls, values, top_k: int = 20) -> CategoricalProfile:
        values = list(values)
        counts = Counter(v for v in values if v is not None)
        if not counts:  # nothing to compare against: the feature is summarised, not tested
            return cls([], np.zeros(1, dtype=np.int64), 0, missing_rate=1.0 if values else 0.0)
        top = counts.most_common(top_k)
        total = sum(counts.values())
        other = total - sum(c for _, c in top)
        known = sorted(map(str, counts)) if len(counts) <= KNOWN_CAP else None
        return cls([str(k) for k, _ in top], np.array([c for _, c in top] + [other], dtype=np.int64),
                   int(total), known, sum(1 for c in counts.values() if c == 1), 1 - total / len(values))

    def to_dict(self) -> dict:
        return {"kind": "categorical", "categories": self.categories, "counts": self.counts.tolist(),
                "n": self.n, "known": self.known, "singletons": self.singletons,
                "missing_rate": self.missing_rate}

    @classmethod
    def from_dict(cls, d: dict) -> CategoricalProfile:
        return cls(list(d["categories"]), np.asarray(d["counts"], dtype=np.int64), d["n"],
                   d.get("known"), d.get("singletons", 0), d.get("missing_rate", 0.0))


Profile = NumericProfile | CategoricalProfile


@dataclass
class ReferenceProfile:
    """The reference of one model: a profile per monitored feature."""

    model: str
    features: dict[str, Profile]
    n: int
    source: str
    calibration: dict | None = None  # see driftline.detectors.calibrate
    multivariate: dict | None = None  # a PCAProfile as a dict, see driftline.detectors.multivariate
    #: undeclared fields the reference's records carried → share of records; None when the
    #: reference came from a file (which says nothing of the records' other fields)
    fields_seen: dict[str, float] | None = None
    domain: dict | None = None  # a DomainProfile as a dict (raw sample rows), see driftline.detectors.classifier
    #: events per second while the reference was collected from the stream (the volume rule's
    #: baseline); None for a reference from a file
    rate: float | None = None
    #: the labelled reference's performance (driftline.detectors.performance.reference); None
    #: without a label column or ``labels:``
    performance: dict | None = None

    def empty_features(self) -> list[str]:
        """Features the reference holds no values for (they are summarised, never tested)."""
        return [name for name, p in self.features.items() if p.n == 0]

    def to_dict(self) -> dict:
        return {"model": self.model, "n": self.n, "source": self.source, "calibration": self.calibration,
                "multivariate": self.multivariate, "fields_seen": self.fields_seen, "domain": self.domain,
                "features": {k: v.to_dict() for k, v in self.features.items()},
                **({"rate": self.rate} if self.rate is not None else {}),  # absent: older digests hold
                **({"performance": self.performance} if self.performance is not None else {})}

    @classmethod
    def from_dict(cls, d: dict) -> ReferenceProfile:
        feats = {k: (NumericProfile.from_dict(v) if v["kind"] == "numeric"
                     else CategoricalProfile.from_dict(v)) for k, v in d["features"].items()}
        return cls(d["model"], feats, d["n"], d["source"], d.get("calibration"), d.get("multivariate"),
                   d.get("fields_seen"), d.get("domain"), d.get("rate"), d.get("performance"))


def build_reference(model: str, specs: dict, columns: dict[str, list | np.ndarray],
                    bins: int, source: str) -> ReferenceProfile:
    """Profile every feature in ``specs`` (name → FeatureSpec) from raw columns.

    Numeric columns are arrays with NaN for missing; categorical ones are
    sequences of str/bool/None. Raises ``ValueError`` naming a missing or empty column.
    """
    feats: dict[str, Profile] = {}
    n = 0
    for name, spec in specs.items():
        if name not in columns:
            raise ValueError(f"reference has no column {name!r} (has: {', '.join(sorted(columns))})")
        col = columns[name]
        try:
            if spec.kind == "numeric":
                feats[name] = NumericProfile.build(np.asarray(col, dtype=np.float64), bins)
            else:
                vals = [label(v) for v in col]
                feats[name] = CategoricalProfile.build(vals, spec.top_k)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"reference column {name!r}: {exc}") from exc
        n = max(n, len(col))
    return ReferenceProfile(model, feats, n, source)


def label(v):
    """A categorical value as the profile stores it: str, ``true``/``false``, or ``None``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None or (isinstance(v, float) and v != v):
        return None
    return str(v)
