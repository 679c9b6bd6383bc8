"""The seams between the core and its edges, and the fakes that stand in for them.

The service is assembled from three kinds of edge, each a :class:`typing.Protocol`
(structural: nothing subclasses them):

- :class:`Source`: batches of records and the offsets after them — Kafka
  (``streams/kafka.py:KafkaSource``), a JSON-lines file (``streams/files.py:FileSource``);
  fake: ``streams/memory.py:MemorySource``.
- :class:`DeadLetterSink`: where bad records go — the dead-letter topic
  (``streams/kafka.py:DeadLetters``); :class:`NoDeadLetters` (stderr, for sources
  without a broker); fake: :class:`MemoryDeadLetters`.
- :class:`Sink`: where a notification is delivered — console, Slack, webhooks, the
  alerts and retrain topics (``alerts/``, ``streams/kafka.py:TopicSink``); fake:
  ``alerts/console.py:RecordingSink``.

Only value types from ``types.py`` cross these seams.

>>> letters = MemoryDeadLetters()
>>> letters.send(BadRecord("truncated JSON", b"{", SourcePosition("events", 0, 7)))
>>> letters.flush(); [(r.reason, r.position.offset) for r in letters.flushed]
[('truncated JSON', 7)]
"""

from __future__ import annotations

import sys
from typing import Protocol, runtime_checkable

from driftline.types import BadRecord, Batch, Receipt, SourcePosition  # noqa: F401 - SourcePosition: the doctest

Offsets = dict[tuple[str, int], int]  # (topic, partition) → the next offset to read


@runtime_checkable
class Source(Protocol):
    """Where records come from. Offsets are the next ones to read, per (topic, partition)."""

    def poll(self) -> Batch:
        """The next batch (possibly empty); never blocks for long."""

    def commit(self, offsets: Offsets) -> None:
        """Tell the source what is stored (the store's offsets are the truth)."""

    def rewind(self, offsets: Offsets) -> None:
        """Read again from ``offsets`` (the poison-pill guard, after a reload)."""

    def pause(self) -> None:
        """Stop fetching during an outage, keeping the group membership."""

    def idle(self, seconds: float) -> None:
        """Wait while paused (still serving the group protocol)."""

    def resume(self, offsets: Offsets) -> None:
        """Fetch again, from ``offsets``."""

    def outage(self) -> float:
        """Seconds since the source last reached its broker (0 when it does)."""

    def close(self) -> None: ...


@runtime_checkable
class DeadLetterSink(Protocol):
    """Where bad records go; :meth:`flush` makes every one sent so far durable or raises."""

    def send(self, record: BadRecord) -> None: ...

    def flush(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """One notification destination; ``accepts`` names the kinds it takes (``alert``, ``trigger``).

    ``send`` raises :class:`~driftline.errors.DeliveryError` (``ThrottledError`` with
    ``retry_after``) when the destination did not take it; what it returns is stored
    with the notification in the outbox."""

    accepts: frozenset[str]

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt: ...


class MemoryDeadLetters:
    """Keeps bad records in memory; the fake beside the dead-letter topic.

    ``sent`` holds every record, ``flushed`` those a :meth:`flush` made durable."""

    def __init__(self):
        self.sent: list[BadRecord] = []
        self.flushed: list[BadRecord] = []

    @property
    def count(self) -> int:
        return len(self.sent)

    def send(self, record: BadRecord) -> None:
        self.sent.append(record)

    def flush(self) -> None:
        self.flushed = list(self.sent)


class NoDeadLetters:
    """For sources without a broker (replay): bad records are reported on stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.count = 0

    def send(self, record: BadRecord) -> None:
        self.count += 1
        p = record.position
        print(f"bad record at {p.topic}:{p.partition}:{p.offset}: {record.reason}", file=self.stream)

    def flush(self) -> None:
        pass
