"""Incidents to PagerDuty over the Events API v2 (``POST {url}/v2/enqueue``).

One driftline incident is one PagerDuty alert: its ``dedup_key`` is the incident id
(docs/alerting.md), so ``opened``, ``updated`` and ``repeat`` are ``trigger`` events on
the same alert and ``resolved`` (or an incident the store already has as resolved when
the notification is delivered) is a ``resolve``. A trigger carries a summary of at most
1024 characters, ``source`` (``driftline/<model>/<version>`` unless configured), the
severity (``critical``, ``warning``, ``info``; anything else is sent as ``error``), the
model as ``component``, the version as ``group``, the rules as ``class``, and the
evidence as ``custom_details``: the worst result, the windows, the alerts and the
drifted features, at most :data:`MAX_FEATURES` of them (the worst, by statistic ÷
threshold) with a count of the rest, so a 500-feature incident stays far below the
512 KB PagerDuty takes.

Answers: 202 is a :class:`Receipt` with the ``status`` and the ``dedup_key``; 429 is
:class:`ThrottledError` (``Retry-After`` when sent, else :data:`DEFAULT_RETRY_AFTER`
seconds, what PagerDuty suggests); 5xx, a refused connection and a timeout are
:class:`DeliveryError`. A 400 (invalid event) is a :class:`DeliveryError` naming
PagerDuty's message: it will not succeed as it is, but the outbox retries it until
``alerts.delivery_deadline`` like any other failure. The routing key is a secret: it is
in the request body only, never in an error message or a log line.

>>> payload = {"event": "opened", "incident": {
...     "id": "9f1c0a7e5b2d4c3a1e0f", "model": "fraud", "version": "v3", "status": "firing",
...     "severity": "critical", "title": "fraud v3: 1 of 4 subjects drifted",
...     "updated_at": "2026-11-18T11:07:02.000Z", "url": None,
...     "alerts": [{"rule": "feature_drift", "status": "firing"}], "features": {}}}
>>> body = event(payload, "R" * 32)
>>> body["event_action"], body["dedup_key"], body["payload"]["severity"], body["payload"]["source"]
('trigger', '9f1c0a7e5b2d4c3a1e0f', 'critical', 'driftline/fraud/v3')
>>> event({**payload, "event": "resolved"}, "R" * 32)["event_action"]
'resolve'
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from datetime import datetime

import orjson

from driftline.alerts.values import alerts_of, error_body, mapping, ratio, reason, retry_after
from driftline.errors import DeliveryError, ThrottledError
from driftline.redact import url_display
from driftline.types import Receipt

log = logging.getLogger(__name__)

DEFAULT_URL = "https://events.pagerduty.com"
DEFAULT_RETRY_AFTER = 30.0  # PagerDuty sends no Retry-After; its docs suggest retrying 30 s apart
MAX_SUMMARY = 1024
MAX_FEATURES = 50
MAX_ALERTS = 50
MAX_BYTES = 500_000  # PagerDuty refuses events over 512 KB
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def resolving(payload: dict) -> bool:
    """Whether the notification resolves its incident (by its event, or by the incident as stored)."""
    return payload.get("event") == "resolved" or payload["incident"].get("status") == "resolved"


def event(payload: dict, routing_key: str, source: str | None = None) -> dict:
    """The Events API v2 body for an ``incident`` notification."""
    inc = payload["incident"]
    body = {"routing_key": routing_key, "dedup_key": inc["id"]}
    if resolving(payload):
        return body | {"event_action": "resolve"}
    fields = {
        "summary": summary(inc),
        "source": source or f"driftline/{inc['model']}/{inc['version']}",
        "severity": SEVERITY.get(str(inc.get("severity")), "error"),
        "timestamp": _timestamp(inc.get("updated_at")) or _timestamp(inc.get("opened_at")),
        "component": str(inc["model"]), "group": str(inc["version"]),
        "class": ", ".join(sorted({str(a.get("rule")) for a in alerts_of(inc)})) or "drift",
        "custom_details": details(inc)}
    body |= {"event_action": "trigger", "client": "driftline",
             "payload": {k: v for k, v in fields.items() if v is not None}}  # no timestamp: PagerDuty's arrival time
    if inc.get("url"):
        body |= {"links": [{"href": inc["url"], "text": "dashboard"}], "client_url": inc["url"]}
    return body


def summary(inc: dict) -> str:
    """The incident's title and its worst result, cut to :data:`MAX_SUMMARY` characters."""
    text = str(inc.get("title") or f"{inc['model']} {inc['version']}: drift incident")
    worst = mapping(inc, "worst")
    if worst.get("feature") is not None:
        text += f"; worst {worst['feature']} ({worst.get('method')}, {_num(worst.get('ratio'))}× its threshold)"
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 1] + "…"


