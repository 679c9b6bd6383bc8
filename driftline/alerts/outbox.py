"""Deliver what the outbox holds, with retries, backoff and silences, until a deadline.

A notification is marked sent only after its sink accepted it. A failure is retried
after ``retry_after`` (when the sink was throttled, capped at ``max_retry_after``) or an
exponential backoff (``base_delay`` doubling up to ``max_delay``), until ``deadline``
seconds after the notification was created (or after ``driftline alerts --retry-failed``
gave it a fresh deadline); only a failure at or past the deadline gives it up
(status ``failed``), counted in ``driftline_notifications_failed_total``.

A sink that failed is held back (its other notifications are not tried) until its retry
time, so a throttled or dead destination costs one request per retry. What a sink returns
(a :class:`~driftline.types.Receipt`: Slack's ``ts``, an HTTP status) is stored with the
row by ``mark_sent``. Every error text is redacted before it is logged or stored.

**The delivery thread.** :meth:`Dispatcher.start` starts a worker thread that drains the
outbox on a database connection of its own (a second engine on the store's URL), so the
consumer thread never waits for a sink: it calls :meth:`Dispatcher.wake` after a
checkpoint, and the worker also looks every ``poll_interval`` seconds.
:meth:`Dispatcher.close` wakes it for a last pass and waits at most ``shutdown_wait``
seconds; whatever is still in flight or due then stays in the outbox (logged) for the next
start. An in-memory SQLite store (``sqlite://``, ``driftline replay``'s default) is one
database per connection and cannot be opened twice: with it there is no thread, and
``wake`` and ``close`` deliver on the calling thread. :meth:`Dispatcher.deliver_due` is one
pass on the calling thread (tests drive it with a fake clock).

**Several processes.** A pass delivers only what it claimed (``Outbox.claim``: the due rows,
for ``owner``, until ``lease`` seconds from now; ``alerts/lease.py`` renews the lease while
the pass runs), and releases what it did not finish at its end. One process at a time owns
an incident's rows to a sink, so the order below holds across processes. Before sending, the
attempt is recorded only if the row is still this dispatcher's (``mark_attempt``); a row
another process took over (this one stalled past its lease) is not sent here.
"""

from __future__ import annotations

import logging
import threading
import time

from driftline.alerts.incidents import Incident
from driftline.alerts.lease import Renewal, new_owner
from driftline.alerts.silences import SILENCEABLE, is_silenced
from driftline.errors import DeliveryError
from driftline.metrics import NullMetrics
from driftline.types import DeliveryContext, Receipt

log = logging.getLogger(__name__)

DAY = 86400.0
_WAIT, _SUPERSEDED = object(), object()


def _incident_of(item) -> str | None:
    """The incident a notification belongs to: an incident's own, or a trigger's."""
    if item.kind == "incident":
        return item.payload["incident"]["id"]
    return item.payload.get("incident") if item.kind == "trigger" else None


