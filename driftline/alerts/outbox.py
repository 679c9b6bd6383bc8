"""Deliver what the outbox holds, with retries, backoff and silences.

A notification is marked sent only after its sink accepted it; a failure is
retried after ``retry_after`` (when the sink was throttled) or an exponential
backoff, up to ``max_attempts``.
"""

from __future__ import annotations

import logging
import time

from driftline.errors import DeliveryError

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store, sinks: dict, max_attempts: int = 8, clock=time.time,
                 base_delay: float = 1.0, max_delay: float = 300.0):
        self.store, self.sinks, self.max_attempts = store, sinks, max_attempts
        self.clock, self.base_delay, self.max_delay = clock, base_delay, max_delay

    def deliver_due(self, limit: int = 100) -> int:
        """Try every notification that is due; return how many were delivered."""
        sent = 0
        now = self.clock()
        for item in self.store.due_notifications(now, limit):
            sink = self.sinks.get(item.sink)
            if sink is None:
                self.store.mark_retry(item.id, item.attempts, now, f"no sink {item.sink!r} configured", True)
                continue
            if item.kind == "alert" and item.payload.get("status") == "firing" and \
                    self.store.silenced(item.payload["model"], item.payload["rule"], now):
                self.store.mark_sent(item.id, status="silenced")
                continue
            try:
                sink.send(item.kind, item.payload, item.key)
            except DeliveryError as exc:
                attempts = item.attempts + 1
                delay = exc.retry_after if exc.retry_after is not None else min(
                    self.base_delay * 2 ** item.attempts, self.max_delay)
                give_up = attempts >= self.max_attempts
                log.warning("delivery to %s failed (attempt %d%s): %s", item.sink, attempts,
                            ", giving up" if give_up else f", retry in {delay:.0f}s", exc)
                self.store.mark_retry(item.id, attempts, now + delay, str(exc), give_up)
                continue
            self.store.mark_sent(item.id)
            sent += 1
        return sent
