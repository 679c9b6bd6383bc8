"""One configured model: its reference, its open windows per version, and
the summary of each window that closes.

Its state is data, kept per key: the model's own (the events collected while its
reference is being built from the stream) and one per version (open windows and the
sequence tests' state). ``dirty`` names the keys changed since the last
``clean()``, so a checkpoint writes only those."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftline import state as st
from driftline.config.settings import ModelSpec
from driftline.detectors import registry
from driftline.detectors.base import Context
from driftline.detectors.calibrate import calibrate
from driftline.detectors.classifier import DomainProfile
from driftline.detectors.drift import Plan
from driftline.detectors.multivariate import PCAProfile
from driftline.detectors.performance.reference import reference_performance, segment_performance
from driftline.detectors.profile import ReferenceProfile, build_reference
from driftline.detectors.quality import CHECKS_PER_FEATURE
from driftline.detectors.window import WindowStats, most_severe
from driftline.streams.windows import CountWindows, TimeWindows, Window
from driftline.types import INVALID, CategoricalColumn, Columns, NumericColumn, iso

#: the model's own key (the reference being collected), beside one key per version
MODEL_KEY = ""


@dataclass
class WindowFactory:
    model: str
    version: str
    profile: ReferenceProfile
    spec: ModelSpec | None = None

    def __call__(self, seq: int, start: int | None, end: int | None, stats: dict | None = None) -> Window:
        ws = (WindowStats(self.profile, self.spec) if stats is None
              else WindowStats.from_state(stats, self.profile, self.spec))
        return Window(self.model, self.version, seq, ws, start, end)


class ModelMonitor:
    """Reference, open windows and summaries for one configured model."""

    def __init__(self, spec: ModelSpec, profile: ReferenceProfile | None = None):
        self.spec = spec
        self.profile = profile
        self.pending: list[Columns] = []
        self.versions: dict[str, CountWindows | TimeWindows] = {}
        self.sequence: dict[str, dict] = {}  # version → its sequence tests (registry.SEQUENCE)
        self.dirty: set[str] = set()  # keys changed since the last clean(): MODEL_KEY or a version
        self.last_event: dict[str, int] = {}  # version → its newest event time (epoch ms): no-data rules
        self.gaps: dict[str, tuple[int, int]] = {}  # version → the longest event-time gap since silence()
        self._gaps = any(r.no_data is not None for r in spec.rules)
        #: models with labels: the last ``ingest``'s windowed events, each one's window and the windows' bounds
        self.assigned: tuple[Columns, np.ndarray, dict] | None = None

    @property
    def plans(self) -> dict[str, list[Plan]]:
        return test_plans(self.spec, self.profile.calibration if self.profile else None)

    def _windows(self, version: str):
        self.dirty.add(version)
        if version not in self.versions:
            new = WindowFactory(self.spec.name, version, self.profile, self.spec)
            w = self.spec.window
            self.versions[version] = (CountWindows(w.size, new) if w.size else
                                      TimeWindows(int(w.duration * 1000), int(w.allowed_lateness * 1000), new))
        return self.versions[version]

    def _sequence(self, version: str) -> dict:
        if version not in self.sequence:
            built = {name: cls.build(self.profile, self.spec) for name, cls in registry.SEQUENCE.items()}
            self.sequence[version] = {k: v for k, v in built.items() if v is not None}
        return self.sequence[version]

    def ingest(self, version: str, cols: Columns,
               now: float = 0.0) -> tuple[list[Window], ReferenceProfile | None]:
        """Add events that arrived at ``now`` (wall clock); return closed windows and
        a reference profile if one was just built."""
        built, self.assigned = None, None
        if self.profile is None:
            self.dirty.add(MODEL_KEY)
            cols, built = self._collect(cols)
            if built is None:
                return [], None
        windows = self._windows(version)
        windows.last_arrival = now
        if cols.n:
            before = self.last_event.get(version)
            if self._gaps:
                self._gap(version, cols.ts, before)
            self.last_event[version] = max(before or 0, int(cols.ts.max()))
        for test in self._sequence(version).values():
            test.update(cols)
        if self.spec.labels is None:
            return windows.add(cols), built
        keep, which = assign_windows(windows, cols)
        closed = windows.add(cols)
        self.assigned = (cols.take(keep), which, window_bounds(windows, closed))
        return closed, built

    def _sequence_tests(self, w: Window, ctx: Context, out: dict) -> None:
        """Each sequence test's result: per feature into its ``tests``, else under the test's name."""
        for name, test in self._sequence(w.version).items():
            result = test.result(ctx)
            if not test.per_feature:
                out[name] = result
                continue
            for feature, r in result.items():
                f = ctx.features[feature]
                f["tests"].append(r.to_dict())
                f["drift"] = most_severe(f["tests"])

    def watermark(self, version: str) -> int | None:
        """The event-time watermark of a version's time windows (``None``: count windows, or none yet)."""
        ws = self.versions.get(version)
        return int(ws.watermark) if isinstance(ws, TimeWindows) and ws.watermark > np.iinfo(np.int64).min else None

    def advance(self, version: str, watermark: int) -> list[Window]:
        """Close the time windows of ``version`` that an outside ``watermark`` passed."""
        ws = self.versions.get(version)
        closed = ws.advance_to(watermark) if isinstance(ws, TimeWindows) else []
        if closed:
            self.dirty.add(version)
        return closed

    def close_idle(self, now: float) -> list[Window]:
        idle = self.spec.window.idle_close
        if idle is None:
            return []
        return self._closing(lambda ws: ws.close_idle(now, idle))

    def close_all(self) -> list[Window]:
        """Close every open window of every version (the end of a replayed input)."""
        return self._closing(lambda ws: ws.close_all())

    def _closing(self, close) -> list[Window]:
        out = []
        for version, ws in self.versions.items():
            closed = close(ws)
            if closed:
                self.dirty.add(version)
                out += closed
        return out

    def _gap(self, version: str, ts: np.ndarray, before: int | None) -> None:
        """The longest stretch of event time without an event, up to this batch's newest
        (only for models with a no-data rule: it sorts the batch's times)."""
        times = np.sort(ts if before is None else np.append(ts[ts > before], before))
        if times.size < 2:
            return
        steps = np.diff(times)
        i = int(steps.argmax())
        if steps[i] > self.gaps.get(version, (0, 0))[0]:
            self.gaps[version] = (int(steps[i]), int(times[i]))

    def silence(self, now: float, since: float, newest: int) -> dict[str, list[tuple[float, str]]]:
        """Per version, what the no-data rules observe, in order: a gap in its event times seen
        since the last call (seconds, and the last event before it), then how long it has sent
        nothing now (the longer of the wall clock since its last arrival, counted from ``since``
        at the earliest, and the event time from its newest event to ``newest``, the newest
        event of any model) with its newest event's time."""
        out = {}
        for version, last in self.last_event.items():
            ws = self.versions.get(version)
            arrived = max(ws.last_arrival or since, since) if ws is not None else since
            seen = [(gap / 1000, iso(before)) for gap, before in [self.gaps.pop(version)]] \
                if version in self.gaps else []
            out[version] = seen + [(max(now - arrived, (newest - last) / 1000), iso(last))]
        return out

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
        span = float(whole.ts.max() - whole.ts.min()) / 1000 if whole.n else 0.0
        self.profile.rate = whole.n / span if span > 0 else None
        return cols.take(slice(need, None)), self.profile

    def summarise(self, w: Window) -> dict:
        run = w.count >= self.spec.window.min_count
        features = w.stats.summarise(self.profile, self.plans, run)
        start, end = w.bounds
        out = {"type": "window", "model": w.model, "version": w.version, "seq": w.seq,
               "start": iso(start), "end": iso(end), "closed_by": w.closed_by, "count": w.count,
               "invalid": w.invalid, "late": w.late, "tests_run": run}
        if self.spec.window.duration and self.profile.rate:  # the volume rule's baseline
            out["expected_count"] = round(self.profile.rate * self.spec.window.duration, 1)
        if not run:
            out["tests_skipped"] = f"count {w.count} < min_count {self.spec.window.min_count}"
        pred = features.pop("prediction", None) if self.spec.prediction is not None else None
        out["features"] = features
        if pred is not None:
            out["prediction"] = pred
        alpha, warn = alphas(self.spec)
        ctx = Context(self.profile, alpha, warn, run, {**features, **({"prediction": pred} if pred else {})})
        tests = w.stats.window_tests(ctx)
        out |= tests
        out["quality"] = w.stats.findings(self.profile, alpha or 1e-4) if w.count else []
        self.dirty.add(w.version)
        self._sequence_tests(w, ctx, out)
        out["drifted"] = [k for k, v in ctx.features.items() if (v.get("drift") or {}).get("drifted")]
        out["drifted"] += [k for k, r in tests.items() if r["drifted"]]
        return out

    # -- state ------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Every key this monitor has state for."""
        return ([MODEL_KEY] if self.pending else []) + sorted(set(self.versions) | set(self.sequence))

    def to_state(self, key: str) -> dict | None:
        """The state of ``key`` (``MODEL_KEY`` or a version); ``None``: nothing to keep."""
        if key == MODEL_KEY:
            return {"format": st.FORMAT, "pending": [_columns_state(_concat(self.pending))]} if self.pending else None
        windows = self.versions.get(key)
        return {"format": st.FORMAT, "windows": windows.to_state() if windows is not None else None,
                "sequence": {k: t.to_state() for k, t in self.sequence.get(key, {}).items()},
                "last_event": self.last_event.get(key)}

    def load(self, key: str, state: dict) -> None:
        """Restore ``key`` from its stored state (see :func:`driftline.state.check_format`)."""
        st.check_format(state, f"model {self.spec.name}, {'its reference' if key == MODEL_KEY else 'version ' + key}")
        if key == MODEL_KEY:
            self.pending = [_columns_from(c) for c in state["pending"]]
            return
        if state.get("last_event") is not None:
            self.last_event[key] = int(state["last_event"])
        if state["windows"] is not None:
            new = WindowFactory(self.spec.name, key, self.profile, self.spec)
            kind = CountWindows if state["windows"]["kind"] == "count" else TimeWindows
            self.versions[key] = kind.from_state(state["windows"], new)
        tests = self._sequence(key)
        for name, saved in state["sequence"].items():
            if name in tests:
                tests[name] = registry.lookup(registry.SEQUENCE, name).from_state(saved, self.profile, self.spec)

    def clean(self) -> None:
        self.dirty = set()


