"""Incidents as the API answers them: the stored incident's snapshot with its deliveries
(the outbox rows of its notifications, per sink), its retraining trigger and, for one
incident, its timeline. Plain data from the store's reads; no HTTP here.

>>> notification_key("incident:9f1c:opened:2026-11-18T11:07:02.000Z:pagerduty", "pagerduty")
('opened', '2026-11-18T11:07:02.000Z')
>>> trigger_status([{"status": "sent"}, {"status": "pending"}])
'pending'
"""

from __future__ import annotations

from driftline.alerts.incidents import Incident

#: a trigger's status from its deliveries': the first of these any delivery has
_TRIGGER_ORDER = ("failed", "pending", "silenced", "superseded", "sent")
_DELIVERY = ("sink", "status", "attempts", "last_error", "receipt", "created_at", "sent_at")


def snapshot(state: dict) -> dict:
    """The incident as notifications carry it; a stored state this release cannot rebuild
    (another release's) is shown as stored."""
    try:
        shot = Incident.from_state(state).snapshot()
    except (TypeError, KeyError, ValueError, AttributeError):
        return {k: state.get(k) for k in ("id", "model", "version", "status", "severity", "opened_at",
                                          "updated_at", "resolved_at", "features", "trigger", "url")}
    shot.pop("new_features", None)  # what one notification added: not the incident's
    return shot


def notification_key(key: str, sink: str) -> tuple[str, str]:
    """``incident:{id}:{event}:{suffix}:{sink}`` → (event, suffix); the suffix (a window end) has colons."""
    rest = key.split(":", 3)
    tail = rest[3] if len(rest) > 3 else ""
    return (rest[2] if len(rest) > 2 else "", tail.removesuffix(":" + sink))


def delivery(row: dict) -> dict:
    event, suffix = notification_key(row["key"], row["sink"])
    return {"event": event, "suffix": suffix, **{k: row[k] for k in _DELIVERY}}


def trigger_status(deliveries: list[dict]) -> str | None:
    statuses = {d["status"] for d in deliveries}
    return next((s for s in _TRIGGER_ORDER if s in statuses), None)


def _by_incident(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["key"].split(":", 2)[1], []).append(r)
    return out


def trigger(cloud_event_id: str | None, events: dict[str, dict], rows: list[dict], full: bool = False) -> dict | None:
    """The incident's trigger: its CloudEvent's id, type and time, and its delivery status per sink."""
    if cloud_event_id is None and not rows:
        return None
    ev = events.get(cloud_event_id) or {}
    deliveries = [{k: r[k] for k in _DELIVERY} for r in rows]
    out = {"id": cloud_event_id or None, "type": ev.get("type"), "time": ev.get("time"),
           "status": trigger_status(deliveries), "deliveries": deliveries}
    return out | {"event": ev or None} if full else out


def items(browse, rows: list[dict]) -> list[dict]:
    """A page of incident rows → each one's snapshot with ``deliveries`` and ``trigger``."""
    ids = [r["id"] for r in rows]
    sent = _by_incident(browse.notifications("incident", ids))
    fired = _by_incident(browse.notifications("trigger", ids, per_id=20))
    shots = [snapshot(r["state"]) for r in rows]
    events = browse.triggers_by_id([s["trigger"] for s in shots if s.get("trigger")])
    return [s | {"deliveries": [delivery(d) for d in sent.get(r["id"], [])],
                 "trigger": trigger(s.get("trigger"), events, fired.get(r["id"], []))}
            for r, s in zip(rows, shots)]


def detail(browse, row: dict) -> dict:
    """One incident: its snapshot, deliveries, trigger (with the CloudEvent) and timeline."""
    s = snapshot(row["state"])
    sent = browse.notifications("incident", [row["id"]])
    events = browse.triggers_by_id([s["trigger"]] if s.get("trigger") else [])
    fingerprints = [a["fingerprint"] for a in s.get("alerts") or [] if isinstance(a, dict) and a.get("fingerprint")]
    alerts = browse.incident_events(row["id"], fingerprints)
    return s | {"deliveries": [delivery(d) for d in sent],
                "trigger": trigger(s.get("trigger"), events, browse.notifications("trigger", [row["id"]]), True),
                "timeline": timeline(alerts, sent)}


def timeline(alert_rows: list[dict], sent: list[dict]) -> list[dict]:
    """The incident's alert events and notifications in event time; at one time an alert event
    comes before the notification it caused. A notification lists its delivery to each sink."""
    entries = [(a["payload"].get("window_end") or "", 0, a["id"],
                {**a["payload"], "type": "alert", "time": a["payload"].get("window_end")}) for a in alert_rows]
    notes: dict[tuple[str, str], dict] = {}
    for r in sent:
        event, suffix = notification_key(r["key"], r["sink"])
        window = r.get("window") if isinstance(r.get("window"), dict) else {}
        note = notes.setdefault((event, suffix), {
            "type": "notification", "event": event, "window": window or None,
            "time": window.get("end") or suffix, "new_features": r.get("new_features") or [],
            "first_id": r["id"], "deliveries": []})
        note["deliveries"].append({k: r[k] for k in _DELIVERY})
    entries += [(n["time"] or "", 1, n.pop("first_id"), n) for n in notes.values()]
    return [e for *_, e in sorted(entries, key=lambda x: x[:3])]
