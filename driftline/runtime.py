"""The service loop: poll → process → commit → deliver (built by ``app.py``).

Order of effects per checkpoint: dead letters flushed → one database
transaction (windows, alert state, outbox, offsets, checkpoint) → Kafka
offsets committed → the delivery thread woken (it sends what the outbox holds on
its own connection; the consumer never waits for a sink).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from driftline.alerts.outbox import Dispatcher
from driftline.errors import BrokerUnavailable, StoreUnavailable
from driftline.guard import OUTAGES, PoisonGuard
from driftline.pipeline import Pipeline

log = logging.getLogger(__name__)


def wait_for(what: str, attempt: Callable, limit: float, clock=time.monotonic, sleep=time.sleep):
    """``attempt()`` until it stops raising :class:`StoreUnavailable`, for at most ``limit`` seconds."""
    since, delay, said = clock(), 0.5, False
    while True:
        try:
            return attempt()
        except StoreUnavailable as exc:
            if clock() - since + delay > limit:
                raise
            if not said:
                log.error("%s: %s; waiting for it (at most %.0f s)", what, exc, limit)
                said = True
            sleep(delay)
            delay = min(delay * 2, 30.0)


#: the cyclic garbage collector's thresholds while the service runs (Python's: 700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Set the garbage collector up for a long-running stream processor (``run``, ``replay``,
    ``demo``). A batch allocates hundreds of thousands of short-lived objects, and with
    Python's thresholds every 700 of them start a pass, every 100th of them a pass over every
    object start-up built (configuration, references, modules); so what start-up built is
    frozen out of the passes and a pass starts every 50,000 allocations. Reference counting
    frees nearly everything; the passes are only for cycles. Measured in docs/benchmarks.md
    (session 6): end to end 1.3–1.6× the events per second."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Service:
    """Poll → process → commit → wake the delivery thread, until stopped.

    Batches go through the :class:`PoisonGuard`, so a record that makes processing
    raise is dead-lettered instead of stopping the stream. An unreachable store or
    dead-letter topic pauses consumption and is retried with backoff; past
    ``max_outage`` seconds the service gives up with :class:`StoreUnavailable` (or
    :class:`BrokerUnavailable`), having committed no offset past what is stored.
    """

    def __init__(self, pipeline: Pipeline, source, dispatcher: Dispatcher, store_outage: float = 900.0,
                 broker_outage: float = 900.0, clock=time.monotonic, max_delay: float = 30.0):
        self.pipeline, self.source, self.dispatcher = pipeline, source, dispatcher
        self.guard = PoisonGuard(pipeline, source)
        self.store_outage, self.broker_outage = store_outage, broker_outage
        self.clock, self.max_delay = clock, max_delay
        self.stop_event = threading.Event()
        self.status = "ready"
        self._stopped_in_outage = False
        self._started = time.monotonic()
        self._first_batch = False
        self.last_poll = time.monotonic()  # read by /readyz

    def run(self, duration: float | None = None, until: Callable[[], bool] | None = None) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if until is not None and until():
                    break
                self.step()
        finally:
            self.shutdown()

    def step(self) -> None:
        self.dispatcher.start()
        batch = self.source.poll()
        self.last_poll = time.monotonic()
        if batch.values and not self._first_batch:
            self._first_batch = True
            log.info("first batch: %d record(s), %.2f s after start", len(batch.values),
                     time.monotonic() - self._started)
        try:
            offsets = self.guard.process(batch)
        except OUTAGES as exc:
            offsets = self._wait_out(exc)
        if offsets:
            self.source.commit(offsets)
        if self.source.outage() > self.broker_outage:
            raise BrokerUnavailable(f"no Kafka broker answered for {self.source.outage():.0f} s "
                                    f"(kafka.max_outage is {self.broker_outage:.0f} s); stopping. "
                                    "Nothing is lost: a restart resumes from the stored offsets")
        self.dispatcher.wake(checkpoint=bool(offsets))

    def _wait_out(self, exc: Exception) -> dict | None:
        """Pause consumption and retry until the store (or dead-letter topic) is back."""
        limit, what = ((self.store_outage, "store.max_outage") if isinstance(exc, StoreUnavailable)
                       else (self.broker_outage, "kafka.max_outage"))
        since, delay = self.clock(), 0.5
        self.status = f"paused: {exc}"
        log.error("%s; consumption paused, retrying until it is back (at most %s = %.0f s)", exc, what, limit)
        self.source.pause()
        try:
            while True:
                if self.stop_event.is_set():
                    log.warning("stopping during an outage: what was read since the last checkpoint "
                                "is read again on restart")
                    self._stopped_in_outage = True
                    return None
                if self.clock() - since > limit:
                    self._stopped_in_outage = True
                    raise type(exc)(f"{exc}; still failing after {self.clock() - since:.0f} s ({what} is "
                                    f"{limit:.0f} s), stopping. Nothing is lost: no offset was committed "
                                    "past what is stored, and a restart resumes from there") from exc
                self.source.idle(delay)
                try:
                    self.pipeline.store.state.check_lock()
                    offsets = self.guard.retry()
                except OUTAGES as err:
                    exc, delay = err, min(delay * 2, self.max_delay)
                    log.info("still unavailable (%s); next try in %.1f s", err, delay)
                    continue
                log.warning("available again after %.1f s; consumption resumes", self.clock() - since)
                return offsets
        finally:
            self.status = "ready"
            self.source.resume(self.pipeline.offsets)

    def shutdown(self, flush: bool = False) -> None:
        """The last checkpoint, then at most ``dispatcher.shutdown_wait`` seconds for the
        delivery thread's last pass (what it does not reach stays in the outbox; ``flush``:
        what waits for ``group_wait`` goes too), then close."""
        from driftline.types import Batch
        try:
            if not self._stopped_in_outage:
                offsets = self.pipeline.process(Batch([], lambda i: None), force=True)
                if offsets:
                    self.source.commit(offsets)
        except OUTAGES as exc:
            log.warning("could not write the last checkpoint (%s); what was read since the one before "
                        "is read again on restart", exc)
        finally:
            self.dispatcher.close(flush=flush)
            self.source.close()
            self.pipeline.store.close()
            self.pipeline.metrics.close()

    def stop(self, *_args) -> None:
        self.stop_event.set()


def run_to_end(service: Service, source) -> None:
    """Replay: process ``source`` until it is done, then close every open window
    (end of input), commit, and shut down: the shutdown waits (bounded) for the delivery
    of what the windows produced."""
    try:
        while not service.stop_event.is_set() and not source.done:
            service.step()
        if source.done:
            try:
                offsets = service.pipeline.end_of_input()
            except OUTAGES as exc:
                offsets = service._wait_out(exc)
            if offsets:
                service.source.commit(offsets)
    finally:
        service.shutdown(flush=source.done)  # no later pass: what waits for group_wait goes now
