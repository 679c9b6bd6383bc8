"""Retraining triggers over HTTP: a CloudEvent to any endpoint, or a preset body.

Presets shape the request for common pipelines:

- ``cloudevents`` (default): the structured-mode CloudEvent, ``content-type:
  application/cloudevents+json``.
- ``github``: a ``repository_dispatch`` (``POST /repos/OWNER/REPO/dispatches``) with
  ``event_type`` and the trigger's data as ``client_payload``.
- ``airflow``: a DAG run (``POST /api/v1/dags/DAG/dagRuns``) with the data as ``conf``.

Every request carries ``X-Driftline-Signature: sha256=HMAC(secret, body)`` when a
secret is set, and the event id as ``Idempotency-Key``. HTTP 429 or 503 with
``Retry-After`` becomes :class:`ThrottledError`; other failures are retried by the outbox.

>>> body, headers = render("github", {"id": "e1", "data": {"model": "m"}}, "driftline-retrain")
>>> body
{'event_type': 'driftline-retrain', 'client_payload': {'model': 'm', 'cloudevent_id': 'e1'}}
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request

import orjson

from driftline.errors import DeliveryError, ThrottledError

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


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    accepts = frozenset({"trigger"})

    def __init__(self, url: str, preset: str = "cloudevents", secret: str | None = None,
                 token: str | None = None, event_type: str = "driftline-retrain", timeout: float = 10.0):
        render(preset, {"id": "", "data": {}}, event_type)  # validates the preset
        self.url, self.preset, self.secret, self.token = url, preset, secret, token
        self.event_type, self.timeout = event_type, timeout

    def send(self, kind: str, payload: dict, key: str) -> None:
        event = payload["event"]
        body_obj, headers = render(self.preset, event, self.event_type)
        body = orjson.dumps(body_obj, option=orjson.OPT_SERIALIZE_NUMPY)
        headers |= {"Idempotency-Key": event["id"], "User-Agent": "driftline"}
        if self.secret:
            headers["X-Driftline-Signature"] = sign(self.secret, body)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (429, 503):
                retry = exc.headers.get("Retry-After")
                raise ThrottledError(f"webhook {self._where()} answered {exc.code}",
                                     float(retry) if retry and retry.isdigit() else None) from exc
            raise DeliveryError(f"webhook {self._where()} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"webhook {self._where()} unreachable: {exc}") from exc

    def _where(self) -> str:
        return self.url.split("?")[0]  # never log a query string: it may hold a token
