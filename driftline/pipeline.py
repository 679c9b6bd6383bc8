"""From decoded batches to closed window summaries, one :class:`CommitUnit` per checkpoint.

The :class:`Pipeline` holds no I/O of its own: it is handed a store, an alert
router (``alerts/routing.py``: what each closed window means for alerts, sinks and
triggers), a dead letter function and an output function, and returns the offsets
that are safe to commit to the source once a batch's effects are in the database.
"""

from __future__ import annotations

import hashlib
import logging
import time

from driftline import legacy
from driftline import state as st
from driftline.config.settings import ModelSpec, Settings
from driftline.detectors.profile import ReferenceProfile
from driftline.metrics import NullMetrics
from driftline.monitor import MODEL_KEY, ModelMonitor, profile_fits
from driftline.realized import RealizedPerformance, is_label_key
from driftline.segment_drift import CODES, SegmentDrift, is_segment_key
from driftline.streams.decode import Decoder
from driftline.streams.windows import Window
from driftline.types import BadRecord, Batch, CommitUnit

log = logging.getLogger(__name__)

#: the source of every state while one process serves all partitions (see types.StateKey)
ALL_SOURCES = "*"


def window_key(spec: ModelSpec) -> dict:
    """What open windows depend on in the configuration: stored with them, compared on restore."""
    return spec.window.model_dump(mode="json")


def reference_key(profile: ReferenceProfile | None) -> str | None:
    """Which reference open windows were binned on (a digest of the stored profile)."""
    if profile is None:
        return None
    cached = getattr(profile, "_state_key", None)
    if cached is None:
        import orjson
        cached = hashlib.sha256(orjson.dumps(profile.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)).hexdigest()[:16]
        profile._state_key = cached
    return cached


def _what(model: str, key: str) -> str:
    return f"model {model}, {'its reference' if key == MODEL_KEY else 'version ' + key}"


def _load(monitor: ModelMonitor, key: str, state: dict) -> None:
    """Restore one key; whatever a stored state makes go wrong is a :class:`StateError` naming it."""
    try:
        monitor.load(key, state)
    except st.StateError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - native deserialisers raise anything (pyo3 panics too)
        raise st.unreadable(_what(monitor.spec.name, key), f"{type(exc).__name__}: {exc}") from exc


def _collected_fits(state: dict, spec: ModelSpec) -> bool:
    """Whether events collected for a reference have exactly the model's features, of the same kinds."""
    wanted = {k: f.kind == "numeric" for k, f in spec.all_features().items()}
    return all({k: "categories" not in c for k, c in part["features"].items()} == wanted
               for part in state.get("pending") or [])


