"""Retraining triggers over HTTP: a CloudEvent to any endpoint, or a preset body.

Presets shape the request for common pipelines:

- ``cloudevents`` (default): the structured-mode CloudEvent, ``content-type:
  application/cloudevents+json``.
- ``github``: a ``repository_dispatch`` (``POST /repos/OWNER/REPO/dispatches``) with
  ``event_type`` and the trigger's data as ``client_payload``.
- ``airflow``: a DAG run (``POST /api/v1/dags/DAG/dagRuns``) with the data as ``conf``.

Every request carries the event id as ``Idempotency-Key`` and, when a secret is set,
``X-Driftline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
which a receiver checks with :func:`verify` (it refuses a timestamp more than
``tolerance`` seconds away, so a captured request cannot be replayed later). With
``legacy_signature`` the old ``sha256=HMAC(secret, body)`` is sent as well, in
``X-Driftline-Signature-Legacy``. HTTP 429 or 503 with ``Retry-After`` becomes
:class:`ThrottledError`; other failures are retried by the outbox. Error messages name
the endpoint by ``scheme://host[:port]/…`` only: its path and query may hold a token.

>>> body, headers = render("github", {"id": "e1", "data": {"model": "m"}}, "driftline-retrain")
>>> body
{'event_type': 'driftline-retrain', 'client_payload': {'model': 'm', 'cloudevent_id': 'e1'}}
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request

import orjson

from driftline.errors import DeliveryError, ThrottledError
from driftline.redact import url_display
from driftline.types import Receipt

PRESETS = ("cloudevents", "github", "airflow")


def render(preset: str, event: dict, event_type: str) -> tuple[dict, dict]:
    """The request body and content type for a CloudEvent ``event``."""
    data = {**event["data"], "cloudevent_id": event["id"]}
    if preset == "github":
        return {"event_type": event_type, "client_payload": data}, {"Accept": "application/vnd.github+json",
                                                                    "Content-Type": "application/json"}
    if preset == "airflow":
        return {"dag_run_id": f"driftline-{event['id']}", "conf": data}, {"Content-Type": "application/json"}
    if preset == "cloudevents":
        return event, {"Content-Type": "application/cloudevents+json"}
    raise ValueError(f"unknown webhook preset {preset!r} (expected {', '.join(PRESETS)})")


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


class WebhookSink:
    accepts = frozenset({"trigger"})

    def __init__(self, url: str, preset: str = "cloudevents", secret: str | None = None,
                 token: str | None = None, event_type: str = "driftline-retrain", timeout: float = 10.0,
                 legacy_signature: bool = False, clock=time.time):
        render(preset, {"id": "", "data": {}}, event_type)  # validates the preset
        self.url, self.preset, self.secret, self.token = url, preset, secret, token
        self.event_type, self.timeout = event_type, timeout
        self.legacy_signature, self.clock = legacy_signature, clock

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        """POST the trigger; the receipt holds the endpoint's HTTP ``status``."""
        event = payload["event"]
        body_obj, headers = render(self.preset, event, self.event_type)
        body = orjson.dumps(body_obj, option=orjson.OPT_SERIALIZE_NUMPY)
        headers |= {"Idempotency-Key": event["id"], "User-Agent": "driftline"}
        if self.secret:
            headers["X-Driftline-Signature"] = sign(self.secret, body, self.clock())
            if self.legacy_signature:
                headers["X-Driftline-Signature-Legacy"] = sign_legacy(self.secret, body)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return Receipt(detail={"status": resp.status})
        except urllib.error.HTTPError as exc:
            if exc.code in (429, 503):
                retry = exc.headers.get("Retry-After")
                raise ThrottledError(f"webhook {self._where()} answered {exc.code}",
                                     float(retry) if retry and retry.isdigit() else None) from exc
            raise DeliveryError(f"webhook {self._where()} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"webhook {self._where()} unreachable: {_reason(exc)}") from exc
        except ValueError as exc:  # urllib's "unknown url type": the text would show the URL
            raise DeliveryError(f"webhook {self._where()} has an address urllib cannot use") from exc

    def _where(self) -> str:
        return url_display(self.url)  # never the path or query: they may hold a token


def _reason(exc: OSError) -> str:
    """Why a request failed, without the URL (``URLError`` wraps the socket's error)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, str):
        return reason
    return reason.strerror if isinstance(reason, OSError) and reason.strerror else reason.__class__.__name__
