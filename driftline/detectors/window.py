"""The statistics of one window of one model version, and its summary."""

from __future__ import annotations

from collections import Counter

import numpy as np

from driftline.detectors import quality, registry
from driftline.detectors.base import Context
from driftline.detectors.drift import Plan, run_test
from driftline.detectors.profile import NumericProfile, ReferenceProfile
from driftline.detectors.stats import CategoricalStats, NumericStats
from driftline.types import INVALID, CategoricalColumn, Columns, NumericColumn

EXTRA_CAP = 100


class WindowStats:
    """Per-feature statistics on the reference's bins and every window test of the
    registry; update, merge, summarise, and a state of plain data."""

    def __init__(self, profile: ReferenceProfile, spec=None):
        self.features: dict = {name: _feature_stats(prof) for name, prof in profile.features.items()}
        self.tests: dict = {}
        for name, cls in registry.WINDOW.items():
            test = cls.build(profile, spec)
            if test is not None:
                self.tests[name] = test
        self.extra = Counter()  # undeclared field → records that carried it (at most EXTRA_CAP names)
        self.records = 0

    def update(self, cols: Columns) -> None:
        self.records += cols.n
        for name, mask in cols.extra.items():
            if name in self.extra or len(self.extra) < EXTRA_CAP:
                self.extra[name] += int(mask.sum())
        for test in self.tests.values():
            test.update(cols)
        for name, stats in self.features.items():
            col = cols.features[name]
            if isinstance(col, NumericColumn):
                missing = int(np.count_nonzero(col.missing))
                valid = col.values if col.valid.all() else col.values[col.valid]
                stats.update(valid, missing, cols.n - valid.size - missing)
            else:
                counts = value_counts(col)
                missing = counts.pop(None, 0)
                invalid = counts.pop(INVALID, 0)
                stats.update(counts, missing, invalid)

    def merge(self, other: WindowStats) -> None:
        self.records += other.records
        for name, k in other.extra.items():
            if name in self.extra or len(self.extra) < EXTRA_CAP:
                self.extra[name] += k
        for name, stats in self.features.items():
            stats.merge(other.features[name])
        for name, test in self.tests.items():
            if name in other.tests:
                test.merge(other.tests[name])

    def to_state(self) -> dict:
        return {"records": self.records, "extra": dict(self.extra),
                "features": {k: f.to_state() for k, f in self.features.items()},
                "tests": {k: t.to_state() for k, t in self.tests.items()}}

    @classmethod
    def from_state(cls, state: dict, profile: ReferenceProfile, spec=None) -> WindowStats:
        out = cls.__new__(cls)
        out.records, out.extra = state["records"], Counter(state["extra"])
        out.features = {name: _feature_stats(prof, state["features"][name]) for name, prof in profile.features.items()}
        out.tests = {name: registry.lookup(registry.WINDOW, name).from_state(t, profile, spec)
                     for name, t in state["tests"].items()}
        return out

    def window_tests(self, ctx: Context) -> dict[str, dict]:
        """Each window test's result (the summary's field → the result), in registry order."""
        out = {}
        for name, test in self.tests.items():
            result = test.result(ctx) if ctx.run_tests else None
            if result is not None:
                out[name] = result.to_dict()
        return out

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


def _feature_stats(prof, state: dict | None = None):
    """A feature's statistics on its reference's bins (numeric) or categories, empty or from ``state``."""
    if isinstance(prof, NumericProfile):
        args = (prof.edges, 200, quality.bounds(prof))
        return NumericStats(*args) if state is None else NumericStats.from_state(state, *args)
    args = (prof.index, "categorical", frozenset(prof.known) if prof.known is not None else None)
    return CategoricalStats(*args) if state is None else CategoricalStats.from_state(state, *args)


def value_counts(col: CategoricalColumn) -> dict:
    """``Counter(col.values)`` as a dict, in the same order (of first appearance): with the
    decoder's dictionary codes, one ``bincount`` instead of hashing every value."""
    if col.codes is None:
        return Counter(col.values.tolist())
    k, rows = col.categories.size, col.codes.size
    counts = np.bincount(col.codes, minlength=k)
    first = np.full(k, rows)
    np.minimum.at(first, col.codes, np.arange(rows))
    present = np.flatnonzero(counts)
    order = present[np.argsort(first[present])]
    return dict(zip(col.categories[order].tolist(), counts[order].tolist()))


def numeric_values(cols: Columns, name: str) -> np.ndarray:
    col = cols.features[name]
    return col.values[col.valid]
