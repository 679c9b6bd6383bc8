"""An in-memory source: the fake that ships next to the Kafka one."""

from __future__ import annotations

from driftline.types import Batch, SourcePosition


class MemorySource:
    """Serves a list of record values as one partition; resumes from ``start``."""

    def __init__(self, values: list[bytes | None], batch_size: int = 1000, topic: str = "memory",
                 start: int = 0):
        self.values, self.batch_size, self.topic = values, batch_size, topic
        self.next = self.first = start
        self.committed: dict[tuple[str, int], int] = {}

    @property
    def done(self) -> bool:
        return self.next >= len(self.values)

    def poll(self) -> Batch:
        first = self.next
        chunk = self.values[first:first + self.batch_size]
        self.next += len(chunk)
        topic = self.topic
        return Batch(chunk, lambda i: SourcePosition(topic, 0, first + i),
                     {(topic, 0): self.next} if chunk else {})

    def rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        self.next = offsets.get((self.topic, 0), self.first)

    def pause(self) -> None:
        pass

    def idle(self, seconds: float) -> None:
        pass

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        self.rewind(offsets)

    def outage(self) -> float:
        return 0.0

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.committed.update(offsets)

    def close(self) -> None:
        pass
