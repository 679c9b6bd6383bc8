"""From window summaries to what alerting must commit: alert state changes,
notifications per sink, retraining triggers.

One :class:`Router` per service, built by the composition root from the settings
and the sinks' routes (sink name → the kinds it takes, ``alert`` and ``trigger``),
and handed to the pipeline, which gives it every closed window. It holds the alert
states and the trigger cooldowns, loads them from the store (the ``alerts`` and
``triggers`` tables, written by the pipeline's commit), and loads them again when
the pipeline forgets what it did since its last checkpoint.

Per window, per rule of its model, four small stages:

    evaluate + transition → route to sinks → trigger (cooldown) → CloudEvent

Each notification carries an idempotency key, so a window replayed after a crash
never pages twice: ``{fingerprint}:{status}:{window_end}:{sink}`` for an alert,
``trigger:{fingerprint}:{window_end}:{sink}`` for a trigger.
"""

from __future__ import annotations

import logging

from driftline.alerts.rules import evaluate, fingerprint
from driftline.alerts.triggers import Cooldowns, cloud_event
from driftline.config.settings import ModelSpec, RuleSpec, Settings
from driftline.types import AlertState, Notification, Routed, to_ms

log = logging.getLogger(__name__)


class Router:
    """Alert states and cooldowns, advanced one window summary at a time."""

    STATE_FORMAT = 1

    def __init__(self, settings: Settings, routes: dict[str, frozenset[str]], store, group: str = "driftline"):
        self.specs = {spec.name: spec for spec in settings.models}
        self.routes, self.store, self.group = dict(routes), store, group
        self.restore()

    def restore(self) -> None:
        """Alert states and last triggers as the store has them (what was committed)."""
        self.alerts: dict[str, AlertState] = self.store.results.load_alert_states()
        self.cooldowns = Cooldowns(self.store.results.load_last_triggers())

    def route(self, summary: dict) -> Routed:
        """One closed window → the alert state changes, notifications and triggers it causes."""
        spec, out = self.specs[summary["model"]], Routed()
        for rule in spec.rules:
            event = self.transition(rule, summary, out)
            if event is None:
                continue
            self.fan_out(event, f"{event['fingerprint']}:{event['status']}:{summary['end']}", out)
            if event["status"] == "firing" and rule.retrain:
                self.trigger(spec, event, summary, out)
        return out

    def transition(self, rule: RuleSpec, summary: dict, out: Routed) -> dict | None:
        """Evaluate ``rule`` on the window; keep a changed state; return the alert event, if any."""
        fp = fingerprint(summary["model"], summary["version"], rule)
        state, event = evaluate(rule, summary, self.alerts.get(fp))
        if state != self.alerts.get(fp):
            self.alerts[fp] = state
            out.alert_states.append(state)
        return event

    def fan_out(self, payload: dict, key: str, out: Routed) -> None:
        """One notification per sink that takes this kind of payload."""
        kind = payload["type"]
        for sink, accepts in self.routes.items():
            if kind in accepts:
                out.notifications.append(Notification(f"{key}:{sink}", sink, kind, payload))

    def trigger(self, spec: ModelSpec, event: dict, summary: dict, out: Routed) -> None:
        """A retraining request for a firing alert, unless the model version's cooldown holds it back."""
        if not spec.retrain.enabled:
            return
        key, end = (event["model"], event["version"]), to_ms(summary["end"])
        if not self.cooldowns.allows(key, end, spec.retrain.cooldown):
            log.info("retrain trigger for %s/%s held back by cooldown", *key)
            return
        self.cooldowns.record(key, end)
        trigger = {"type": "trigger", "event": cloud_event(event, summary, self.group)}
        out.triggers.append(trigger)
        self.fan_out(trigger, f"trigger:{event['fingerprint']}:{summary['end']}", out)

    def to_state(self) -> dict:
        return {"format": self.STATE_FORMAT, "alerts": [s.to_dict() for s in self.alerts.values()],
                "cooldowns": self.cooldowns.to_state()}

    def load_state(self, state: dict) -> None:
        """The inverse of :meth:`to_state` (a bad format raises ``ValueError``)."""
        if not isinstance(state, dict) or state.get("format") != self.STATE_FORMAT:
            raise ValueError(f"alert routing state: format is not {self.STATE_FORMAT}")
        alerts = [AlertState.from_dict(d) for d in state["alerts"]]
        self.alerts = {s.fingerprint: s for s in alerts}
        self.cooldowns = Cooldowns.from_state(state["cooldowns"])
