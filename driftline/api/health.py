"""Readiness: the store answers and, under ``driftline run``, the consumer is neither
paused by an outage nor stuck (its last poll younger than ``max_poll_age``)."""

from __future__ import annotations

import time

from driftline.errors import StoreError


class Readiness:
    def __init__(self, browse, service=None, max_poll_age: float = 60.0, clock=time.monotonic):
        self.browse, self.service, self.max_poll_age, self.clock = browse, service, max_poll_age, clock

    def __call__(self) -> tuple[bool, str]:
        try:
            self.browse.ping()
        except StoreError as exc:
            return False, f"store unreachable: {exc}"
        if self.service is None:
            return True, "store reachable"
        if self.service.status != "ready":
            return False, f"consumer {self.service.status}"
        age = self.clock() - self.service.last_poll
        if age > self.max_poll_age:
            return False, f"last poll {age:.0f} s ago (more than {self.max_poll_age:.0f} s)"
        return True, "store reachable, consumer polling"
