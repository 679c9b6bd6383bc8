"""The Slack sink: the only module that imports slack_sdk.

With a bot token (``chat.postMessage``) an incident is one thread: ``opened`` posts its
root message (receipt: the ``channel`` ID and ``ts``, which the dispatcher hands back as
``ctx.thread``), ``updated`` and ``repeat`` reply in that thread, ``resolved`` rewrites the
root (``chat.update``) and replies; a retraining trigger of the incident replies too.
Without the root (never delivered) an event is a top-level message naming its incident.

Every message carries driftline's key in its metadata. When ``ctx.attempted`` says an
earlier attempt may have reached Slack, the sink first looks for that key
(``conversations.history``, or ``conversations.replies`` in a thread) and returns the
message found instead of posting again. An incoming webhook has none of this: no ``ts``,
so no threads and no look-up; every event is a top-level message and its receipt says so.

Posts to one channel are paced to one per ``min_interval`` seconds (a sleep on the
delivery thread). A 429 becomes :class:`ThrottledError` carrying Slack's ``Retry-After``;
a 5xx, a timeout or Slack's ``ok: false`` a :class:`DeliveryError` naming Slack's error.
No message and no log line carries the token or the webhook URL: slack-sdk's clients log
through :class:`_Redacting`, which masks both before anything is formatted.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from driftline.alerts import messages as m
from driftline.errors import DeliveryError, ThrottledError
from driftline.redact import Redactor
from driftline.types import DeliveryContext, Receipt

log = logging.getLogger(__name__)

_NO_TS = "an incoming webhook returns no message ts: this message cannot be threaded or updated"
EVENT_TYPE = "driftline_notification"
#: a look-up that cannot be made (the channel given by name, no channels:history scope):
#: the sink posts anyway, and says so
_CANNOT_LOOK = frozenset({"channel_not_found", "not_in_channel", "missing_scope", "thread_not_found"})
#: the root message cannot be rewritten any more; the resolved reply still goes out
_ROOT_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_UNREACHABLE = (SlackClientError, OSError, http.client.HTTPException)


class _Redacting(logging.LoggerAdapter):
    """slack-sdk's logger with the sink's token and webhook URL masked in every message
    (its clients log the webhook URL at debug and on retry at info). Keeps the logger's
    name, so ``slack_sdk.*`` levels and handlers apply as before."""

    def __init__(self, name: str, redact: Redactor):
        super().__init__(logging.getLogger(name), {})
        self.redact = redact

    @property
    def level(self) -> int:  # slack-sdk reads ``logger.level`` before building a debug line
        return self.logger.level

    def log(self, level, msg, *args, exc_info=None, **kwargs):
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        if exc_info:
            text += f" ({type(exc_info).__name__ if isinstance(exc_info, BaseException) else 'error'})"
        self.logger.log(level, self.redact(text), **kwargs)


class Pacer:
    """At most one write per ``interval`` seconds to each channel: ``wait(channel)``
    sleeps what is left since the last accepted one (``sent``), on the delivery thread."""

    def __init__(self, interval: float = 1.0, clock=time.time, sleep=time.sleep):
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            last = self._last.get(channel)
            left = 0.0 if last is None else last + self.interval - self.clock()
        if left > 0:
            self.sleep(left)

    def sent(self, channel: str) -> None:
        """A write to ``channel`` was accepted (a refused or failed one does not count)."""
        with self._lock:
            self._last[channel] = self.clock()

    def alias(self, channel: str, other: str) -> None:
        """``other`` is the same channel (its ID, learnt from Slack's answer)."""
        with self._lock:
            if channel in self._last:
                self._last[other] = self._last[channel]


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


def _refused(method: str, exc: SlackApiError) -> DeliveryError:
    """Slack's answer as our error: 429 → throttled; else the error name and HTTP status."""
    status = exc.response.status_code
    if status == 429:
        return ThrottledError(f"Slack rate limit on {method}", _retry_after(exc.response.headers))
    error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
    return DeliveryError(f"Slack {method} failed: {error or 'no error given'} (HTTP {status})")


def _thread(ctx: DeliveryContext) -> dict | None:
    """The root message to reply to, if the dispatcher knows one with a ``ts``."""
    t = ctx.thread
    return t if isinstance(t, dict) and t.get("ts") and t.get("channel") else None


class SlackSink:
    accepts = frozenset({"incident", "trigger"})

    def __init__(self, token: str | None = None, channel: str | None = None,
                 webhook_url: str | None = None, base_url: str | None = None, timeout: int = 10,
                 clock=time.time, sleep=time.sleep, min_interval: float = 1.0,
                 lookback: float = 86400.0, lookup_limit: int = 100):
        self._redact = redact = Redactor([token or ""], urls=[webhook_url or ""])
        if token:
            kwargs = {"base_url": base_url} if base_url else {}
            self._web = WebClient(token=token, timeout=timeout, retry_handlers=[],
                                  logger=_Redacting("slack_sdk.web.base_client", redact), **kwargs)
            self._hook = None
        elif webhook_url:
            self._web = None
            self._hook = WebhookClient(webhook_url, timeout=timeout, retry_handlers=[],
                                       logger=_Redacting("slack_sdk.webhook.client", redact))
        else:
            raise ValueError("SlackSink needs a bot token and channel, or a webhook URL")
        self.channel, self.clock = channel, clock
        self.lookback, self.lookup_limit = lookback, lookup_limit
        self.pacer = Pacer(min_interval, clock, sleep)
        self._ids: dict[str, str] = {}  # channel as configured → the ID Slack answered

    # -- what each notification becomes --------------------------------------------

    def send(self, kind: str, payload: dict, key: str, ctx: DeliveryContext | None = None) -> Receipt:
        ctx = ctx or DeliveryContext()
        if kind == "incident":
            return self._incident(payload, key, ctx)
        if kind == "trigger":
            meta = {"key": key} | ({"incident": payload["incident"]} if payload.get("incident") else {})
            text = m.slack_trigger_text(payload)
            return self._message(text, m.trigger_blocks(payload), meta, ctx, _thread(ctx))
        if kind == "alert":  # not routed here any more (alerts stay on console and topic): posted as before
            return self._message(m.alert_text(payload), m.alert_blocks(payload), {"key": key}, DeliveryContext(), None)
        raise DeliveryError(f"Slack takes incident and trigger notifications, not {kind!r}")

    def _incident(self, payload: dict, key: str, ctx: DeliveryContext) -> Receipt:
        inc, event = payload["incident"], payload.get("event", "updated")
        meta = {"key": key, "incident": inc.get("id")}
        thread = _thread(ctx) if self._web is not None else None
        if event == "opened":
            receipt = self._message(m.incident_text(inc), m.incident_blocks(inc), meta, ctx, None)
            return Receipt(detail=receipt.detail | {"severity": inc.get("severity")}) \
                if receipt.detail.get("ts") else receipt
        opened_as = thread.get("severity") if thread else None
        text = m.update_text(event, inc, thread is not None, opened_as)
        blocks = m.update_blocks(event, inc, thread is not None, opened_as)
        if event == "resolved" and thread is not None:
            updated = self._rewrite_root(thread, inc)
            reply = self._message(text, blocks, meta, ctx, thread)
            return Receipt(detail=reply.detail | {"root_updated": updated})
        return self._message(text, blocks, meta, ctx, thread)

    def _rewrite_root(self, thread: dict, inc: dict) -> bool:
        """The root message, rewritten as resolved (an update: idempotent by nature)."""
        pace = self._ids.get(thread["channel"], thread["channel"])
        self.pacer.wait(pace)
        try:
            self._web.chat_update(channel=thread["channel"], ts=thread["ts"],
                                  text=m.incident_text(inc), blocks=m.incident_blocks(inc))
        except SlackApiError as exc:
            if exc.response.status_code == 200 and exc.response.get("error") in _ROOT_GONE:
                log.warning("Slack: the root message of incident %s cannot be updated (%s); "
                            "the resolution is posted in its thread", inc.get("id"), exc.response.get("error"))
                return False
            raise _refused("chat.update", exc) from exc
        except _UNREACHABLE as exc:
            raise DeliveryError(f"Slack unreachable: {_reason(exc)}") from exc
        self.pacer.sent(pace)
        return True

    # -- posting, once --------------------------------------------------------------

    def _message(self, text: str, blocks: list, meta: dict, ctx: DeliveryContext, thread: dict | None) -> Receipt:
        if self._web is None:
            return self._webhook(text, blocks)
        channel = thread["channel"] if thread else self.channel
        if ctx.attempted:
            found = self._find(meta["key"], channel, thread["ts"] if thread else None)
            if found is not None:
                return found
        return self._post(channel, text, blocks, meta, thread["ts"] if thread else None)

    def _post(self, channel: str, text: str, blocks: list, meta: dict, thread_ts: str | None) -> Receipt:
        pace = self._ids.get(channel, channel)
        self.pacer.wait(pace)
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        try:
            resp = self._web.chat_postMessage(channel=channel, text=text, blocks=blocks,
                                              metadata={"event_type": EVENT_TYPE, "event_payload": meta}, **extra)
        except SlackApiError as exc:
            raise _refused("chat.postMessage", exc) from exc
        except _UNREACHABLE as exc:
            raise DeliveryError(f"Slack unreachable: {_reason(exc)}") from exc
        self.pacer.sent(pace)
        if not thread_ts and resp.get("channel"):
            self._ids[channel] = resp["channel"]
            self.pacer.alias(channel, resp["channel"])
        return Receipt(detail={"channel": resp.get("channel"), "ts": resp.get("ts")} | extra)

    def _find(self, key: str, channel: str, thread_ts: str | None) -> Receipt | None:
        """The message an earlier attempt posted with this key, if Slack has it."""
        args = {"channel": self._ids.get(channel, channel), "include_all_metadata": True,
                "limit": self.lookup_limit, "oldest": f"{self.clock() - self.lookback:.6f}"}
        method = "conversations.replies" if thread_ts else "conversations.history"
        try:
            resp = (self._web.conversations_replies(ts=thread_ts, **args) if thread_ts
                    else self._web.conversations_history(**args))
        except SlackApiError as exc:
            if exc.response.status_code == 200 and exc.response.get("error") in _CANNOT_LOOK:
                log.warning("Slack: cannot look for an earlier attempt of %s (%s %s); posting, which may "
                            "show it twice (give the channel by ID and grant channels:history)",
                            key, method, exc.response.get("error"))
                return None
            raise _refused(method, exc) from exc
        except _UNREACHABLE as exc:
            raise DeliveryError(f"Slack unreachable: {_reason(exc)}") from exc
        for msg in resp.get("messages") or []:
            meta = msg.get("metadata") or {}
            if meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("key") == key:
                log.info("Slack: %s was already posted (ts %s); not posting it again", key, msg.get("ts"))
                extra = {"thread_ts": thread_ts} if thread_ts else {}
                return Receipt(detail={"channel": args["channel"], "ts": msg.get("ts")} | extra | {"found": True})
        return None

    def _webhook(self, text: str, blocks: list) -> Receipt:
        self.pacer.wait("incoming-webhook")
        try:
            resp = self._hook.send(text=text, blocks=blocks)
        except _UNREACHABLE as exc:
            raise DeliveryError(f"Slack webhook unreachable: {_reason(exc)}") from exc
        if resp.status_code == 429:
            raise ThrottledError("Slack webhook rate limit", _retry_after(resp.headers))
        if resp.status_code >= 300:
            raise DeliveryError(f"Slack webhook answered HTTP {resp.status_code}: {self._redact(resp.body[:200])}")
        self.pacer.sent("incoming-webhook")
        return Receipt(detail={"mode": "incoming-webhook", "status": resp.status_code, "ts": None, "note": _NO_TS})
