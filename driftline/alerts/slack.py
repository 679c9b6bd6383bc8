"""The Slack sink: the only module that imports slack_sdk.

Posts with a bot token (``chat.postMessage``) or an incoming webhook, and returns a
:class:`~driftline.types.Receipt`: the message's ``channel`` and ``ts`` from
``chat.postMessage`` (to thread replies and update it later); an incoming webhook answers
only ``ok``, so its receipt has the HTTP status and ``ts: None``, and says so. A 429
becomes :class:`ThrottledError` carrying Slack's ``Retry-After`` so the outbox
waits that long; no retry here blocks the stream. Error messages never carry the
webhook URL (its path is the secret) nor the token.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from driftline.alerts.messages import alert_blocks, alert_text, trigger_blocks, trigger_text
from driftline.errors import DeliveryError, ThrottledError
from driftline.types import Receipt

_NO_TS = "an incoming webhook returns no message ts: this message cannot be threaded or updated"


def _retry_after(headers) -> float:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or 1
    if isinstance(value, list):
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return 1.0


def _reason(exc: Exception) -> str:
    """Why a request failed, without the URL: the socket's error text or the exception's name."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return reason if isinstance(reason, str) else reason.__class__.__name__


class SlackSink:
    accepts = frozenset({"alert", "trigger"})

    def __init__(self, token: str | None = None, channel: str | None = None,
                 webhook_url: str | None = None, base_url: str | None = None, timeout: int = 10):
        if token:
            kwargs = {"base_url": base_url} if base_url else {}
            self._web = WebClient(token=token, timeout=timeout, retry_handlers=[], **kwargs)
            self._hook = None
        elif webhook_url:
            self._web = None
            self._hook = WebhookClient(webhook_url, timeout=timeout, retry_handlers=[])
        else:
            raise ValueError("SlackSink needs a bot token and channel, or a webhook URL")
        self.channel = channel

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        text = alert_text(payload) if kind == "alert" else trigger_text(payload)
        blocks = alert_blocks(payload) if kind == "alert" else trigger_blocks(payload)
        if self._web is not None:
            return self._post(text, blocks, key)
        return self._webhook(text, blocks)

    def _post(self, text: str, blocks: list, key: str) -> Receipt:
        try:
            resp = self._web.chat_postMessage(
                channel=self.channel, text=text, blocks=blocks,
                metadata={"event_type": "driftline_notification", "event_payload": {"key": key}})
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429:
                raise ThrottledError("Slack rate limit", _retry_after(exc.response.headers)) from exc
            raise DeliveryError(f"Slack chat.postMessage failed: {exc.response.get('error')} "
                                f"(HTTP {status})") from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack unreachable: {_reason(exc)}") from exc
        return Receipt(detail={"channel": resp.get("channel"), "ts": resp.get("ts")})

    def _webhook(self, text: str, blocks: list) -> Receipt:
        try:
            resp = self._hook.send(text=text, blocks=blocks)
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack webhook unreachable: {_reason(exc)}") from exc
        if resp.status_code == 429:
            raise ThrottledError("Slack webhook rate limit", _retry_after(resp.headers))
        if resp.status_code >= 300:
            raise DeliveryError(f"Slack webhook answered HTTP {resp.status_code}: {resp.body[:200]}")
        return Receipt(detail={"mode": "incoming-webhook", "status": resp.status_code, "ts": None, "note": _NO_TS})
