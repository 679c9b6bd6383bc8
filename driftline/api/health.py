"""Readiness: the store answers and, under ``driftline run``, the consumer is neither
paused by an outage nor stuck: its last poll is younger than ``max_poll_age``, and records
it has read do not wait for a checkpoint longer than ``max_checkpoint_age`` (the pipeline
checkpoints every 5 s while input flows, so 60 s means a dozen missed checkpoints; with no
input, no checkpoint is due and an old one is fine)."""

from __future__ import annotations

import time

from driftline.errors import StoreError


class Readiness:
    def __init__(self, browse, service=None, max_poll_age: float = 60.0, clock=time.monotonic,
                 max_checkpoint_age: float = 60.0):
        self.browse, self.service, self.max_poll_age, self.clock = browse, service, max_poll_age, clock
        self.max_checkpoint_age = max_checkpoint_age

    def __call__(self) -> tuple[bool, str]:
        try:
            self.browse.ping()
        except StoreError as exc:
            return False, f"store unreachable: {exc}"
        if self.service is None:
            return True, "store reachable"
        if self.service.status != "ready":
            return False, f"consumer {self.service.status}"
        if getattr(self.service.source, "assigned", True) is False:  # Kafka, before the group assigns any
            return False, "no partitions assigned yet"
        age = self.clock() - self.service.last_poll
        if age > self.max_poll_age:
            return False, f"last poll {age:.0f} s ago (more than {self.max_poll_age:.0f} s)"
        waiting = self.service.pipeline.unstored_for()
        if waiting > self.max_checkpoint_age:
            return False, (f"input read since the last checkpoint {waiting:.0f} s ago is not stored yet "
                           f"(more than {self.max_checkpoint_age:.0f} s)")
        return True, "store reachable, consumer polling"
