"""From window summaries (and the clock) to what alerting must commit: alert state
changes, incidents, notifications per sink, retraining triggers (docs/alerting.md).

One :class:`Router` per service, built by the composition root from the settings and
the sinks' routes (sink name → the kinds it takes: ``alert``, ``incident``, ``trigger``),
and handed to the pipeline, which gives it every closed window (:meth:`Router.route`) and,
after every batch, how long each model version has been silent (:meth:`Router.tick`). It
holds the alert states, the open incidents and the trigger cooldowns, loads them from the
store (written by the pipeline's commit), and loads them again when the pipeline forgets
what it did since its last checkpoint.

Per window, for the window's model:

    rules → alert events → inhibition → incidents (group, evidence) → notifications
          → retraining trigger (policy, one per incident, cooldown)

Each notification carries an idempotency key, so a window replayed after a crash never
pages twice: ``{fingerprint}:{status}:{window_end}:{sink}`` for an alert event,
``incident:{id}:{event}:{window_end | repeat number}:{sink}`` for an incident's,
``trigger:{incident}:{window_end}:{sink}`` for a trigger.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from driftline.alerts.incidents import Incident, group_key
from driftline.alerts.rules import evaluate, fingerprint, labels, no_data, performance, segment_of, window_segment
from driftline.alerts.triggers import Cooldowns, cloud_event
from driftline.config.settings import ModelSpec, RuleSpec, Settings
from driftline.summary import drift_results
from driftline.types import AlertState, Notification, Routed, to_ms

log = logging.getLogger(__name__)

#: rules that request retraining unless ``retrain.rules`` names others: drift, not plumbing
_DRIFT_RULES = ("share", "count", "feature", "metric")  # rules whose firing asks for retraining by default


def retraining_rules(spec: ModelSpec) -> set[str]:
    if spec.retrain.rules is not None:
        return set(spec.retrain.rules)
    return {r.name for r in spec.rules
            if r.retrain and (r.concept_drift or any(getattr(r, k) is not None for k in _DRIFT_RULES))}


class Router:
    """Alert states, open incidents and cooldowns, advanced one window summary at a time."""

    STATE_FORMAT = 2

    def __init__(self, settings: Settings, routes: dict[str, frozenset[str]], store, group: str = "driftline",
                 clock=time.time):
        self.specs = {spec.name: spec for spec in settings.models}
        self.rules = {(spec.name, r.name): r for spec in settings.models for r in spec.rules}
        self.conf = settings.alerts
        self.routes, self.store, self.group, self.clock = dict(routes), store, group, clock
        self.restore()

    def restore(self) -> None:
        """Alert states, open incidents and last triggers as the store has them (what was committed)."""
        self.alerts: dict[str, AlertState] = self.store.results.load_alert_states()
        self.cooldowns = Cooldowns(self.store.results.load_last_triggers())
        self.incidents: dict[str, Incident] = {
            i.key: i for i in map(Incident.from_state, self.store.results.load_open_incidents())}

    # -- windows and the clock ----------------------------------------------------

    def route(self, summary: dict, now: float | None = None) -> Routed:
        """One closed window → the alert state changes, incidents, notifications and triggers it causes."""
        spec, out = self.specs[summary["model"]], Routed()
        events = [(rule, e) for rule in spec.rules if rule.no_data is None
                  if (e := self._transition(rule, summary, out)) is not None]
        self._apply(spec, window_segment(summary)[0], events, summary, self.clock() if now is None else now, out)
        return out

    def route_performance(self, revision: dict, now: float | None = None) -> Routed:
        """One revision of a window's performance → what its ``metric`` and ``concept_drift``
        rules cause (the same alert lifecycle, incidents and retraining triggers as windows; the
        trigger's evidence carries the performance numbers)."""
        spec, out = self.specs[revision["model"]], Routed()
        events = []
        for rule in spec.rules:
            if rule.metric is None and not rule.concept_drift:
                continue
            fp = fingerprint(revision["model"], revision["version"], rule, segment_of(revision))
            state, event = performance(rule, revision, self.alerts.get(fp))
            self._keep(state, out)
            if event is not None:
                events.append((rule, event))
        if events:
            w = revision["window"]
            window = {"model": revision["model"], "version": revision["version"], "start": w["start"],
                      "end": w["end"], "count": revision["count"]}
            self._apply(spec, revision["version"], events, None, self.clock() if now is None else now, out,
                        trigger_window=window)
        return out

    def tick(self, silence: dict[tuple[str, str], list[tuple[float, str]]], now: float | None = None,
             models: set[str] | None = None) -> Routed:
        """The no-data rules and repeat notices: ``silence`` is, per model version, what was
        observed in order: how long it sent nothing (seconds) up to its event at that time (a
        gap in event time that events after it ended, then the silence now). ``models``: repeat
        notices of these models' incidents only (scale-out: those whose merge lock is held)."""
        now, out = self.clock() if now is None else now, Routed()
        for (model, version), seen in silence.items():
            spec = self.specs.get(model)
            if spec is None:
                continue
            events = []
            for rule in spec.rules:
                if rule.no_data is None:
                    continue
                fp = fingerprint(model, version, rule)
                for silent_for, last in seen:
                    state, event = no_data(rule, model, version, silent_for, last, self.alerts.get(fp))
                    self._keep(state, out)
                    if event is not None:
                        events.append((rule, event))
            if events:
                self._apply(spec, version, events, None, now, out)
        for inc in list(self.incidents.values()):
            if models is not None and inc.model not in models:
                continue
            if inc.firing and now - inc.notified_at >= self.conf.repeat_interval:
                inc.repeats += 1
                self._notify(inc, "repeat", f"repeat{inc.repeats}", {"start": None, "end": inc.updated_at},
                             now, now, out)
        return out

    def _transition(self, rule: RuleSpec, summary: dict, out: Routed) -> dict | None:
        """Evaluate ``rule`` on the window; keep a changed state; return the alert event, if any."""
        version, segment = window_segment(summary)
        fp = fingerprint(summary["model"], version, rule, segment)
        state, event = evaluate(rule, summary, self.alerts.get(fp))
        self._keep(state, out)
        return event

    def _keep(self, state: AlertState, out: Routed) -> None:
        if state != self.alerts.get(state.fingerprint):
            self.alerts[state.fingerprint] = state
            out.alert_states.append(state)

    def _model_level_firing(self, model: str, version: str) -> bool:
        return any(s.status == "firing" and s.model == model and s.version == version
                   and (r := self.rules.get((model, s.rule))) is not None and r.level == "model"
                   for s in self.alerts.values())

    # -- incidents ----------------------------------------------------------------

    def _apply(self, spec: ModelSpec, version: str, events: list[tuple[RuleSpec, dict]],
               summary: dict | None, now: float, out: Routed, trigger_window: dict | None = None) -> None:
        """Alert events of one model version → their incidents, notifications and trigger
        (``trigger_window``: the window a performance revision is of, when there is no summary)."""
        touched: dict[str, tuple[Incident, set[str], list[str]]] = {}

        def mark(inc: Incident, what: str, new: list[str] = ()) -> None:
            entry = touched.setdefault(inc.key, (inc, set(), []))
            entry[1].add(what)
            entry[2].extend(n for n in new if n not in entry[2])

        inhibiting = self._model_level_firing(spec.name, version)
        for rule, event in events:
            inhibited = rule.level == "feature" and inhibiting
            event["inhibited"] = inhibited
            state = self.alerts[event["fingerprint"]]
            group = {k: labels(state, rule, event.get("segment")).get(k, "") for k in self.conf.group_by}
            inc = self.incidents.get(group_key(group))
            if event["status"] == "firing":
                if inc is None and not inhibited:
                    inc = Incident.open(group, spec.name, version, event["window_end"])
                    if self.conf.dashboard_url:
                        inc.url = f"{self.conf.dashboard_url.rstrip('/')}/models/{quote(spec.name, safe='')}/" \
                                  f"{quote(version, safe='')}"
                    self.incidents[inc.key] = inc
                    mark(inc, "opened")
                if inc is not None and inc.add_alert(event, rule.level, inhibited):
                    mark(inc, "updated")
            elif inc is not None and event["fingerprint"] in inc.alerts:
                inc.add_alert(event, rule.level)
                if not inc.firing:
                    inc.resolve(event["window_end"])
                    mark(inc, "resolved")
                else:
                    mark(inc, "changed")
            event["incident"] = inc.id if inc is not None else None
            self.fan_out(event, f"{event['fingerprint']}:{event['status']}:{event['window_end']}", out)
        if summary is not None:
            segment = window_segment(summary)[1]
            drifted = {k if segment is None else f"{segment}: {k}": v
                       for k, v in drift_results(summary).items() if v["drifted"]}
            for inc in self.incidents.values():
                if inc.status == "firing" and self._covers(inc, summary):
                    new = inc.add_evidence(drifted, summary["end"])
                    mark(inc, "updated" if new else "changed", new)
        for inc, what, new in touched.values():
            if (summary or trigger_window) is not None and inc.status == "firing":
                self._trigger(spec, inc, summary or trigger_window, out)
            end = summary["end"] if summary is not None else inc.updated_at
            window = {"start": summary["start"] if summary else None, "end": end}
            if "opened" in what:
                self._notify(inc, "opened", end, window, now, now + self.conf.group_wait, out, new)
            if "resolved" in what:  # also right after opening: a gap seen once events returned
                self._notify(inc, "resolved", end, window, now, now + ("opened" in what) * self.conf.group_wait,
                             out, new)
            elif "opened" in what:
                pass
            elif "updated" in what:
                self._notify(inc, "updated", end, window, now, max(now, inc.notified_at + self.conf.group_interval),
                             out, new)
            else:
                out.incidents.append(inc.to_state())  # evidence grew: stored, not sent
            if inc.status == "resolved":
                self.incidents.pop(inc.key, None)

    @staticmethod
    def _covers(inc: Incident, summary: dict) -> bool:
        """Whether the window belongs to the incident's group (its model, and its version if grouped by it)."""
        return summary["model"] == inc.model and ("version" not in inc.group
                                                  or inc.group["version"] == window_segment(summary)[0])

    def _notify(self, inc: Incident, event: str, suffix: str, window: dict, now: float, not_before: float,
                out: Routed, new: list[str] = ()) -> None:
        payload = {"type": "incident", "event": event, "window": window,
                   "incident": inc.snapshot(None if event == "opened" else list(new))}
        inc.notified_at = now
        self.fan_out(payload, f"incident:{inc.id}:{event}:{suffix}", out, not_before)
        out.incidents.append(inc.to_state())

    def fan_out(self, payload: dict, key: str, out: Routed, not_before: float = 0.0) -> None:
        """One notification per sink that takes this kind of payload."""
        kind = payload["type"]
        for sink, accepts in self.routes.items():
            if kind in accepts:
                out.notifications.append(Notification(f"{key}:{sink}", sink, kind, payload, not_before))

    # -- retraining ---------------------------------------------------------------

    def _trigger(self, spec: ModelSpec, inc: Incident, summary: dict, out: Routed) -> None:
        """One retraining request per incident, once a retraining rule in it has breached
        ``retrain.min_windows`` windows, unless the model version's cooldown holds it back."""
        if not spec.retrain.enabled or inc.trigger is not None:
            return
        wanted = retraining_rules(spec)
        ready = [self.alerts[a["fingerprint"]] for a in inc.firing if a["rule"] in wanted]
        ready = [s for s in ready if s.breaches >= spec.retrain.min_windows and s.last_event is not None]
        if not ready:
            return
        lead = ready[0]
        key, end = (summary["model"], window_segment(summary)[0]), to_ms(summary["end"])
        if not self.cooldowns.allows(key, end, spec.retrain.cooldown):
            log.info("retrain trigger for %s/%s held back by cooldown", *key)
            return
        self.cooldowns.record(key, end)
        perf = {a["rule"]: self.alerts[a["fingerprint"]].last_event["features"] for a in inc.firing
                if self.rules.get((spec.name, a["rule"])) is not None
                and (self.rules[(spec.name, a["rule"])].metric or self.rules[(spec.name, a["rule"])].concept_drift)
                and self.alerts[a["fingerprint"]].last_event is not None}
        event = cloud_event(lead.last_event, summary, self.group, inc.snapshot(), perf)
        inc.trigger = event["id"]
        trigger = {"type": "trigger", "model": summary["model"], "version": key[1],
                   "time": summary["end"], "incident": inc.id, "event": event}
        out.triggers.append(trigger)
        self.fan_out(trigger, f"trigger:{inc.id}:{summary['end']}", out)

    # -- state --------------------------------------------------------------------

    def to_state(self) -> dict:
        return {"format": self.STATE_FORMAT, "alerts": [s.to_dict() for s in self.alerts.values()],
                "incidents": [i.to_state() for i in self.incidents.values()],
                "cooldowns": self.cooldowns.to_state()}

    def load_state(self, state: dict) -> None:
        """The inverse of :meth:`to_state` (a bad format raises ``ValueError``)."""
        if not isinstance(state, dict) or state.get("format") != self.STATE_FORMAT:
            raise ValueError(f"alert routing state: format is not {self.STATE_FORMAT}")
        alerts = [AlertState.from_dict(d) for d in state["alerts"]]
        self.alerts = {s.fingerprint: s for s in alerts}
        self.incidents = {i.key: i for i in (Incident.from_state(d) for d in state["incidents"])}
        self.cooldowns = Cooldowns.from_state(state["cooldowns"])
