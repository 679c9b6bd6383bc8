"""Incidents to a Prometheus Alertmanager (``POST {url}/api/v2/alerts``), re-sent like Prometheus does.

Each alert of an incident is one Alertmanager alert (a ``postableAlert`` of the API v2):

- labels ``alertname`` (the rule), ``model``, ``version``, ``severity``,
  ``service="driftline"``, ``incident`` (the incident id) and, for a feature-level
  alert, ``subject`` (the feature);
- annotations ``summary``, ``description`` (the evidence, one line a fact) and
  ``dashboard`` (the incident's ``url``, also its ``generatorURL``) when there is one;
- ``startsAt`` the alert's ``since`` (never later than now, so ``endsAt`` is not before it);
  ``endsAt`` now + 4 × ``resend_interval`` while it fires, now once it resolved.

Alertmanager forgets an alert at its ``endsAt``, so Prometheus re-sends firing alerts
every ``resend_delay``; this sink does the same. It keeps the last snapshot of every open
incident it sent (:meth:`resume` seeds them from the store at start) and :meth:`refresh`
re-posts an incident's firing alerts once ``resend_interval`` has passed since its last
post. A ``resolved`` notification posts every alert with ``endsAt`` = now and, once that
succeeded, the incident is forgotten.

**Inhibited alerts are not sent.** driftline already inhibits a version's feature-level
alerts while a model-level one fires (docs/alerting.md); sending them to Alertmanager too
would page for them unless it were configured with a matching inhibit rule, and a label
such as ``inhibited="true"`` would make the same alert a different one in Alertmanager
each time it changed. An alert that was sent firing and is now inhibited (or no longer
firing) is posted once with ``endsAt`` = now, so Alertmanager resolves it at once.

Answers: 200 is a :class:`Receipt` with the ``status`` and the number of ``alerts``; 429
and 503 are :class:`ThrottledError` (with ``Retry-After`` when sent); any other status or
an unreachable server is :class:`DeliveryError` (a 400 names Alertmanager's reason). A
bearer token or basic-auth password is in the ``Authorization`` header only, never in a
message or a log line.

>>> inc = {"id": "9f1c0a7e5b2d4c3a1e0f", "model": "fraud", "version": "v3", "url": None,
...        "alerts": [{"rule": "amount_drift", "level": "feature", "subject": "amount",
...                    "severity": "critical", "status": "firing", "since": "2026-11-18T11:07:00.000Z"}]}
>>> (alert,) = postable(inc, now=1_795_000_200.0, ends=1_795_000_200.0 + 4 * 60)
>>> sorted(alert["labels"].items())  # doctest: +NORMALIZE_WHITESPACE
[('alertname', 'amount_drift'), ('incident', '9f1c0a7e5b2d4c3a1e0f'), ('model', 'fraud'),
 ('service', 'driftline'), ('severity', 'critical'), ('subject', 'amount'), ('version', 'v3')]
>>> alert["startsAt"], alert["endsAt"]
('2026-11-18T11:07:00.000Z', '2026-11-18T11:14:00.000Z')
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import orjson

from driftline.alerts.values import alerts_of, error_body, mapping, ratio, reason, retry_after
from driftline.errors import DeliveryError, ThrottledError
from driftline.redact import url_display
from driftline.types import Receipt, iso, to_ms

log = logging.getLogger(__name__)

MAX_FEATURE_LINES = 10
RETRY_FAILED_REFRESH = 10.0  # seconds before a refresh that failed is tried again (at most resend_interval)


def firing(inc: dict) -> list[dict]:
    return [a for a in alerts_of(inc) if a.get("status") == "firing"]


def labels(inc: dict, alert: dict) -> dict[str, str]:
    out = {"alertname": str(alert.get("rule")), "model": str(inc["model"]), "version": str(inc["version"]),
           "severity": str(alert.get("severity") or inc.get("severity") or "warning"),
           "service": "driftline", "incident": str(inc["id"])}
    if alert.get("level") == "feature" and alert.get("subject"):
        out["subject"] = str(alert["subject"])
    return out


def annotations(inc: dict, alert: dict) -> dict[str, str]:
    what = f" on {alert['subject']}" if alert.get("subject") else ""
    out = {"summary": f"{inc['model']} {inc['version']}: {alert.get('rule')}{what} is {_num(alert.get('value'))} "
                      f"(threshold {_num(alert.get('threshold'))})",
           "description": "\n".join(evidence(inc))}
    if inc.get("url"):
        out["dashboard"] = str(inc["url"])
    return out


def evidence(inc: dict) -> list[str]:
    """The incident's evidence as lines: title, worst result, features (the worst few), windows."""
    lines = [str(inc["title"])] if inc.get("title") else []
    worst = mapping(inc, "worst")
    if worst.get("feature") is not None:
        lines.append(f"worst: {worst['feature']} {worst.get('method')} statistic {_num(worst.get('statistic'))} "
                     f"against threshold {_num(worst.get('threshold'))} ({_num(worst.get('ratio'))}×)")
    features = mapping(inc, "features")
    if features:
        ranked = sorted(features, key=lambda k: -ratio(features[k]))
        shown = ", ".join(f"{k} ({_num(mapping(features, k).get('ratio'))}×)" for k in ranked[:MAX_FEATURE_LINES])
        more = f" and {len(ranked) - MAX_FEATURE_LINES} more" if len(ranked) > MAX_FEATURE_LINES else ""
        lines.append(f"drifted features ({len(ranked)}): {shown}{more}")
    windows = mapping(inc, "windows")
    if windows.get("count"):
        lines.append(f"windows: {windows['count']}, {windows.get('first')} to {windows.get('last')}")
    return lines