def assign_windows(windows: CountWindows | TimeWindows, cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Which events ``windows.add(cols)`` will put in a window (not late), and each one's window:
    a time window's start (epoch ms), a count window's seq. Call it just before ``add``."""
    if isinstance(windows, TimeWindows):
        starts = cols.ts - cols.ts % windows.duration
        keep = starts >= windows.closed_until
        return keep, starts[keep]
    cur = windows.current
    seq0, count0 = (cur.seq, cur.count) if cur is not None else (windows.seq, 0)
    return np.ones(cols.n, dtype=bool), seq0 + (count0 + np.arange(cols.n, dtype=np.int64)) // windows.size


def window_bounds(windows: CountWindows | TimeWindows, closed: list[Window]) -> dict[int, tuple]:
    """After ``add``: window (start or seq) → (seq, start ms, end ms) of the windows it touched."""
    if isinstance(windows, TimeWindows):
        return {w.start_ms: (w.seq, w.start_ms, w.end_ms) for w in [*closed, *windows.open.values()]}
    touched = closed + ([windows.current] if windows.current is not None else [])
    return {w.seq: (w.seq, *w.bounds) for w in touched}


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
    lab = spec.labels
    if lab is not None and lab.reference_label in columns and "prediction" in columns:
        profile.performance = reference_performance(lab.task, lab.threshold, columns["prediction"],
                                                    columns[lab.reference_label])
        if profile.performance is not None and lab.segments:
            profile.performance["segments"] = segment_performance(
                lab.task, lab.threshold, columns["prediction"], columns[lab.reference_label],
                {f: columns[f] for f in lab.segments if f in columns}, profile.performance["calibrator"])
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
            out[name] = [None if v == INVALID else v for v in col.values]
    return out


def _columns_state(cols: Columns) -> dict:
    feats = {}
    for name, col in cols.features.items():
        if isinstance(col, NumericColumn):
            feats[name] = {"values": col.values, "valid": col.valid, "missing": col.missing}
        else:
            feats[name] = {"categories": col.values.tolist()}
    return {"ts": cols.ts, "features": feats, "extra": dict(cols.extra)}


def _columns_from(state: dict) -> Columns:
    feats = {}
    for name, col in state["features"].items():
        if "categories" in col:
            values = np.empty(len(col["categories"]), dtype=object)
            values[:] = [INVALID if v == INVALID else v for v in col["categories"]]  # the marker's identity
            feats[name] = CategoricalColumn(values)
        else:
            feats[name] = NumericColumn(col["values"], col["valid"], col["missing"])
    return Columns(state["ts"], feats, state["extra"])
