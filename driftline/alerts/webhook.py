"""Retraining triggers over HTTP: a CloudEvent to any endpoint, or a preset body.

Presets shape the request for common pipelines:

- ``cloudevents`` (default): the structured-mode CloudEvent, ``content-type:
  application/cloudevents+json``.
- ``github``: a ``repository_dispatch`` (``POST /repos/OWNER/REPO/dispatches``) with
  ``event_type`` and the trigger's data as ``client_payload``.
- ``github_workflow``: a ``workflow_dispatch`` (``POST
  /repos/OWNER/REPO/actions/workflows/WORKFLOW/dispatches``) on ``ref``, with six string
  ``inputs`` (:data:`WORKFLOW_INPUTS`; the workflow must declare them all): the evidence is
  one JSON string, cut to stay within GitHub's limit on the size of ``inputs``.
- ``airflow``: an Airflow 2 DAG run (``POST /api/v1/dags/DAG/dagRuns``) with the data as
  ``conf``; ``airflow3``: the same for Airflow 3 (``POST /api/v2/dags/DAG/dagRuns``,
  ``logical_date: null``). The run id is derived from the CloudEvent id, so Airflow's
  HTTP 409 (that run exists) means an earlier attempt got through: a success.

The trigger payload is ``{"type": "trigger", "event": CloudEvent}``, optionally with
``model``, ``version``, ``time`` and ``incident`` beside ``event`` (docs/alerting.md);
the incident id, when there is one, is added to the data the presets send.

Every request carries the event id as ``Idempotency-Key`` and, when a secret is set,
``X-Driftline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
which a receiver checks with :func:`verify` (it refuses a timestamp more than
``tolerance`` seconds away, so a captured request cannot be replayed later). With
``legacy_signature`` the old ``sha256=HMAC(secret, body)`` is sent as well, in
``X-Driftline-Signature-Legacy``. HTTP 429 or 503 becomes :class:`ThrottledError`
(with ``Retry-After``, when given); other failures are retried by the outbox. Redirects
are not followed (urllib would turn the POST into a GET, or take the token elsewhere).
Error messages name the endpoint by ``scheme://host[:port]/…`` only: its path and query
may hold a token.

>>> body, headers = render("github", {"id": "e1", "data": {"model": "m"}}, "driftline-retrain")
>>> body
{'event_type': 'driftline-retrain', 'client_payload': {'model': 'm', 'cloudevent_id': 'e1'}}
>>> body, _ = render("airflow3", {"id": "e1", "data": {"model": "m"}}, "driftline-retrain")
>>> body
{'dag_run_id': 'driftline-e1', 'logical_date': None, 'conf': {'model': 'm', 'cloudevent_id': 'e1'}}
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import orjson

from driftline.alerts.values import reason
from driftline.errors import DeliveryError, ThrottledError
from driftline.redact import url_display
from driftline.types import Receipt

PRESETS = ("cloudevents", "github", "github_workflow", "airflow", "airflow3")
#: the ``workflow_dispatch`` inputs sent, all strings (a workflow may declare 10, or 25 since late 2025)
WORKFLOW_INPUTS = ("model", "version", "reason", "cloudevent_id", "window_end", "evidence")
#: GitHub refuses ``inputs`` longer than this (65,535 characters); counted in UTF-8 bytes, to be safe
INPUTS_LIMIT = 65_535
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_GITHUB = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "Content-Type": "application/json"}
HEADERS = {"cloudevents": {"Content-Type": "application/cloudevents+json"}, "github": _GITHUB,
           "github_workflow": _GITHUB, "airflow": _JSON, "airflow3": _JSON}


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def render(preset: str, event: dict, event_type: str, incident: str | None = None,
           ref: str = "main") -> tuple[dict, dict]:
    """The request body and headers for a CloudEvent ``event``."""
    data = {**event["data"], "cloudevent_id": event["id"]}
    if incident is not None:
        data["incident"] = incident
    if preset not in HEADERS:
        raise ValueError(f"unknown webhook preset {preset!r} (expected {', '.join(PRESETS)})")
    if preset == "github":
        body = {"event_type": event_type, "client_payload": data}
    elif preset == "github_workflow":
        body = {"ref": ref, "inputs": workflow_inputs(event, incident)}
    elif preset == "airflow":
        body = {"dag_run_id": run_id(event), "conf": data}
    elif preset == "airflow3":  # Airflow 3 requires logical_date (null: none) and refuses unknown keys
        body = {"dag_run_id": run_id(event), "logical_date": None, "conf": data}
    else:
        body = event
    return body, dict(HEADERS[preset])


def run_id(event: dict) -> str:
    """The Airflow DAG run id: the same for every delivery of one CloudEvent."""
    return f"driftline-{event['id']}"


def workflow_inputs(event: dict, incident: str | None = None, limit: int = INPUTS_LIMIT) -> dict[str, str]:
    """The ``workflow_dispatch`` inputs: strings only, at most ``limit`` bytes as JSON.

    The evidence is the rest of the data as one JSON string (always valid JSON); when it
    does not fit, the least drifted subjects are left out and counted in ``drifted_omitted``.

    >>> ev = {"id": "e1", "time": "2026-11-24T12:05:00.000Z", "data": {"model": "m", "version": 3,
    ...       "reason": "feature_drift", "drifted": {"a": {"statistic": 9.0, "threshold": 1.0},
    ...                                              "b": {"statistic": 1.5, "threshold": 1.0}}}}
    >>> workflow_inputs(ev)["version"], workflow_inputs(ev, limit=220)["evidence"]
    ('3', '{"drifted":{"a":{"statistic":9.0,"threshold":1.0}},"drifted_omitted":1}')
    """
    data = event.get("data") or {}
    window = data.get("window") if isinstance(data.get("window"), dict) else {}
    inputs = {"model": data.get("model"), "version": data.get("version"), "reason": data.get("reason"),
              "cloudevent_id": event["id"], "window_end": window.get("end") or event.get("time")}
    inputs = {k: "" if v is None else str(v) for k, v in inputs.items()}
    evidence = {k: v for k, v in data.items() if k not in ("model", "version", "reason")}
    if incident is not None:
        evidence["incident"] = incident
    inputs["evidence"] = _dumps(evidence).decode()
    drifted = evidence.get("drifted")
    if len(_dumps(inputs)) <= limit:
        return inputs
    order = sorted(drifted, key=lambda k: _severity(drifted[k]), reverse=True) if isinstance(drifted, dict) else []
    lo, hi = 0, len(order) - 1  # the most drifted subjects that fit: bisect on how many are kept
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _fits(inputs, evidence, drifted, order[:mid], limit) else (lo, mid - 1)
    if order and _fits(inputs, evidence, drifted, order[:lo], limit):
        return inputs | {"evidence": _cut(evidence, drifted, order[:lo])}
    return inputs | {"evidence": _dumps({"omitted": "too large for workflow_dispatch inputs"}).decode()}


def _cut(evidence: dict, drifted: dict, kept: list) -> str:
    return _dumps({**evidence, "drifted": {k: drifted[k] for k in kept},
                   "drifted_omitted": len(drifted) - len(kept)}).decode()


def _fits(inputs: dict, evidence: dict, drifted: dict, kept: list, limit: int) -> bool:
    return len(_dumps(inputs | {"evidence": _cut(evidence, drifted, kept)})) <= limit


def _severity(result) -> float:
    """statistic ÷ threshold, for ordering; anything unreadable sorts last."""
    try:
        return float(result["statistic"]) / float(result["threshold"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return float("-inf")


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: float) -> str:
    """The ``X-Driftline-Signature`` value for ``body`` sent at ``timestamp``."""
    t = int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def sign_legacy(secret: str, body: bytes) -> str:
    """The old, replayable signature (``legacy_signature: true`` only)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, header: str, body: bytes, tolerance: float = 300, now: float | None = None) -> bool:
    """Whether ``header`` (an ``X-Driftline-Signature``) signs ``body`` with ``secret``, at a
    time no more than ``tolerance`` seconds from ``now``. Several ``v1=`` entries may be
    given (one per secret while a secret is rotated); any one matching is enough.

    >>> header = sign("s3cret", b'{"id":"e1"}', timestamp=1_800_000_000)
    >>> header
    't=1800000000,v1=f9996b7dbc33656303d60e61a78865d9f5be41e692997ad3d178724a14320e00'
    >>> verify("s3cret", header, b'{"id":"e1"}', now=1_800_000_100)
    True
    >>> verify("s3cret", header, b'{"id":"e2"}', now=1_800_000_100)  # tampered body
    False
    >>> verify("s3cret", header, b'{"id":"e1"}', now=1_800_000_400)  # replayed 400 s later
    False
    """
    fields = [part.strip().partition("=") for part in (header or "").split(",")]
    stamps = [v for k, _, v in fields if k == "t"]
    macs = [v for k, _, v in fields if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not macs:
        return False
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    return any(hmac.compare_digest(expected, m) for m in macs)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx becomes an HTTPError: a DeliveryError naming the status


_OPENER = urllib.request.build_opener(_NoRedirect)


class WebhookSink:
    accepts = frozenset({"trigger"})

    def __init__(self, url: str, preset: str = "cloudevents", secret: str | None = None,
                 token: str | None = None, event_type: str = "driftline-retrain", timeout: float = 10.0,
                 legacy_signature: bool = False, clock=time.time, ref: str = "main"):
        if preset not in HEADERS:
            raise ValueError(f"unknown webhook preset {preset!r} (expected {', '.join(PRESETS)})")
        self.url, self.preset, self.secret, self.token = url, preset, secret, token
        self.event_type, self.timeout, self.ref = event_type, timeout, ref
        self.legacy_signature, self.clock = legacy_signature, clock

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        """POST the trigger; the receipt holds the endpoint's HTTP ``status``."""
        event = payload["event"]
        body = self.body(payload)
        try:
            request = urllib.request.Request(self.url, data=body, headers=self.headers(event, body), method="POST")
            with _OPENER.open(request, timeout=self.timeout) as resp:
                return Receipt(detail={"status": resp.status})
        except urllib.error.HTTPError as exc:
            return self._answered(exc)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"webhook {self._where()} unreachable: {reason(exc)}") from exc
        except ValueError as exc:  # urllib's "unknown url type": the text would show the URL
            raise DeliveryError(f"webhook {self._where()} has an address urllib cannot use") from exc

    def body(self, payload: dict) -> bytes:
        """The request body for a trigger payload (either shape: with or without ``incident``)."""
        body_obj, _ = render(self.preset, payload["event"], self.event_type, _incident(payload), self.ref)
        return _dumps(body_obj)

    def headers(self, event: dict, body: bytes) -> dict:
        headers = HEADERS[self.preset] | {"Idempotency-Key": event["id"], "User-Agent": "driftline"}
        if self.secret:
            headers["X-Driftline-Signature"] = sign(self.secret, body, self.clock())
            if self.legacy_signature:
                headers["X-Driftline-Signature-Legacy"] = sign_legacy(self.secret, body)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _answered(self, exc: urllib.error.HTTPError) -> Receipt:
        """An HTTP error answer: Airflow's 409 for a run id it has is a success; the rest raise."""
        said = self._said(exc)
        if exc.code == 409 and self.preset in ("airflow", "airflow3"):
            return Receipt(detail={"status": 409, "note": "already triggered"})
        if exc.code in (429, 503):
            raise ThrottledError(f"webhook {self._where()} answered {exc.code}{said}",
                                 _retry_after(exc.headers.get("Retry-After") if exc.headers else None,
                                              self.clock())) from exc
        raise DeliveryError(f"webhook {self._where()} answered HTTP {exc.code}{said}") from exc

    def _said(self, exc: urllib.error.HTTPError) -> str:
        """The ``message``/``detail`` of a JSON error answer (GitHub's, Airflow's), without
        the URL's path, query or the token, cut to 200 characters; ``""`` when there is none."""
        try:
            answer = orjson.loads(exc.read(4096))
        except (OSError, ValueError, http.client.HTTPException):
            return ""
        text = (answer.get("message") or answer.get("detail")) if isinstance(answer, dict) else None
        if not text:
            return ""
        text = " ".join(str(text).split())
        parts = urlsplit(self.url)
        for secret in (parts.path if parts.path not in ("", "/") else "", parts.query, self.token, self.secret):
            if secret:
                text = text.replace(secret, "…")
        return f": {text[:200]}"

    def _where(self) -> str:
        return url_display(self.url)  # never the path or query: they may hold a token


def _incident(payload: dict) -> str | None:
    """The incident id of a trigger payload, when it has one (a string, or an object's ``id``)."""
    incident = payload.get("incident")
    if isinstance(incident, dict):
        incident = incident.get("id")
    return None if incident is None else str(incident)


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now) if when.tzinfo is not None else None

