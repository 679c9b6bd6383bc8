"""Real HTTP servers standing in for PagerDuty's Events API v2 and Alertmanager's API v2,
and a builder of ``incident`` notification payloads shaped like docs/alerting.md's example.

The stand-ins (on :class:`tests.http_standin.HttpStandIn`) check what the real services check
(required fields, allowed values, the ``postableAlert`` schema, ``endsAt`` not before
``startsAt``) and answer as they do, so a test sees the same 202 / 200 / 400 the real service
would give. ``answers`` is a queue of ``(status, body, headers)`` served before the normal
answer (429, 500, …); ``hang`` holds every request that long without answering (a timeout)."""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st

from tests.http_standin import HttpStandIn

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PD_SEVERITIES = {"critical", "error", "warning", "info"}


class FakePagerDuty(HttpStandIn):
    """``POST /v2/enqueue`` as PagerDuty answers it: 202 with ``dedup_key``, or 400 ``invalid event``."""

    def answer(self, request: dict) -> tuple[int, object, dict]:
        if request["path"] != "/v2/enqueue":
            return 404, {"status": "not found"}, {}
        problems = pagerduty_problems(request["body"])
        if problems:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": problems}, {}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": request["body"]["dedup_key"]}, {}


def pagerduty_problems(event) -> list[str]:
    """What PagerDuty would refuse in an Events API v2 body (its documented required fields and limits)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    out = []
    if len(str(event.get("routing_key") or "")) != 32:
        out.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        out.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    if len(str(event.get("dedup_key") or "")) > 255:
        out.append("'dedup_key' is longer than 255 characters")
    if event.get("event_action") == "trigger":
        p = event.get("payload") or {}
        for name in ("summary", "source", "severity"):
            if not p.get(name):
                out.append(f"'payload.{name}' is missing or blank")
        if p.get("severity") and p["severity"] not in PD_SEVERITIES:
            out.append("'payload.severity' is invalid")
        if "timestamp" in p and not _iso(p["timestamp"]):
            out.append("'payload.timestamp' is not an ISO 8601 time")
        if len(str(p.get("summary") or "")) > 1024:
            out.append("'payload.summary' is longer than 1024 characters")
    if len(json.dumps(event)) > 512 * 1024:
        out.append("Event is larger than 512 KB")
    return out


def _iso(value) -> bool:
    from datetime import datetime
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


class FakeAlertmanager(HttpStandIn):
    """``POST /api/v2/alerts`` as Alertmanager answers it: 200, or 400 with its reason as text.
    With ``auth`` set, any other ``Authorization`` header is a 401."""

    def __init__(self, *args, auth: str | None = None, **kw):
        super().__init__(*args, **kw)
        self.auth = auth

    def answer(self, request: dict) -> tuple[int, object, dict]:
        if request["path"] != "/api/v2/alerts":
            return 404, b"not found", {}
        if self.auth is not None and request["headers"].get("authorization") != self.auth:
            return 401, b"Unauthorized", {}
        problems = alertmanager_problems(request["body"])
        return (400, "; ".join(problems).encode(), {}) if problems else (200, b"", {})

    def posted(self) -> list[dict]:
        """Every alert posted, in order."""
        return [a for body in self.bodies() if isinstance(body, list) for a in body]


def alertmanager_problems(alerts) -> list[str]:
    """What Alertmanager would refuse in a ``postableAlerts`` body (API v2 schema, and its own checks)."""
    if not isinstance(alerts, list):
        return ["body must be a list of alerts"]
    out = []
    for i, a in enumerate(alerts):
        if not isinstance(a, dict) or not isinstance(a.get("labels"), dict) or not a["labels"]:
            out.append(f"alert {i}: labels are required")
            continue
        unknown = set(a) - {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        if unknown:
            out.append(f"alert {i}: unknown fields {sorted(unknown)}")
        for k, v in {**a["labels"], **(a.get("annotations") or {})}.items():
            if not LABEL_NAME.match(k) or not isinstance(v, str):
                out.append(f"alert {i}: invalid label or annotation {k!r}")
        for key in ("startsAt", "endsAt"):
            if key in a and not RFC3339.match(str(a[key])):
                out.append(f"alert {i}: {key} is not RFC3339")
        if a.get("startsAt") and a.get("endsAt") and a["endsAt"] < a["startsAt"]:
            out.append(f"alert {i}: start time must be before end time")
    return out


def incident_payload(event: str = "opened", *, id: str = "9f1c0a7e5b2d4c3a1e0f", model: str = "fraud",
                     version: str = "v3", severity: str = "warning", n_features: int = 1, status: str | None = None,
                     alerts: list[dict] | None = None, url: str | None = "http://127.0.0.1:8765/models/fraud/v3",
                     updated_at: str = "2026-11-18T11:07:02.000Z") -> dict:
    """An ``incident`` notification payload like docs/alerting.md's example, with ``n_features``
    drifted features (``f000``… the worst first when there are many; the first is ``amount``)."""
    status = status or ("resolved" if event == "resolved" else "firing")
    names = ["amount"] + [f"f{i:03d}" for i in range(1, n_features)]
    features = {name: {"method": "meanvar", "statistic": 32.8 / (i + 1), "threshold": 4.45, "p_value": 5.5e-236,
                       "ratio": 7.37 / (i + 1), "effect": {"mean_shift_sd": 0.84},
                       "first_window": "2026-11-18T11:07:02.000Z", "worst_window": "2026-11-18T11:07:02.000Z"}
                for i, name in enumerate(names)}
    if alerts is None:
        alerts = [model_alert(severity=severity, status="ok" if status == "resolved" else "firing")]
    return {"type": "incident", "event": event,
            "window": {"start": "2026-11-18T11:07:00.000Z", "end": "2026-11-18T11:07:02.000Z"},
            "incident": {
                "id": id, "group": {"model": model, "version": version}, "model": model, "version": version,
                "status": status, "severity": severity, "title": f"{model} {version}: {n_features} of 11 subjects drifted",
                "opened_at": "2026-11-18T11:07:00.000Z", "updated_at": updated_at,
                "resolved_at": updated_at if status == "resolved" else None,
                "alerts": alerts, "features": features, "new_features": names if event == "opened" else [],
                "worst": {"feature": "amount", "method": "meanvar", "statistic": 32.8, "threshold": 4.45, "ratio": 7.37},
                "windows": {"first": "2026-11-18T11:07:02.000Z", "last": updated_at, "count": 1},
                "url": url}}


def model_alert(rule: str = "feature_drift", severity: str = "warning", status: str = "firing",
                fingerprint: str = "a560e9f0daf261d2326d") -> dict:
    return {"fingerprint": fingerprint, "rule": rule, "level": "model", "subject": "amount, country, …",
            "severity": severity, "status": status, "value": 0.72, "threshold": 0.25,
            "since": "2026-11-18T11:07:00.000Z"}


def feature_alert(subject: str = "amount", rule: str = "amount_drift", severity: str = "critical",
                  status: str = "firing", fingerprint: str = "b1") -> dict:
    return {"fingerprint": fingerprint, "rule": rule, "level": "feature", "subject": subject, "severity": severity,
            "status": status, "value": 32.8, "threshold": 4.45, "since": "2026-11-18T11:07:00.000Z"}


# -- any incident: for the property tests (a payload of another release, odd values) --------------

JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
ALERT = st.dictionaries(st.sampled_from(["fingerprint", "rule", "level", "subject", "severity", "status", "value",
                                         "threshold", "since"]), JSON | st.sampled_from(["firing", "feature", "x"]))
INCIDENT = st.fixed_dictionaries(
    {"id": st.text("0123456789abcdef", min_size=20, max_size=20), "model": st.text(min_size=1, max_size=8),
     "version": st.text(min_size=1, max_size=8)},
    optional={"title": JSON, "severity": JSON | st.sampled_from(["critical", "info"]), "status": JSON,
              "alerts": st.lists(ALERT | JSON, max_size=4) | JSON, "features": st.dictionaries(st.text(max_size=6), JSON),
              "worst": JSON, "windows": JSON, "new_features": JSON, "updated_at": JSON, "opened_at": JSON,
              "url": st.none() | st.just("http://127.0.0.1:8765/models/m/v")})