def postable(inc: dict, now: float, ends: float, alerts: list[dict] | None = None) -> list[dict]:
    """The ``postableAlert`` list for ``alerts`` (default: the incident's firing ones)."""
    out = []
    for alert in firing(inc) if alerts is None else alerts:
        starts = min(_seconds(alert.get("since") or inc.get("opened_at"), now), now)
        item = {"labels": labels(inc, alert), "annotations": annotations(inc, alert),
                "startsAt": _rfc3339(starts), "endsAt": _rfc3339(max(ends, starts))}
        if inc.get("url"):
            item["generatorURL"] = str(inc["url"])
        out.append(item)
    return out


@dataclass
class _Open:
    """What the sink remembers of an open incident."""

    incident: dict
    posted: float = -math.inf  # when its firing alerts were last accepted
    retry_at: float = -math.inf  # a failed refresh is not tried again before this
    fingerprints: set = field(default_factory=set)  # the alerts posted firing last time


class AlertmanagerSink:
    accepts = frozenset({"incident"})

    def __init__(self, url: str, resend_interval: float = 60.0, token: str | None = None,
                 username: str | None = None, password: str | None = None, timeout: float = 10.0,
                 clock=time.time):
        if resend_interval <= 0:
            raise ValueError(f"resend_interval must be positive, got {resend_interval!r}")
        self.url, self.resend_interval, self.timeout, self.clock = url.rstrip("/"), resend_interval, timeout, clock
        self._auth = _authorization(token, username, password)  # private: never in repr, message or log
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AlertmanagerSink(url={url_display(self.url)!r}, open={len(self._open)})"

    @property
    def open_incidents(self) -> list[str]:
        return sorted(self._open)

    def resume(self, incidents: list[dict]) -> None:
        """Remember the open incidents as stored (at start): the next :meth:`refresh` re-sends them."""
        with self._lock:
            for item in incidents:
                inc = item.get("incident") if isinstance(item, dict) and item.get("type") == "incident" else item
                if not isinstance(inc, dict) or not all(inc.get(k) for k in ("id", "model", "version")):
                    log.warning("Alertmanager: an open incident without id, model or version is not re-sent")
                elif inc.get("status") != "resolved":
                    self._open[inc["id"]] = _Open(inc, fingerprints={_fp(a) for a in firing(inc)})

    def forget(self, incident: str) -> None:
        """Stop re-sending ``incident`` (its resolved notice was given up or silenced)."""
        with self._lock:
            self._open.pop(incident, None)

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        """Post the incident's alerts: firing ones until now + 4 × resend_interval, ended ones until now."""
        if kind != "incident":
            raise DeliveryError(f"Alertmanager takes incidents, not {kind!r}")
        inc, now = payload["incident"], self.clock()
        with self._lock:
            known = self._open.get(inc["id"])
            if payload.get("event") == "resolved" or inc.get("status") == "resolved":
                return self._resolve(inc, known, now)
            ended = self._ended(inc, known)
            alerts = postable(inc, now, now + 4 * self.resend_interval) + postable(inc, now, now, ended)
            status = self._post(alerts, inc["id"])
            self._open[inc["id"]] = _Open(inc, posted=now, fingerprints={_fp(a) for a in firing(inc)})
        return Receipt(detail={"status": status, "alerts": len(alerts)})

    def _resolve(self, inc: dict, known: _Open | None, now: float) -> Receipt:
        if known is not None:
            known.retry_at = math.inf  # never re-sent as firing while the resolve is retried
        every = {_fp(a): a for a in self._ended(inc, known)} | {_fp(a): a for a in alerts_of(inc)}
        alerts = postable(inc, now, now, list(every.values()))
        status = self._post(alerts, inc["id"])
        self._open.pop(inc["id"], None)
        return Receipt(detail={"status": status, "alerts": len(alerts)})

    @staticmethod
    def _ended(inc: dict, known: _Open | None) -> list[dict]:
        """Alerts posted firing last time that are not firing now (inhibited, resolved or gone)."""
        if known is None:
            return []
        now_firing = {_fp(a) for a in firing(inc)}
        listed = {_fp(a): a for a in alerts_of(inc)}
        return [listed.get(_fp(a), a) for a in firing(known.incident)
                if _fp(a) in known.fingerprints and _fp(a) not in now_firing]

    def refresh(self, now: float) -> None:
        """Re-post every open incident whose last post is ``resend_interval`` old; the first error is
        raised after the others were tried (an unreachable or throttling Alertmanager stops the pass)."""
        errors: list[DeliveryError] = []
        with self._lock:
            for inc_id, known in list(self._open.items()):
                if now - known.posted < self.resend_interval or now < known.retry_at:
                    continue
                try:
                    self._post(postable(known.incident, now, now + 4 * self.resend_interval), inc_id)
                except DeliveryError as exc:
                    known.retry_at = now + min(RETRY_FAILED_REFRESH, self.resend_interval)
                    errors.append(exc)
                    if isinstance(exc, (ThrottledError, _Unreachable)):
                        break
                    continue
                known.posted = now
        if errors:
            raise errors[0]

    def _post(self, alerts: list[dict], inc_id: str) -> int:
        headers = {"Content-Type": "application/json", "User-Agent": "driftline"}
        if self._auth:
            headers["Authorization"] = self._auth
        log.debug("Alertmanager: posting %d alert(s) of incident %s", len(alerts), inc_id)
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", method="POST", headers=headers,
                                         data=orjson.dumps(alerts))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            raise self._refused(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise _Unreachable(f"Alertmanager {url_display(self.url)} unreachable: {reason(exc)}") from exc
        except ValueError as exc:  # urllib's "unknown url type"
            raise _Unreachable(f"Alertmanager {url_display(self.url)} has an address urllib cannot use") from exc

    def _refused(self, exc: urllib.error.HTTPError) -> DeliveryError:
        where = url_display(self.url)
        if exc.code in (429, 503):
            return ThrottledError(f"Alertmanager {where} answered {exc.code}", retry_after(exc.headers.get("Retry-After")))
        said = error_body(exc)[:300].decode("utf-8", "replace").strip()
        for secret in self._auth.split(" ", 1)[1:]:
            said = said.replace(secret, "***")
        return DeliveryError(f"Alertmanager {where} answered HTTP {exc.code}" + (f": {said}" if said else ""))


class _Unreachable(DeliveryError):
    """No answer from Alertmanager: the rest of a refresh pass would wait for nothing."""


def _authorization(token: str | None, username: str | None, password: str | None) -> str:
    if token and (username or password):
        raise ValueError("give a bearer token or a username and password, not both")
    if token:
        return f"Bearer {token}"
    if username or password:
        if not (username and password):
            raise ValueError("basic auth needs both a username and a password")
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return ""


def _fp(alert: dict) -> str:
    return str(alert.get("fingerprint") or (alert.get("rule"), alert.get("subject")))


def _seconds(text: str | None, default: float) -> float:
    try:
        return max(to_ms(text) / 1000, 0.0) if text else default
    except (TypeError, ValueError, OverflowError, OSError):
        return default


def _rfc3339(seconds: float) -> str:
    return iso(int(round(seconds * 1000)))


def _num(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)

