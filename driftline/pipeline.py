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

from driftline.alerts.rules import evaluate, fingerprint
from driftline.config.settings import ModelSpec, Settings
from driftline.detectors.profile import ReferenceProfile
from driftline.metrics import NullMetrics
from driftline.monitor import ModelMonitor, profile_fits
from driftline.streams.decode import Decoder
from driftline.streams.windows import Window
from driftline.types import AlertState, BadRecord, Batch, CommitUnit, Notification, to_ms

log = logging.getLogger(__name__)


class Pipeline:
    """Decode → windows → drift → rules; one :class:`CommitUnit` per checkpoint.

    ``sinks`` maps each sink's name to the kinds it takes (``alert``, ``trigger``).
    """

    def __init__(self, settings: Settings, store, sinks: dict[str, frozenset[str]], dead_letter, output,
                 group: str = "driftline", checkpoint_every: float = 5.0, clock=time.monotonic,
                 wall=time.time, metrics=None):
        self.settings, self.store, self.sinks = settings, store, sinks
        self.dead_letter, self.output, self.group = dead_letter, output, group
        self.checkpoint_every, self.clock, self.wall = checkpoint_every, clock, wall
        self.metrics = metrics or NullMetrics()
        self.decoder = Decoder(settings.models)
        self.unknown_invalid = 0
        self.pending: CommitUnit | None = None
        self._output_failed = False
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
            if m is not None and not resumable(m, profile, spec):
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

    def reload(self) -> None:
        """Forget everything since the last checkpoint and start again from the store."""
        self.pending = None
        self._restore()

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
                for w in closed:
                    self._close(self.monitors[model], w, unit)
        for monitor in self.monitors.values():
            for w in monitor.close_idle(now):
                self._close(monitor, w, unit)
        if decoded is not None:
            self.metrics.observe_batch(decoded, self.clock() - started)
        self.offsets.update(batch.next_offsets)
        self._dirty = self._dirty or bool(batch.next_offsets)
        due = self.clock() - self._last_checkpoint >= self.checkpoint_every
        if not (unit.windows or unit.references or force or (due and self._dirty)):
            return None
        unit.offsets = dict(self.offsets)
        unit.checkpoint = pickle.dumps(self.monitors, protocol=pickle.HIGHEST_PROTOCOL)
        return unit

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
        for monitor in self.monitors.values():
            for w in monitor.close_all():
                self._close(monitor, w, unit)
        return self._write(unit)

    def _write(self, unit: CommitUnit) -> dict[tuple[str, int], int]:
        unit.offsets = dict(self.offsets)
        unit.checkpoint = pickle.dumps(self.monitors, protocol=pickle.HIGHEST_PROTOCOL)
        return self._checkpoint(unit)

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
            if event["status"] == "firing" and rule.retrain:
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


def resumable(monitor: ModelMonitor, stored: ReferenceProfile | None, spec: ModelSpec) -> bool:
    """Whether a checkpointed monitor goes on under ``spec``: one with a reference keeps its
    open windows if they still fit; one still collecting its reference from the first events
    (none stored yet) keeps what it collected, whose offsets the checkpoint already covers."""
    if monitor.spec.window != spec.window:
        return False
    if monitor.profile is None:
        return stored is None and monitor.spec.all_features() == spec.all_features()
    return stored is not None and profile_fits(monitor.profile, spec)


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
