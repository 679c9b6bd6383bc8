"""The statistics of one window of one model version, and its summary."""

from __future__ import annotations

from collections import Counter

import numpy as np

from driftline.detectors import quality
from driftline.detectors.classifier import DomainProfile, RowSample
from driftline.detectors.drift import Plan, run_test
from driftline.detectors.multivariate import PCAProfile, ReconstructionStats
from driftline.detectors.profile import NumericProfile, ReferenceProfile
from driftline.detectors.stats import CategoricalStats, NumericStats
from driftline.types import INVALID, Columns, NumericColumn

EXTRA_CAP = 100


class WindowStats:
    """Per-feature statistics on the reference's bins; update, merge, summarise."""

    pca: ReconstructionStats | None = None  # class defaults: windows pickled by older versions
    _pca: PCAProfile | None = None
    extra: Counter | None = None
    domain: RowSample | None = None
    _domain: DomainProfile | None = None
    records = 0

    def __init__(self, profile: ReferenceProfile):
        self.features: dict = {}
        for name, prof in profile.features.items():
            if isinstance(prof, NumericProfile):
                self.features[name] = NumericStats(prof.edges, bounds=quality.bounds(prof))
            else:
                known = frozenset(prof.known) if prof.known is not None else None
                self.features[name] = CategoricalStats(prof.index, known=known)
        self._pca = PCAProfile.from_dict(profile.multivariate)
        self.pca = ReconstructionStats(self._pca) if self._pca else None
        self._domain = DomainProfile.from_dict(profile.domain)
        self.domain = RowSample(self._domain) if self._domain else None
        self.extra = Counter()  # undeclared field → records that carried it (at most EXTRA_CAP names)
        self.records = 0

    def update(self, cols: Columns) -> None:
        self.records += cols.n
        if self.extra is None:
            self.extra = Counter()
        for name, mask in cols.extra.items():
            if name in self.extra or len(self.extra) < EXTRA_CAP:
                self.extra[name] += int(mask.sum())
        if self.pca is not None or self.domain is not None:  # rows, with NaN for a missing number
            rows = {k: _with_nan(c) if isinstance(c, NumericColumn) else c.values for k, c in cols.features.items()}
            if self.pca is not None:
                self.pca.update(self._pca, rows)
            if self.domain is not None:
                self.domain.update(rows)
        for name, stats in self.features.items():
            col = cols.features[name]
            if isinstance(col, NumericColumn):
                missing = int(col.missing.sum())
                valid = col.values[col.valid]
                stats.update(valid, missing, cols.n - valid.size - missing)
            else:
                counts = Counter(col.values.tolist())
                missing = counts.pop(None, 0)
                invalid = counts.pop(INVALID, 0)
                stats.update(counts, missing, invalid)

    def merge(self, other: WindowStats) -> None:
        self.records += other.records
        for name, k in (other.extra or {}).items():
            if self.extra is not None and (name in self.extra or len(self.extra) < EXTRA_CAP):
                self.extra[name] += k
        for name, stats in self.features.items():
            stats.merge(other.features[name])
        if self.pca is not None and other.pca is not None:
            self.pca.merge(other.pca)
        if self.domain is not None and other.domain is not None:
            self.domain.merge(other.domain)

    def findings(self, profile: ReferenceProfile, alpha: float) -> list[dict]:
        """Data-quality findings of every feature (see :mod:`driftline.detectors.quality`)."""
        cal = (profile.calibration or {}).get("features", {})
        out = []
        for name, stats in self.features.items():
            prof = profile.features[name]
            if isinstance(prof, NumericProfile):
                out += quality.numeric_findings(name, prof, stats, alpha)
            else:
                deff = cal.get(name, {}).get("deff", {}).get("cells", 1.0)
                out += quality.categorical_findings(name, prof, stats, alpha, deff)
        return out + quality.fields_added(profile.fields_seen, self.extra or {}, self.records)

    def classifier(self, alpha: float | None, warn_alpha: float | None) -> dict | None:
        if self.domain is None or self.domain.count == 0:
            return None
        if alpha is None:
            return self._domain.test(self.domain, threshold=0.6)
        return self._domain.test(self.domain, alpha, warn_alpha)

    def multivariate(self, alpha: float | None, warn_alpha: float | None) -> dict | None:
        if self.pca is None or self.pca.count == 0:
            return None
        if alpha is None:
            return self._pca.test(self.pca, threshold=self._pca.error_mean * 1.5)
        return self._pca.test(self.pca, alpha, warn_alpha=warn_alpha)

    def summarise(self, profile: ReferenceProfile, plans: dict[str, list[Plan]],
                  run_tests: bool) -> dict:
        """Statistics per feature, with every test's result under ``tests`` and the
        most severe one under ``drift``, when ``run_tests``."""
        out = {}
        cal = (profile.calibration or {}).get("features", {})
        for name, stats in self.features.items():
            summary = stats.get()
            reference = profile.features[name]
            if run_tests and stats.count > 0 and reference.n > 0:
                results = [run_test(p, reference, stats, cal.get(name)).to_dict() for p in plans[name]]
                summary["drift"] = most_severe(results)
                summary["tests"] = results
            else:
                summary["drift"] = None
                if reference.n == 0:
                    summary["drift_skipped"] = "the reference has no values for this feature"
            out[name] = summary
        return out


_LEVELS = {"ok": 0, "warning": 1, "drift": 2}


def most_severe(results: list[dict]) -> dict:
    """The result with the highest level, and of those the smallest p-value."""
    return max(results, key=_severity)


def _severity(result: dict) -> tuple:
    p = result["p_value"]
    return _LEVELS[result["level"]], -(p if p is not None else 1.0)


def _with_nan(col) -> np.ndarray:
    return np.where(col.valid, col.values, np.nan)


def numeric_values(cols: Columns, name: str) -> np.ndarray:
    col = cols.features[name]
    return col.values[col.valid]
