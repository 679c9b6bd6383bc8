"""From decoded batches to closed windows, alert transitions and triggers.

The :class:`Pipeline` holds no I/O of its own: it is handed a store, a dead
letter function and an output function, and returns the offsets that are safe
to commit to the source once a batch's effects are in the database.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from driftline.alerts.rules import AlertState, evaluate, fingerprint
from driftline.config.settings import ModelSpec, Settings
from driftline.detectors.profile import ReferenceProfile, build_reference
from driftline.detectors.window import WindowStats
from driftline.streams.decode import Decoder
from driftline.streams.windows import CountWindows, TimeWindows, Window
from driftline.types import INVALID, Batch, BadRecord, Columns, Notification, NumericColumn, iso, to_ms

log = logging.getLogger(__name__)


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
        self.pending_invalid = 0
        self.versions: dict[str, CountWindows | TimeWindows] = {}

    @property
    def tests(self) -> dict[str, tuple[str, float]]:
        return {n: (self.spec.test_for(f).method, self.spec.test_for(f).threshold)
                for n, f in self.spec.all_features().items()}

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
        return windows.add(cols), built

    def close_idle(self, now: float) -> list[Window]:
        idle = self.spec.window.idle_close
        if idle is None:
            return []
        return [w for ws in self.versions.values() for w in ws.close_idle(now, idle)]

    def add_invalid(self, version: str, n: int) -> None:
        if self.profile is None:
            self.pending_invalid += n
        else:
            self._windows(version).add_invalid(n)

    def _collect(self, cols: Columns):
        need = self.spec.reference.first_n - sum(c.n for c in self.pending)
        self.pending.append(cols.take(slice(0, need)))
        if cols.n < need:
            return cols, None
        whole = _concat(self.pending)
        self.pending = []
        self.profile = build_reference(self.spec.name, self.spec.all_features(), _raw(whole),
                                       self.spec.reference.bins, f"first {whole.n} events")
        return cols.take(slice(need, None)), self.profile

    def summarise(self, w: Window) -> dict:
        run = w.count >= self.spec.window.min_count
        features = w.stats.summarise(self.profile, self.tests, run)
        start, end = w.bounds
        out = {"type": "window", "model": w.model, "version": w.version, "seq": w.seq,
               "start": iso(start), "end": iso(end), "count": w.count, "invalid": w.invalid,
               "late": w.late, "tests_run": run}
        if not run:
            out["tests_skipped"] = f"count {w.count} < min_count {self.spec.window.min_count}"
        pred = features.pop("prediction", None) if self.spec.prediction is not None else None
        out["features"] = features
        if pred is not None:
            out["prediction"] = pred
        out["drifted"] = [k for k, v in {**features, "prediction": pred or {}}.items()
                          if (v.get("drift") or {}).get("drifted")]
        return out


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
    return Columns(np.concatenate([p.ts for p in parts]), feats)


def _raw(cols: Columns) -> dict:
    out = {}
    for name, col in cols.features.items():
        if isinstance(col, NumericColumn):
            out[name] = np.where(col.valid, col.values, np.nan)
        else:
            out[name] = [None if v is INVALID else v for v in col.values]
    return out


@dataclass
class CommitUnit:
    """Everything one database transaction writes."""

    windows: list[dict] = field(default_factory=list)
    alert_states: list[AlertState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    references: list[ReferenceProfile] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    checkpoint: bytes | None = None


class Pipeline:
    """Decode → windows → drift → rules; one :class:`CommitUnit` per checkpoint.

    ``sinks`` maps each sink's name to the kinds it takes (``alert``, ``trigger``).
    """

    def __init__(self, settings: Settings, store, sinks: dict[str, frozenset[str]], dead_letter, output,
                 group: str = "driftline", checkpoint_every: float = 5.0, clock=time.monotonic,
                 wall=time.time):
        self.settings, self.store, self.sinks = settings, store, sinks
        self.dead_letter, self.output, self.group = dead_letter, output, group
        self.checkpoint_every, self.clock, self.wall = checkpoint_every, clock, wall
        self.decoder = Decoder(settings.models)
        self.unknown_invalid = 0
        self._restore()

    def _restore(self) -> None:
        refs = self.store.load_references()
        saved = self.store.load_checkpoint(self.group)
        monitors = pickle.loads(saved) if saved else {}
        self.monitors: dict[str, ModelMonitor] = {}
        for spec in self.settings.models:
            profile = ReferenceProfile.from_dict(refs[spec.name]) if spec.name in refs else None
            if profile is not None and not profile_fits(profile, spec):
                log.warning("model %s: its features changed since the stored reference was built; "
                            "building a new reference", spec.name)
                profile = None
            m = monitors.get(spec.name)
            if m is not None and (profile is None or m.profile is None
                                  or m.spec.window != spec.window or not profile_fits(m.profile, spec)):
                log.warning("model %s: configuration changed; open windows are discarded", spec.name)
                m = None
            if m is None:
                m = ModelMonitor(spec, profile)
            else:
                m.spec = spec  # thresholds, rules and cooldowns may change between runs
            self.monitors[spec.name] = m
        self.alerts: dict[str, AlertState] = self.store.load_alert_states()
        self.last_trigger: dict[tuple[str, str], int] = self.store.load_last_triggers()
        self.offsets = self.store.load_offsets(self.group)
        self._dirty = False
        self._last_checkpoint = self.clock()

    def set_reference(self, profile: ReferenceProfile) -> None:
        self.monitors[profile.model].profile = profile

    def process(self, batch: Batch, force: bool = False) -> dict[tuple[str, int], int] | None:
        """Process one batch; return offsets to commit to the source, if a checkpoint was written."""
        decoded = self.decoder.decode(batch) if batch.values else None
        unit = CommitUnit()
        now = self.wall()
        if decoded is not None:
            self._bad(decoded.bad, decoded.invalid)
            for (model, version), cols in decoded.groups.items():
                closed, built = self.monitors[model].ingest(version, cols, now)
                if built is not None:
                    unit.references.append(built)
                for w in closed:
                    self._close(self.monitors[model], w, unit)
        for monitor in self.monitors.values():
            for w in monitor.close_idle(now):
                self._close(monitor, w, unit)
        self.offsets.update(batch.next_offsets)
        self._dirty = self._dirty or bool(batch.next_offsets)
        due = self.clock() - self._last_checkpoint >= self.checkpoint_every
        if not (unit.windows or unit.references or force or (due and self._dirty)):
            return None
        self.dead_letter.flush()  # dead letters are durable before their offsets are
        unit.offsets = dict(self.offsets)
        unit.checkpoint = pickle.dumps(self.monitors, protocol=pickle.HIGHEST_PROTOCOL)
        self.store.commit(self.group, unit)
        self._dirty, self._last_checkpoint = False, self.clock()
        for summary in unit.windows:
            self.output(summary)
        return unit.offsets

    def _bad(self, bad: list[BadRecord], invalid: dict) -> None:
        for record in bad:
            self.dead_letter.send(record)
            if record.model not in self.monitors:
                self.unknown_invalid += 1
        for (model, version), n in invalid.items():
            self.monitors[model].add_invalid(version, n)

    def _close(self, monitor: ModelMonitor, w: Window, unit: CommitUnit) -> None:
        summary = monitor.summarise(w)
        unit.windows.append(summary)
        for rule in monitor.spec.rules:
            fp = fingerprint(w.model, w.version, rule)
            state, event = evaluate(rule, summary, self.alerts.get(fp))
            if state != self.alerts.get(fp):
                self.alerts[fp] = state
                unit.alert_states.append(state)
            if event is None:
                continue
            self._notify(event, f"{fp}:{event['status']}:{summary['end']}", unit)
            if event["status"] == "firing":
                self._maybe_trigger(monitor.spec, event, summary, unit)

    def _notify(self, payload: dict, key: str, unit: CommitUnit) -> None:
        kind = payload["type"]
        for sink, accepts in self.sinks.items():
            if kind in accepts:
                unit.notifications.append(Notification(f"{key}:{sink}", sink, kind, payload))

    def _maybe_trigger(self, spec: ModelSpec, event: dict, summary: dict, unit: CommitUnit) -> None:
        if not spec.retrain.enabled:
            return
        key = (event["model"], event["version"])
        end = to_ms(summary["end"])
        last = self.last_trigger.get(key)
        if last is not None and end - last < spec.retrain.cooldown * 1000:
            log.info("retrain trigger for %s/%s held back by cooldown", *key)
            return
        self.last_trigger[key] = end
        trigger = {"type": "trigger", "event": cloud_event(event, summary, self.group)}
        unit.triggers.append(trigger)
        self._notify(trigger, f"trigger:{event['fingerprint']}:{summary['end']}", unit)


def cloud_event(alert: dict, summary: dict, group: str) -> dict:
    """A CloudEvents 1.0 structured-mode retraining request carrying its evidence."""
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"driftline:{alert['fingerprint']}:{summary['end']}")
    return {
        "specversion": "1.0",
        "id": str(ident),
        "source": f"driftline/{group}",
        "type": "dev.driftline.retrain.requested",
        "subject": f"{alert['model']}/{alert['version']}",
        "time": summary["end"],
        "datacontenttype": "application/json",
        "data": {
            "model": alert["model"], "version": alert["version"],
            "reason": alert["rule"], "alert": alert["fingerprint"], "severity": alert["severity"],
            "window": {"start": summary["start"], "end": summary["end"], "count": summary["count"]},
            "drifted": {k: {x: v[x] for x in ("method", "statistic", "p_value", "threshold")}
                        for k, v in alert["features"].items()},
        },
    }
