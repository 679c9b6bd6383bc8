"""Which notifications a silence mutes: the dispatcher's silence stage (docs/alerting.md, "Silences").

The value types (:class:`Matcher`, :class:`Silence`, :func:`parse_matcher`) live in
``driftline/silencing.py``, where the store can reach them too; this module holds the
decision, :func:`is_silenced`, made on every delivery pass with the silences active then.

- ``alert``: labels ``model``, ``version``, ``rule``, ``subject``, ``severity`` from the
  payload; muted when one active silence matches them. As in Alertmanager (its
  ``MuteStage`` drops every alert whose labels an active silence matches, resolved ones
  too) a ``resolved`` notice is muted while the silence is still active; once the silence
  has ended, it is sent.
- ``incident``: muted when every *firing* alert in ``incident.alerts`` is matched by an
  active silence, each alert's labels being the incident's ``model`` and ``version`` with
  the alert's ``rule``, ``subject`` and ``severity``; inhibited alerts do not count. An
  incident with no firing alert left (its ``resolved`` notice) is muted when every one of
  its alerts (inhibited ones aside) is matched: the resolved notice of a silenced incident
  stays quiet while the silence lasts, like an alert's. An incident with no alerts is sent.
- ``trigger``: never muted. A retraining request is not a page to a person: muting it
  would silently skip a retrain the policy asked for, and its cooldown would still run.

>>> s = Silence(1, [parse_matcher("model=fraud"), parse_matcher("rule=~feature_.*")], 0.0, 3600.0)
>>> alert = {"status": "firing", "model": "fraud", "version": "v3", "rule": "feature_drift",
...          "subject": "amount", "severity": "warning"}
>>> is_silenced("alert", alert, [s], now=10.0), is_silenced("alert", alert, [s], now=3600.0)
(True, False)
>>> incident = {"incident": {"model": "fraud", "version": "v3", "alerts": [
...     {"rule": "feature_drift", "subject": "amount", "severity": "warning", "status": "firing"},
...     {"rule": "volume", "subject": "", "severity": "critical", "status": "firing"}]}}
>>> is_silenced("incident", incident, [s], now=10.0)  # the volume alert is not matched
False
>>> is_silenced("trigger", {"model": "fraud"}, [s], now=10.0)
False
"""

from __future__ import annotations

from driftline.silencing import LABELS, Matcher, Silence, parse_matcher

__all__ = ["LABELS", "SILENCEABLE", "Matcher", "Silence", "alert_labels", "incident_alert_labels", "is_silenced", "parse_matcher"]

SILENCEABLE = frozenset({"alert", "incident"})  # the kinds a silence can mute


def alert_labels(payload: dict) -> dict[str, str]:
    """An ``alert`` payload's labels (a label it lacks is ``""``)."""
    return {name: _text(payload.get(name)) for name in LABELS}


def incident_alert_labels(incident: dict, alert: dict) -> dict[str, str]:
    """The labels of one alert of an incident: the incident's model and version, the alert's rest."""
    return {"model": _text(incident.get("model")), "version": _text(incident.get("version")),
            "rule": _text(alert.get("rule")), "subject": _text(alert.get("subject")),
            "severity": _text(alert.get("severity"))}


def _text(value) -> str:
    return "" if value is None else str(value)


def is_silenced(kind: str, payload: dict, silences: list[Silence], now: float) -> bool:
    """Whether the notification (``kind``, ``payload``) is muted at ``now`` by one of ``silences``."""
    active = [s for s in silences if s.active(now)]
    if not active:
        return False
    if kind == "alert":
        return _muted(alert_labels(payload), active)
    if kind == "incident":
        return _incident_muted(payload.get("incident") or {}, active)
    return False  # triggers (and any kind added later) are never muted: SILENCEABLE


def _muted(labels: dict, active: list[Silence]) -> bool:
    return any(s.matches(labels) for s in active)


def _incident_muted(incident: dict, active: list[Silence]) -> bool:
    alerts = [a for a in incident.get("alerts") or [] if isinstance(a, dict)]
    counted = [a for a in alerts if a.get("status") == "firing"] or \
              [a for a in alerts if a.get("status") != "inhibited"]
    return bool(counted) and all(_muted(incident_alert_labels(incident, a), active) for a in counted)
