"""One configured model: its reference, its open windows per version, and
the summary of each window that closes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftline.config.settings import ModelSpec
from driftline.detectors.calibrate import calibrate
from driftline.detectors.classifier import DomainProfile
from driftline.detectors.drift import Plan
from driftline.detectors.multivariate import PCAProfile
from driftline.detectors.online import PredictionADWIN
from driftline.detectors.profile import ReferenceProfile, build_reference
from driftline.detectors.quality import CHECKS_PER_FEATURE
from driftline.detectors.trend import Trend
from driftline.detectors.window import WindowStats, most_severe
from driftline.streams.windows import CountWindows, TimeWindows, Window
from driftline.types import INVALID, Columns, NumericColumn, iso


@dataclass
class WindowFactory:
    model: str
    version: str
    profile: ReferenceProfile

    def __call__(self, seq: int, start: int | None, end: int | None) -> Window:
        return Window(self.model, self.version, seq, WindowStats(self.profile), start, end)


class ModelMonitor:
    """Reference, open windows and summaries for one configured model."""

    def __init__(self, spec: ModelSpec, profile: ReferenceProfile | None = None):
        self.spec = spec
        self.profile = profile
        self.pending: list[Columns] = []
        self.versions: dict[str, CountWindows | TimeWindows] = {}

    @property
    def plans(self) -> dict[str, list[Plan]]:
        return test_plans(self.spec, self.profile.calibration if self.profile else None)

    def _windows(self, version: str):
        if version not in self.versions:
            new = WindowFactory(self.spec.name, version, self.profile)
            w = self.spec.window
            self.versions[version] = (CountWindows(w.size, new) if w.size else
                                      TimeWindows(int(w.duration * 1000), int(w.allowed_lateness * 1000), new))
        return self.versions[version]

    def ingest(self, version: str, cols: Columns,
               now: float = 0.0) -> tuple[list[Window], ReferenceProfile | None]:
        """Add events that arrived at ``now`` (wall clock); return closed windows and
        a reference profile if one was just built."""
        built = None
        if self.profile is None:
            cols, built = self._collect(cols)
            if built is None:
                return [], None
        windows = self._windows(version)
        windows.last_arrival = now
        self._adwin(version, cols)
        return windows.add(cols), built

    def _online(self, version: str) -> dict:
        online = self.__dict__.setdefault("online", {})  # monitors pickled before it existed have none
        state = online.setdefault(version, {})
        if "trend" not in state:
            state["trend"] = Trend(tuple(self.spec.trend_windows) or (2,))
        state.setdefault("adwin", PredictionADWIN())
        return state

    def _adwin(self, version: str, cols: Columns) -> None:
        pred = cols.features.get("prediction")
        if isinstance(pred, NumericColumn):
            self._online(version)["adwin"].update(pred.values[pred.valid])

    def _trends(self, version: str, features: dict) -> None:
        """Add each numeric feature's trend test to its ``tests`` (see
        :mod:`driftline.detectors.trend`); a feature whose window test fired starts over."""
        alpha, warn = alphas(self.spec)
        cal = (self.profile.calibration or {}).get("features", {})
        trend = self._online(version)["trend"]
        for name in self.spec.trend_features():
            f, prof = features.get(name), self.profile.features.get(name)
            if not f or not f.get("tests") or not f.get("count") or prof is None:
                continue
            if f["drift"]["drifted"]:
                trend.reset(name)
                continue
            deff = cal.get(name, {}).get("deff", {}).get("mean", 1.0)
            ref = {"n": prof.n, "mean": prof.mean, "std": prof.std}
            f["tests"].append(trend.update(name, f["count"], f["mean"], ref, alpha, warn, deff))
            f["drift"] = most_severe(f["tests"])

    def close_idle(self, now: float) -> list[Window]:
        idle = self.spec.window.idle_close
        if idle is None:
            return []
        return [w for ws in self.versions.values() for w in ws.close_idle(now, idle)]

    def close_all(self) -> list[Window]:
        """Close every open window of every version (the end of a replayed input)."""
        return [w for ws in self.versions.values() for w in ws.close_all()]

    def add_invalid(self, version: str, n: int) -> None:
        """Count bad records in the open window (while the reference is being
        collected there is none: they are only in the dead-letter topic)."""
        if self.profile is not None:
            self._windows(version).add_invalid(n)

    def _collect(self, cols: Columns):
        need = self.spec.reference.first_n - sum(c.n for c in self.pending)
        self.pending.append(cols.take(slice(0, need)))
        if cols.n < need:
            return cols, None
        whole = _concat(self.pending)
        self.pending = []
        self.profile = reference_for(self.spec, _raw(whole), f"first {whole.n} events")
        self.profile.fields_seen = {k: float(m.mean()) for k, m in whole.extra.items() if m.any()}
        return cols.take(slice(need, None)), self.profile

    def summarise(self, w: Window) -> dict:
        run = w.count >= self.spec.window.min_count
        features = w.stats.summarise(self.profile, self.plans, run)
        start, end = w.bounds
        out = {"type": "window", "model": w.model, "version": w.version, "seq": w.seq,
               "start": iso(start), "end": iso(end), "closed_by": w.closed_by, "count": w.count,
               "invalid": w.invalid, "late": w.late, "tests_run": run}
        if not run:
            out["tests_skipped"] = f"count {w.count} < min_count {self.spec.window.min_count}"
        pred = features.pop("prediction", None) if self.spec.prediction is not None else None
        out["features"] = features
        if pred is not None:
            out["prediction"] = pred
        alpha, warn = alphas(self.spec)
        mv = w.stats.multivariate(alpha, warn) if run else None
        if mv is not None:
            out["multivariate"] = mv
        dc = w.stats.classifier(alpha, warn) if run else None
        if dc is not None:
            out["domain_classifier"] = dc
        out["quality"] = w.stats.findings(self.profile, alpha or 1e-4) if w.count else []
        if run:
            self._trends(w.version, {**features, **({"prediction": pred} if pred else {})})
        if self.spec.prediction is not None and self.spec.prediction.kind == "numeric":
            out["prediction_adwin"] = self._online(w.version)["adwin"].get()
        out["drifted"] = [k for k, v in {**features, "prediction": pred or {}}.items()
                          if (v.get("drift") or {}).get("drifted")] + (["multivariate"] if mv and mv["drifted"] else [])
        out["drifted"] += ["domain_classifier"] if dc and dc["drifted"] else []
        return out


def n_tests(spec: ModelSpec) -> int:
    """How many tests share the model's false-alarm budget: every drift test of every
    feature, the data-quality checks of every feature, the trend test of every numeric
    feature, and the multivariate test."""
    feats = spec.all_features().values()
    return (sum(len(spec.tests_for(f)) for f in feats) + CHECKS_PER_FEATURE * len(feats)
            + len(spec.trend_features()) + int(spec.multivariate) + int(spec.domain_classifier.enabled))


def alphas(spec: ModelSpec) -> tuple[float | None, float | None]:
    """The per-test false-alarm probability, and the one for warnings (ten times it)."""
    if spec.false_alarms is None:
        return None, None
    alpha = spec.false_alarms / n_tests(spec)
    return alpha, min(10 * alpha, 0.5)


def test_plans(spec: ModelSpec, calibration: dict | None) -> dict[str, list[Plan]]:
    """Each feature's tests, with the per-test ``alpha`` of the model's budget."""
    alpha, warn = alphas(spec)
    return {name: [Plan(t.method, t.threshold, t.warning, alpha, warn, spec.test_source(name, f))
                   for t in spec.tests_for(f)]
            for name, f in spec.all_features().items()}


def reference_for(spec: ModelSpec, columns: dict, source: str, seed: int = 0) -> ReferenceProfile:
    """Profile ``columns`` (raw, in arrival order) and, when the model has a
    false-alarm budget, calibrate its tests on them."""
    profile = build_reference(spec.name, spec.all_features(), columns, spec.reference.bins, source)
    numeric = {k: columns[k] for k, f in spec.features.items() if f.kind == "numeric"}
    if spec.multivariate and len(numeric) >= 2:
        pca = PCAProfile.build(numeric, seed=seed)
        profile.multivariate = pca.to_dict() if pca else None
    window = spec.window.size or min(profile.n // 2, 10_000)
    if spec.domain_classifier.enabled:
        kinds = {k: f.kind for k, f in spec.all_features().items()}
        dom = DomainProfile.build(columns, kinds, spec.domain_classifier.sample, window, seed)
        profile.domain = dom.to_dict() if dom else None
    if spec.false_alarms is not None:
        methods = {n: [t.method for t in spec.tests_for(f)] for n, f in spec.all_features().items()}
        profile.calibration = calibrate(profile, columns, methods, window, spec.false_alarms,
                                        n_tests(spec), seed)
    return profile


def profile_fits(profile: ReferenceProfile, spec: ModelSpec) -> bool:
    """Whether a stored reference covers exactly the model's features, with their kinds."""
    wanted = spec.all_features()
    if set(profile.features) != set(wanted):
        return False
    return all((p.kind == "numeric") == (wanted[n].kind == "numeric") for n, p in profile.features.items())


def _concat(parts: list[Columns]) -> Columns:
    first = parts[0]
    feats = {}
    for name, col in first.features.items():
        cols = [p.features[name] for p in parts]
        if isinstance(col, NumericColumn):
            feats[name] = NumericColumn(*(np.concatenate([getattr(c, a) for c in cols])
                                          for a in ("values", "valid", "missing")))
        else:
            feats[name] = type(col)(np.concatenate([c.values for c in cols]))
    names = {k for p in parts for k in p.extra}
    extra = {k: np.concatenate([p.extra.get(k, np.zeros(p.n, dtype=bool)) for p in parts]) for k in names}
    return Columns(np.concatenate([p.ts for p in parts]), feats, extra)


def _raw(cols: Columns) -> dict:
    out = {}
    for name, col in cols.features.items():
        if isinstance(col, NumericColumn):
            out[name] = np.where(col.valid, col.values, np.nan)
        else:
            out[name] = [None if v is INVALID else v for v in col.values]
    return out
