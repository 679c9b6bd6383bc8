"""The poison-pill guard: one record never stops the stream.

Decoding is total, so no record should make processing raise; if one does anyway
(a bug meeting an input nobody thought of), the guard finds the records
responsible and dead-letters them with the reason ``internal error: <type>:
<message>``, and the stream goes on.

How: the pipeline's state since the last checkpoint may be half-changed by the
failed batch, so it is reloaded from the store and the source rewound to the
stored offsets. Until the failed batch has been passed, every batch is processed
*carefully*: checkpointed on its own, so that the store always holds the state
just before the next one. A careful batch that fails again is bisected in memory:
a half that succeeds is checkpointed, a half that fails is reloaded and split,
down to the single record, which is dead-lettered. A failure that no record
explains (a batch of none) is logged and the stream goes on.

Outages (:class:`StoreUnavailable`, :class:`DeadLettersUnavailable`) are not
poison: they pass through to the service, which waits them out.
"""

from __future__ import annotations

import logging

from driftline.errors import DeadLettersUnavailable, StoreUnavailable
from driftline.types import BadRecord, Batch

log = logging.getLogger(__name__)

#: waited out by the service, never blamed on a record
OUTAGES = (StoreUnavailable, DeadLettersUnavailable)

Offsets = dict[tuple[str, int], int]


def internal_reason(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {str(exc)[:500]}"


def offsets_through(batch: Batch, end: int) -> Offsets:
    """The source offsets after the first ``end`` records of ``batch``."""
    if end >= len(batch.values):
        return dict(batch.next_offsets)
    out: Offsets = {}
    for i in range(end):
        p = batch.position(i)
        out[(p.topic, p.partition)] = max(out.get((p.topic, p.partition), 0), p.offset + 1)
    return out


def sub_batch(batch: Batch, lo: int, hi: int) -> Batch:
    return Batch(batch.values[lo:hi], lambda i: batch.position(lo + i), offsets_through(batch, hi))


class PoisonGuard:
    """Runs batches through the pipeline and isolates the ones that raise."""

    def __init__(self, pipeline, source, metrics=None):
        self.pipeline, self.source = pipeline, source
        self.metrics = metrics or pipeline.metrics
        self.careful_until: Offsets = {}
        self.poisoned = 0
        self._reloading: Batch | None = None  # a reload that an outage interrupted

    def retry(self) -> Offsets | None:
        """After an outage: finish the interrupted reload, or write the held-back checkpoint."""
        if self._reloading is not None:
            self._reload(self._reloading)
            return None
        return self.pipeline.retry_pending()

    def process(self, batch: Batch) -> Offsets | None:
        if self.careful_until:
            return self._careful(batch)
        try:
            return self.pipeline.process(batch)
        except OUTAGES:
            raise
        except Exception as exc:  # noqa: BLE001 - the point of the guard
            self._failed(batch, exc)
            return None

    def _failed(self, batch: Batch, exc: Exception) -> None:
        where = _span(batch)
        log.error("processing the batch of %d record(s) at %s raised %s; reloading the last checkpoint "
                  "and isolating the records responsible", len(batch.values), where, internal_reason(exc),
                  exc_info=exc)
        self._reload(batch)

    def _reload(self, batch: Batch) -> None:
        """Back to the stored state; read again, carefully, up to the end of ``batch``."""
        self._reloading = batch
        self.pipeline.reload()  # an outage here is retried by :meth:`retry`
        self._reloading = None
        if batch.values:  # a batch of none has nothing to blame; the stream goes on
            for key, end in batch.next_offsets.items():
                self.careful_until[key] = max(end, self.careful_until.get(key, end))
            self.source.rewind(self.pipeline.offsets)

    def _careful(self, batch: Batch) -> Offsets | None:
        try:
            try:
                offsets = self.pipeline.process(batch, force=True)
            except OUTAGES:
                raise
            except Exception as exc:  # noqa: BLE001
                self.pipeline.reload()
                self._bisect(batch, 0, len(batch.values), exc)
                offsets = dict(self.pipeline.offsets)
        except OUTAGES:
            # a bisection cut short: after the outage, read again from what is stored
            self.pipeline.pending = None
            self._reloading = batch
            raise
        if all(self.pipeline.offsets.get(k, -1) >= v for k, v in self.careful_until.items()):
            self.careful_until = {}
        return offsets

    def _bisect(self, batch: Batch, lo: int, hi: int, exc: Exception) -> None:
        """``[lo, hi)`` raised ``exc`` from the state just before ``lo``, which the store holds."""
        if hi - lo <= 1:
            if hi > lo:
                self._poison(batch, lo, exc)
            return
        mid = (lo + hi) // 2
        for a, b in ((lo, mid), (mid, hi)):
            try:
                self.pipeline.process(sub_batch(batch, a, b), force=True)
            except OUTAGES:
                raise
            except Exception as err:  # noqa: BLE001
                self.pipeline.reload()
                self._bisect(batch, a, b, err)

    def _poison(self, batch: Batch, i: int, exc: Exception) -> None:
        pos = batch.position(i)
        reason = internal_reason(exc)
        log.error("record at %s:%d:%d dead-lettered: %s", pos.topic, pos.partition, pos.offset, reason)
        self.pipeline.dead_letter.send(BadRecord(reason, batch.values[i], pos))
        self.poisoned += 1
        self.metrics.observe_internal_error(type(exc).__name__)
        skip = Batch([], batch.position, offsets_through(batch, i + 1))
        self.pipeline.process(skip, force=True)


def _span(batch: Batch) -> str:
    if not batch.values:
        return "(no records)"
    first, last = batch.position(0), batch.position(len(batch.values) - 1)
    return f"{first.topic}:{first.partition}:{first.offset} … {last.topic}:{last.partition}:{last.offset}"