class Dispatcher:
    def __init__(self, store, sinks: dict, deadline: float = DAY, clock=time.time,
                 base_delay: float = 1.0, max_delay: float = 300.0, max_retry_after: float = 3600.0,
                 metrics=None, redact=str, poll_interval: float = 1.0, shutdown_wait: float = 10.0,
                 lease: float = 30.0, owner: str | None = None):
        if lease <= 0:
            raise ValueError(f"lease must be > 0 seconds, not {lease!r}")
        self.store, self.sinks, self.deadline, self.clock = store, sinks, deadline, clock
        self.lease, self.owner = lease, owner or new_owner()
        self.base_delay, self.max_delay, self.max_retry_after = base_delay, max_delay, max_retry_after
        self.metrics = metrics or NullMetrics()
        self.redact = redact
        self.poll_interval, self.shutdown_wait = poll_interval, shutdown_wait
        self.outbox = getattr(store, "outbox", None)  # the worker's own, once started
        self._held: dict[str, float] = {}  # sink → not before this time
        self._thread: threading.Thread | None = None
        self._wake, self._stopping, self._abandon = threading.Event(), threading.Event(), threading.Event()
        self._failing = False
        self._resumed = False
        self._flush = False
        self._handed: dict[int, list[str]] = {}  # outbox id → new features handed on by superseded updates

    # -- the delivery thread ------------------------------------------------------

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the delivery thread on its own connection (none for an in-memory store)."""
        if self._thread is not None:
            return
        own = self.store.outbox_for_thread()
        if own is None:
            log.info("in-memory store: notifications are delivered on the consumer thread")
            return
        self.outbox = own
        self._thread = threading.Thread(target=self._work, name="driftline-delivery", daemon=True)
        self._thread.start()

    def wake(self, checkpoint: bool = True) -> None:
        """After a step of the consumer (``checkpoint``: it wrote one, so new notifications
        may be due): the thread looks now. Without a thread, one pass here."""
        if self._thread is None:
            self._pass()
        elif checkpoint:
            self._wake.set()

    def _work(self) -> None:
        while True:
            last = self._stopping.is_set()
            self._pass()
            if last or self._abandon.is_set():
                break
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        self.outbox.close()

    def _pass(self) -> None:
        """One delivery pass; a failing store is logged once and tried again on the next."""
        try:
            self.deliver_due()
        except Exception as exc:  # noqa: BLE001 - the outbox keeps everything; delivery resumes later
            if not self._failing:
                log.error("delivering notifications failed (they stay in the outbox): %s", self.redact(str(exc)))
            self._failing = True
            return
        self._failing = False

    def close(self, wait: float | None = None, flush: bool = False) -> bool:
        """After the last checkpoint: one more pass, waited for at most ``wait`` seconds
        (``shutdown_wait``); return whether it finished. What it did not reach stays pending.
        ``flush`` (the end of a replay): notifications held back for ``group_wait`` or
        ``group_interval`` go now too, since no later pass will come."""
        self._flush = flush
        if self._thread is None:
            self._pass()
            return True
        self._stopping.set()
        self._wake.set()
        self._thread.join(self.shutdown_wait if wait is None else wait)
        if not self._thread.is_alive():
            return True
        self._abandon.set()  # the worker stops after the delivery it is waiting on
        log.warning("stopping with a delivery still in flight after %.0f s; it and every notification "
                    "not yet sent stay in the outbox and are delivered after the next start",
                    self.shutdown_wait if wait is None else wait)
        return False

    # -- one pass ---------------------------------------------------------------

    def deliver_due(self, limit: int = 100) -> int:
        """Try every notification that is due; return how many were delivered."""
        now = self.clock()
        self._held = {s: t for s, t in self._held.items() if t > now}
        items = self.outbox.claim(self.owner, now, now + self.lease, limit, exclude_sinks=tuple(self._held),
                                  early=self._flush)
        sent = 0
        if items:
            try:
                with Renewal(self.outbox, self.owner, self.lease, self.clock, self.redact):
                    sent = self._deliver_claimed(items, now)
            finally:
                self.outbox.release(self.owner)
        if self._abandon.is_set():
            return sent
        for item in self.outbox.overdue(now, self.deadline, limit, owner=self.owner):
            self._expire(item, now)  # past the deadline while its sink was held back
        self._hooks(now)
        self._count()
        return sent

    def _deliver_claimed(self, items: list, now: float) -> int:
        sent = 0
        for item in items:
            if self._abandon.is_set():
                break
            if item.sink in self._held:
                continue  # held back by a failure earlier in this pass
            sent += self._deliver(item, now)
        return sent

    def _deliver(self, item, now: float) -> int:
        deadline = self.deadline_of(item)
        if now > deadline:
            self._expire(item, now)
            return 0
        if self._silenced(item, now):
            self._forget(item)
            self.outbox.mark_sent(item.id, status="silenced")
            self.metrics.observe_notification(item.sink, "silenced")
            return 0
        ctx = self._context(item)
        if ctx is _WAIT:
            return 0
        if ctx is _SUPERSEDED:  # marked so by the outbox, its new features handed on
            return 0
        if not self.outbox.mark_attempt(item.id, item.attempts + 1, self.owner, self.clock() + self.lease):
            log.warning("%s %s to %s was taken over by another process (this one held it past its %.0f s lease); "
                        "not sent here", item.kind, item.id, item.sink, self.lease)
            return 0
        try:
            receipt = self._send(item, self._current(item), ctx)
        except DeliveryError as exc:
            self._failed(item, now, deadline, exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - a sink's bug must not stop every other notification
            self._failed(item, now, deadline, DeliveryError(f"{item.sink} failed unexpectedly: "
                                                            f"{type(exc).__name__}: {exc}"))
            return 0
        self.outbox.mark_sent(item.id, status=receipt.status, receipt=receipt)
        self.metrics.observe_notification(item.sink, "sent")
        return 1

    def deadline_of(self, item) -> float:
        return item.deadline_at if item.deadline_at is not None else item.created_at + self.deadline

    def _silenced(self, item, now: float) -> bool:
        """The silence stage: ``alerts/silences.py`` decides with the silences active at ``now``."""
        if item.kind not in SILENCEABLE:
            return False  # triggers are never muted: no need to read the silences
        return is_silenced(item.kind, item.payload, self.outbox.active_silences(now), now)

    def _send(self, item, payload: dict, ctx: DeliveryContext) -> Receipt:
        sink = self.sinks.get(item.sink)
        if sink is None:
            raise DeliveryError(f"no sink {item.sink!r} configured")
        return sink.send(item.kind, payload, item.key, ctx) or Receipt()  # a sink may say nothing

    def _context(self, item):
        """What the sink is told (:class:`DeliveryContext`); or wait, while the incident's
        ``opened`` notification to this sink is still to be sent; or superseded, for an update
        that a later notification of its incident replaces."""
        attempted = item.attempts > 0 or item.last_error is not None
        incident = _incident_of(item)
        if incident is None:
            return DeliveryContext(attempted)
        event = item.payload.get("event") if item.kind == "incident" else "trigger"
        if event in ("updated", "repeat"):
            new = self._handed.get(item.id) or item.payload["incident"].get("new_features", [])
            later = self.outbox.supersede(incident, item.sink, item.id, new)
            if later is not None:
                self._handed.pop(item.id, None)
                self._handed[later[0]] = later[1]
                return _SUPERSEDED
        thread = None
        if event != "opened":
            opened = self.outbox.opened(incident, item.sink)
            if opened is not None and opened[0] == "pending":
                return _WAIT
            if opened is not None and opened[0] == "sent":
                thread = opened[1]
        return DeliveryContext(attempted, thread)

    def _current(self, item) -> dict:
        """An incident notification with the incident as stored now (what joined it since, e.g.
        during ``group_wait``), except a ``resolved`` one, which is final."""
        p = item.payload
        if item.kind != "incident" or p.get("event") == "resolved":
            return p
        state = self.outbox.incident(p["incident"]["id"])
        if state is None:
            return p
        new = None if p["event"] == "opened" else self._handed.pop(item.id, None) or p["incident"].get(
            "new_features", [])
        return {**p, "incident": Incident.from_state(state).snapshot(new)}

    def _hooks(self, now: float) -> None:
        """``resume`` (once, with the open incidents) and ``refresh`` (every pass) of the sinks that have them."""
        for name, sink in self.sinks.items():
            try:
                if not self._resumed and hasattr(sink, "resume"):  # those this sink was sent, not silenced
                    sink.resume([Incident.from_state(s).snapshot() for s in self.outbox.open_incidents()
                                 if (self.outbox.opened(s["id"], name) or ("",))[0] == "sent"])
                if hasattr(sink, "refresh"):
                    sink.refresh(now)
            except Exception as exc:  # noqa: BLE001 - tried again on the next pass
                log.warning("%s: re-sending open incidents failed (tried again on the next pass): %s",
                            name, self.redact(f"{type(exc).__name__}: {exc}"))
        self._resumed = True

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
        self.outbox.mark_retry(item.id, attempts, next_at, error, give_up=False, owner=self.owner, now=now)
        self.metrics.observe_notification(item.sink, "retry")

    def _expire(self, item, now: float) -> None:
        self._give_up(item, now, f"not delivered within its deadline; last error: {item.last_error or '-'}")

    def _forget(self, item) -> None:
        """A resolved incident notice that will not be sent: a sink that re-sends open incidents stops."""
        sink = self.sinks.get(item.sink)
        if item.kind == "incident" and item.payload.get("event") == "resolved" and hasattr(sink, "forget"):
            sink.forget(item.payload["incident"]["id"])

    def _give_up(self, item, now: float, error: str, attempts: int | None = None) -> None:
        attempts = item.attempts if attempts is None else attempts
        if not self.outbox.mark_retry(item.id, attempts, now, self.redact(error), give_up=True, owner=self.owner,
                                      now=now):
            return  # another process holds it now (and decides)
        self._forget(item)
        log.error("giving up on %s %s to %s after %d attempt(s) over %.0fs: %s "
                  "(`driftline alerts --pending` lists it, `--retry-failed` tries again)",
                  item.kind, item.id, item.sink, attempts, now - item.created_at, error)
        self.metrics.observe_notification(item.sink, "failed")

    def _count(self) -> None:
        counts = self.outbox.counts()
        self.metrics.set_notifications(pending=counts.get("pending", 0), failed=counts.get("failed", 0))
