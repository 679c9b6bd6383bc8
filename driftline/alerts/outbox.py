"""Deliver what the outbox holds, with retries, backoff and silences, until a deadline.

A notification is marked sent only after its sink accepted it. A failure is retried
after ``retry_after`` (when the sink was throttled, capped at ``max_retry_after``) or an
exponential backoff (``base_delay`` doubling up to ``max_delay``), until ``deadline``
seconds after the notification was created (or after ``driftline alerts --retry-failed``
gave it a fresh deadline); only a failure at or past the deadline gives it up
(status ``failed``), counted in ``driftline_notifications_failed_total``.

Nothing here sleeps: a sink that failed is held back (its other notifications are not
tried) until its retry time, so a throttled or dead destination costs one request per
retry, and the consumer thread that calls :meth:`Dispatcher.deliver_due` moves on.
Every error text is redacted before it is logged or stored.
"""

from __future__ import annotations

import logging
import time

from driftline.errors import DeliveryError
from driftline.metrics import NullMetrics

log = logging.getLogger(__name__)

DAY = 86400.0


class Dispatcher:
    def __init__(self, store, sinks: dict, deadline: float = DAY, clock=time.time,
                 base_delay: float = 1.0, max_delay: float = 300.0, max_retry_after: float = 3600.0,
                 metrics=None, redact=str):
        self.store, self.sinks, self.deadline, self.clock = store, sinks, deadline, clock
        self.base_delay, self.max_delay, self.max_retry_after = base_delay, max_delay, max_retry_after
        self.metrics = metrics or NullMetrics()
        self.redact = redact
        self._held: dict[str, float] = {}  # sink → not before this time

    def deliver_due(self, limit: int = 100) -> int:
        """Try every notification that is due; return how many were delivered."""
        now = self.clock()
        self._held = {s: t for s, t in self._held.items() if t > now}
        sent = 0
        for item in self.store.outbox.due(now, limit, exclude_sinks=tuple(self._held)):
            if item.sink in self._held:
                continue  # held back by a failure earlier in this pass
            sent += self._deliver(item, now)
        for item in self.store.outbox.overdue(now, self.deadline, limit):
            self._expire(item, now)  # past the deadline while its sink was held back
        self._count()
        return sent

    def _deliver(self, item, now: float) -> int:
        deadline = self.deadline_of(item)
        if now > deadline:
            self._expire(item, now)
            return 0
        if self._silenced(item, now):
            self.store.outbox.mark_sent(item.id, status="silenced")
            self.metrics.observe_notification(item.sink, "silenced")
            return 0
        try:
            self._send(item)
        except DeliveryError as exc:
            self._failed(item, now, deadline, exc)
            return 0
        self.store.outbox.mark_sent(item.id)
        self.metrics.observe_notification(item.sink, "sent")
        return 1

    def deadline_of(self, item) -> float:
        return item.deadline_at if item.deadline_at is not None else item.created_at + self.deadline

    def _silenced(self, item, now: float) -> bool:
        p = item.payload
        return item.kind == "alert" and p.get("status") == "firing" and \
            self.store.outbox.silenced(p["model"], p["rule"], now)

    def _send(self, item) -> None:
        sink = self.sinks.get(item.sink)
        if sink is None:
            raise DeliveryError(f"no sink {item.sink!r} configured")
        sink.send(item.kind, item.payload, item.key)

    def delay(self, attempts: int, exc: DeliveryError) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones."""
        if exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_retry_after)
        return min(self.base_delay * 2 ** min(attempts - 1, 30), self.max_delay)

    def _failed(self, item, now: float, deadline: float, exc: DeliveryError) -> None:
        attempts, error = item.attempts + 1, self.redact(str(exc))
        if now >= deadline:
            self._give_up(item, now, error, attempts)
            return
        next_at = min(now + self.delay(attempts, exc), deadline)
        self._held[item.sink] = next_at
        log.warning("delivery of %s %s to %s failed (attempt %d), retry in %.0fs: %s",
                    item.kind, item.id, item.sink, attempts, next_at - now, error)
        self.store.outbox.mark_retry(item.id, attempts, next_at, error, give_up=False)
        self.metrics.observe_notification(item.sink, "retry")

    def _expire(self, item, now: float) -> None:
        self._give_up(item, now, f"not delivered within its deadline; last error: {item.last_error or '-'}")

    def _give_up(self, item, now: float, error: str, attempts: int | None = None) -> None:
        attempts = item.attempts if attempts is None else attempts
        log.error("giving up on %s %s to %s after %d attempt(s) over %.0fs: %s "
                  "(`driftline alerts --pending` lists it, `--retry-failed` tries again)",
                  item.kind, item.id, item.sink, attempts, now - item.created_at, error)
        self.store.outbox.mark_retry(item.id, attempts, now, self.redact(error), give_up=True)
        self.metrics.observe_notification(item.sink, "failed")

    def _count(self) -> None:
        counts = self.store.outbox.counts()
        self.metrics.set_notifications(pending=counts.get("pending", 0), failed=counts.get("failed", 0))