def details(inc: dict, max_features: int = MAX_FEATURES) -> dict:
    """The evidence: bounded, the worst features first."""
    features = mapping(inc, "features")
    ranked = sorted(features, key=lambda name: -ratio(features[name]))
    alerts = sorted(alerts_of(inc), key=lambda a: a.get("status") != "firing")
    new = inc.get("new_features")
    out = {"incident": inc["id"], "status": inc.get("status"), "title": inc.get("title"),
           "opened_at": inc.get("opened_at"), "worst": inc.get("worst"), "windows": inc.get("windows"),
           "alerts": alerts[:MAX_ALERTS], "features": {name: features[name] for name in ranked[:max_features]},
           "features_total": len(features), "new_features": list(new)[:max_features] if isinstance(new, list) else []}
    if len(features) > max_features:
        out["features_not_shown"] = len(features) - max_features
    if len(alerts) > MAX_ALERTS:
        out["alerts_not_shown"] = len(alerts) - MAX_ALERTS
    return out


def _timestamp(value) -> str | None:
    """``value`` when it is an ISO-8601 time (PagerDuty's ``timestamp``), else ``None``."""
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return value


def _num(value) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)


def encode(body: dict) -> bytes:
    """JSON, under :data:`MAX_BYTES`: when the features' details are too big, only their names."""
    data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    cd = body.get("payload", {}).get("custom_details")
    if len(data) <= MAX_BYTES or cd is None:
        return data
    slim = cd | {"features": list(cd["features"]), "alerts": cd["alerts"][:5]}
    return orjson.dumps(body | {"payload": body["payload"] | {"custom_details": slim}},
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class PagerDutySink:
    accepts = frozenset({"incident"})

    def __init__(self, routing_key: str, url: str = DEFAULT_URL, source: str | None = None, timeout: float = 10.0):
        if not routing_key:
            raise ValueError("PagerDutySink needs a routing key (the integration key)")
        self._routing_key = routing_key.strip()  # private: never in repr, message or log
        self.url, self.source, self.timeout = url.rstrip("/"), source, timeout

    def __repr__(self) -> str:
        return f"PagerDutySink(url={url_display(self.url)!r})"

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        """Trigger or resolve the incident's PagerDuty alert; the receipt holds the status and dedup key."""
        if kind != "incident":
            raise DeliveryError(f"PagerDuty takes incidents, not {kind!r}")
        body = event(payload, self._routing_key, self.source)
        log.debug("PagerDuty %s for incident %s (%s)", body["event_action"], body["dedup_key"], key)
        try:
            data = encode(body)
        except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot hold
            raise DeliveryError(f"PagerDuty event for incident {body['dedup_key']} cannot be encoded: {exc}") from exc
        status, answer = self._post(data)
        return Receipt(detail={"status": status, "dedup_key": answer.get("dedup_key") or body["dedup_key"]})

    def _post(self, data: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.url}/v2/enqueue", data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "driftline"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            raise self._refused(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"PagerDuty {url_display(self.url)} unreachable: {reason(exc)}") from exc
        except ValueError as exc:  # urllib's "unknown url type"
            raise DeliveryError(f"PagerDuty {url_display(self.url)} has an address urllib cannot use") from exc

    def _refused(self, exc: urllib.error.HTTPError) -> DeliveryError:
        where = url_display(self.url)
        if exc.code == 429:
            return ThrottledError(f"PagerDuty {where} rate limit (HTTP 429)",
                                  retry_after(exc.headers.get("Retry-After"), DEFAULT_RETRY_AFTER))
        answer = _json(error_body(exc))
        said = "; ".join(str(x) for x in [answer.get("message"), *(answer.get("errors") or [])] if x)
        said = self._clean(said)[:500]
        if exc.code == 400:
            return DeliveryError(f"PagerDuty {where} refused the event as invalid (HTTP 400: {said or 'no reason'}); "
                                 "it will be refused again as it is, and is retried until alerts.delivery_deadline")
        return DeliveryError(f"PagerDuty {where} answered HTTP {exc.code}" + (f": {said}" if said else ""))

    def _clean(self, text: str) -> str:
        return text.replace(self._routing_key, "***")


def _json(raw: bytes) -> dict:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}