class Pipeline:
    """Decode → windows → drift → ``router``; one :class:`CommitUnit` per checkpoint.

    ``router`` takes each closed window's summary and returns its alert state
    changes, notifications and triggers (a :class:`~driftline.alerts.routing.Router`).
    """

    def __init__(self, settings: Settings, store, router, dead_letter, output,
                 group: str = "driftline", checkpoint_every: float = 5.0, clock=time.monotonic,
                 wall=time.time, metrics=None):
        self.settings, self.store, self.router = settings, store, router
        self.dead_letter, self.output, self.group = dead_letter, output, group
        self.checkpoint_every, self.clock, self.wall = checkpoint_every, clock, wall
        self.metrics = metrics or NullMetrics()
        self.decoder = Decoder(settings.models)
        secret = settings.store.state_secret
        self._secret = secret.get_secret_value().encode() if secret else None
        self.unknown_invalid = 0
        self.started = wall()  # wall-clock silence (no-data rules) is counted from here at the earliest
        self._no_data = any(r.no_data is not None for m in settings.models for r in m.rules)
        self.pending: CommitUnit | None = None
        self._output_failed = False
        self._restore()

    def _restore(self) -> None:
        refs = self.store.state.load_references()
        saved = {(m, k): st.decode(v, _what(m, k), self._secret)
                 for (m, k, _src), v in self.store.state.load_states(self.group, ALL_SOURCES).items()}
        self._drop_legacy = False
        if not saved:
            saved = self._convert_legacy()
        self.monitors: dict[str, ModelMonitor] = {}
        for spec in self.settings.models:
            profile = ReferenceProfile.from_dict(refs[spec.name]) if spec.name in refs else None
            if profile is not None and not profile_fits(profile, spec):
                log.warning("model %s: its features changed since the stored reference was built; "
                            "building a new reference", spec.name)
                profile = None
            self.monitors[spec.name] = self._monitor(spec, profile, {
                k: v for (m, k), v in saved.items() if m == spec.name and not is_label_key(k)
                and not is_segment_key(k)})
        self.segments = {spec.name: self._segments(spec, refs, {k: v for (m, k), v in saved.items()
                                                                if m == spec.name and is_segment_key(k)})
                         for spec in self.settings.models if spec.segments}
        self.labels = {spec.name: self._labels(spec, {k: v for (m, k), v in saved.items()
                                                      if m == spec.name and is_label_key(k)},
                                               self.monitors[spec.name].profile)
                       for spec in self.settings.models if spec.labels is not None}
        self.offsets = self.store.state.load_offsets(self.group)
        self._dirty = self._drop_legacy
        self._last_checkpoint = self.clock()

    def _monitor(self, spec: ModelSpec, profile: ReferenceProfile | None, states: dict[str, dict]) -> ModelMonitor:
        """The model's monitor with its stored open windows, unless they no longer fit."""
        m = ModelMonitor(spec, profile)
        stale = [k for k, v in states.items() if k != MODEL_KEY and not self._fits(v, spec, profile)]
        if stale:
            log.warning("model %s: configuration or reference changed; open windows of %s are discarded",
                        spec.name, ", ".join(stale))
            m.dirty.update(stale)  # their stored state is replaced at the next checkpoint
        for key, state in states.items():
            if key == MODEL_KEY and (profile is not None or not _collected_fits(state, spec)):
                if profile is None:
                    log.warning("model %s: its features changed while its reference was being collected; "
                                "collecting again", spec.name)
                m.dirty.add(key)  # collected for a reference that exists now, or for other features: deleted
            elif key not in stale:
                _load(m, key, state)
        if self._drop_legacy:
            m.dirty.update(m.keys())
        return m

    def _segments(self, spec: ModelSpec, refs: dict, states: dict[str, dict]) -> SegmentDrift:
        """The model's segment monitors, with their stored open windows."""
        rows = None
        if spec.reference.path is not None:
            from driftline.streams.files import read_table
            rows = lambda: read_table(spec.reference.path)  # noqa: E731 - read once, when a segment needs it
        seg = SegmentDrift(spec, refs, rows)
        seg.load(states, self._monitor)
        return seg

    @staticmethod
    def _labels(spec: ModelSpec, states: dict[str, dict], profile: ReferenceProfile | None) -> RealizedPerformance:
        count = spec.window.size is not None
        ref = profile.performance if profile is not None else None
        ages = tuple(r.after for r in spec.rules if r.after is not None)
        if not states:
            return RealizedPerformance(spec.name, spec.labels, count, reference=ref, ages=ages)
        try:
            return RealizedPerformance.from_state(spec.name, spec.labels, count, states, reference=ref, ages=ages)
        except st.StateError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - as _load: whatever a stored state makes go wrong
            raise st.unreadable(f"model {spec.name}, its labels", f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _fits(state: dict, spec: ModelSpec, profile: ReferenceProfile | None) -> bool:
        return (profile is not None and state.get("window") == window_key(spec)
                and state.get("reference") == reference_key(profile))

    def _convert_legacy(self) -> dict[tuple[str, str], dict]:
        blob = self.store.state.load_checkpoint(self.group)
        if blob is None:
            return {}
        converted, binned_on = legacy.convert(blob), legacy.profiles(blob)
        for (model, key), state in converted.items():
            spec = self.settings.model(model)
            if key != MODEL_KEY and spec is not None and model in binned_on:
                # the configuration the old release ran is not in the blob: the current one is assumed
                state |= {"window": window_key(spec),
                          "reference": reference_key(ReferenceProfile.from_dict(binned_on[model]))}
        log.warning("converted the checkpoint of the previous release (one pickle for group %s) into %d keyed "
                    "state(s); it is deleted at the next checkpoint", self.group, len(converted))
        self._drop_legacy = True
        return converted

    def set_reference(self, profile: ReferenceProfile) -> None:
        monitor = self.monitors[profile.model]
        monitor.profile = profile
        if profile.model in self.labels:
            self.labels[profile.model].set_reference(profile.performance)
        if monitor.pending:  # events collected for a reference from the stream: not needed now
            monitor.pending = []
            monitor.dirty.add(MODEL_KEY)

    def reload(self) -> None:
        """Forget everything since the last checkpoint and start again from the store."""
        self.pending = None
        self._restore()
        self.router.restore()

    def process(self, batch: Batch, force: bool = False) -> dict[tuple[str, int], int] | None:
        """Process one batch; return offsets to commit to the source, if a checkpoint was written.

        A checkpoint that the store or the dead-letter topic could not take stays ``pending``
        (the error is raised); :meth:`retry_pending` writes it once they are back."""
        unit = self._stage(batch, force)
        return None if unit is None else self._checkpoint(unit)

    def retry_pending(self) -> dict[tuple[str, int], int] | None:
        """Write the checkpoint that an outage held back; raise again while it lasts."""
        return None if self.pending is None else self._checkpoint(self.pending)

    def _stage(self, batch: Batch, force: bool) -> CommitUnit | None:
        started = self.clock()
        now = self.wall()
        decoded = self.decoder.decode(batch, int(now * 1000)) if batch.values else None
        unit = CommitUnit()
        if decoded is not None:
            self._bad(decoded.bad, decoded.invalid)
            for (model, version), cols in decoded.groups.items():
                closed, built = self.monitors[model].ingest(version, cols, now)
                if built is not None:
                    unit.references.append(built)
                    if built.empty_features():
                        log.warning("model %s: the reference (%s) has no values for %s; they will not be "
                                    "tested", model, built.source, ", ".join(built.empty_features()))
                self._predictions(model, version)  # first: a window this batch closes holds its predictions
                closing = [(self.monitors[model], w, None) for w in closed]
                if model in self.segments:
                    closing += self._segment(model, version, cols, unit, now)
                self._close_in_order(closing, unit, now)
            for model, labels in decoded.labels.items():
                self.labels[model].join(labels.ids, labels.label, labels.ts)
            for realized in self.labels.values():
                realized.expire()  # by the newest event or label time seen
        self._close_in_order(self._closing(lambda m: m.close_idle(now)), unit, now)
        unit.add(self.router.tick(self._silence(now) if self._no_data else {}, now))
        if decoded is not None:
            self.metrics.observe_batch(decoded, self.clock() - started)
        self.offsets.update(batch.next_offsets)
        self._dirty = self._dirty or bool(batch.next_offsets)
        due = self.clock() - self._last_checkpoint >= self.checkpoint_every
        if not (unit.windows or unit.references or unit.alert_states or unit.notifications or force
                or (due and self._dirty)):
            return None
        return self._with_state(unit)

    def _segment(self, model: str, version: str, cols, unit: CommitUnit, now: float) -> list[tuple]:
        """The batch's events of ``version`` into the model's segment monitors; the windows they closed."""
        seg = self.segments[model]
        closed, built = seg.ingest(version, cols, now, self.monitors[model].watermark(version))
        unit.references += built
        return [(m, w, seg.segment_of(m, w)) for m, w in closed]

    def _closing(self, close) -> list[tuple]:
        """``close(monitor)`` of every monitor, segments' too: ``(monitor, window, segment or None)``."""
        out = [(m, w, None) for m in self.monitors.values() for w in close(m)]
        for seg in self.segments.values():
            out += [(m, w, seg.segment_of(m, w)) for m, w in seg.closing(close)]
        return out

    def _close_in_order(self, closing: list[tuple], unit: CommitUnit, now: float | None = None) -> None:
        """Summarise and route closed windows in the order of their ends, a segment's before its
        version's of the same end (so that a segment's alert joins the incident its version's
        window would resolve, however the windows fell into batches)."""
        for m, w, segment in sorted(closing, key=lambda c: (c[1].bounds[1], c[2] is None)):
            self._close(m, w, unit, now, segment)

    def _predictions(self, model: str, version: str) -> None:
        """Hold the windowed predictions of a model with labels for their labels."""
        realized, assigned = self.labels.get(model), self.monitors[model].assigned
        if realized is None or assigned is None or not assigned[0].n:
            return
        cols, windows, bounds = assigned
        segments = {s: cols.features[s].values for s in realized.spec.segments}
        realized.add(version, cols.ids, windows, cols.features["prediction"].values, cols.ts, bounds, segments)

    def _silence(self, now: float) -> dict[tuple[str, str], list[tuple[float, str]]]:
        newest = max((t for m in self.monitors.values() for t in m.last_event.values()), default=0)
        return {(name, v): x for name, m in self.monitors.items()
                for v, x in m.silence(now, self.started, newest).items()}

    def unstored_for(self) -> float:
        """Seconds since the last checkpoint while records read after it wait for one (else 0)."""
        return self.clock() - self._last_checkpoint if self._dirty else 0.0

    def _with_state(self, unit: CommitUnit) -> CommitUnit:
        """The offsets, and the state of every key changed since the last checkpoint (only those)."""
        unit.offsets = dict(self.offsets)
        for name, monitor in self.monitors.items():
            self._states(unit, name, "", monitor)
        for name, seg in self.segments.items():
            for key in sorted(seg.deleted):
                unit.states[(name, key, ALL_SOURCES)] = None
            seg.deleted = set()
            for prefix, monitor, stored in seg.items():
                self._states(unit, name, prefix, monitor, stored)
            if seg.table.dirty:
                unit.states[(name, CODES, ALL_SOURCES)] = st.encode(seg.table.to_state(), self._secret)
                seg.table.stored()
        for name, realized in self.labels.items():
            for revision in realized.revisions():
                unit.performance.append(revision)
                unit.add(self.router.route_performance(revision, self.wall()))
            for key, state in realized.dirty_state().items():
                unit.states[(name, key, ALL_SOURCES)] = None if state is None else st.encode(state, self._secret)
            realized.clean()
        unit.drop_legacy, self._drop_legacy = self._drop_legacy, False
        return unit

    def _states(self, unit: CommitUnit, name: str, prefix: str, monitor: ModelMonitor, stored=str) -> None:
        """The changed keys of one monitor (a segment's under its ``prefix``, named ``stored(key)``)."""
        for key in sorted(monitor.dirty):
            state = monitor.to_state(key)
            if state is not None and key != MODEL_KEY:
                state |= {"window": window_key(monitor.spec), "reference": reference_key(monitor.profile)}
            unit.states[(name, prefix + stored(key), ALL_SOURCES)] = \
                None if state is None else st.encode(state, self._secret)
        monitor.clean()

    def _checkpoint(self, unit: CommitUnit) -> dict[tuple[str, int], int]:
        self.pending = unit
        self.dead_letter.flush()  # dead letters are durable before their offsets are
        started = self.clock()
        self.store.commit(self.group, unit)
        self.pending = None
        self.metrics.observe_commit(self.clock() - started)
        for state in unit.alert_states:
            self.metrics.observe_alert(state)
        self._dirty, self._last_checkpoint = False, self.clock()
        for summary in unit.windows:
            self.metrics.observe_window(summary)
            self._print(summary)
        for revision in unit.performance:
            self._print(revision)
        self.metrics.observe_labels(self.labels, unit.performance)
        return unit.offsets

    def _print(self, summary: dict) -> None:
        """The stored window on the output; a closed stdout (``run | head``) is not the input's fault."""
        try:
            self.output(summary)
        except (OSError, ValueError) as exc:
            if not self._output_failed:
                log.error("could not print window summaries (they are stored): %s", exc)
            self._output_failed = True

    def end_of_input(self) -> dict[tuple[str, int], int]:
        """Close and summarise every open window (``closed_by: end_of_input``) and write
        a checkpoint; return the offsets to commit. For a replayed file only: the
        service over Kafka never calls it, its open windows are checkpointed and resumed."""
        unit = CommitUnit()
        self._close_in_order(self._closing(lambda m: m.close_all()), unit)
        return self._write(unit)

    def _write(self, unit: CommitUnit) -> dict[tuple[str, int], int]:
        return self._checkpoint(self._with_state(unit))

    def _bad(self, bad: list[BadRecord], invalid: dict) -> None:
        for record in bad:
            self.dead_letter.send(record)
            if record.model not in self.monitors:
                self.unknown_invalid += 1
        for (model, version), n in invalid.items():
            self.monitors[model].add_invalid(version, n)

    def _close(self, monitor: ModelMonitor, w: Window, unit: CommitUnit, now: float | None = None,
               segment: dict | None = None) -> None:
        summary = monitor.summarise(w)
        if segment is not None:
            summary["segment"] = segment
        unit.windows.append(summary)
        if segment is None and monitor.spec.name in self.labels:  # its estimate is complete
            self.labels[monitor.spec.name].closed(w.version, w.seq if monitor.spec.window.size else w.start_ms)
        unit.add(self.router.route(summary, self.wall() if now is None else now))
