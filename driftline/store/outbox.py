"""The outbox: notifications written in the checkpoint's transaction, then delivered.

:meth:`Outbox.enqueue` runs inside :meth:`~driftline.store.SqlStore.commit` (a key
already stored is ignored, so a replayed checkpoint never queues a notification twice);
everything else is for the dispatcher, which may hold an :class:`Outbox` on its own
engine (:meth:`~driftline.store.SqlStore.outbox_for_thread`): what is due or overdue,
what was sent (with the sink's receipt) or must be retried, counts, and silences
(``store/silences.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from driftline.store import schema as t
from driftline.store.engine import insert_ignore, mapped
from driftline.store.silences import Silences
from driftline.types import Receipt


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    sink: str
    kind: str
    payload: dict
    attempts: int
    created_at: float = 0.0
    deadline_at: float | None = None  # None: created_at + alerts.delivery_deadline
    last_error: str | None = None


def _item(r) -> OutboxItem:
    return OutboxItem(r.id, r.key, r.sink, r.kind, r.payload, r.attempts, r.created_at, r.deadline_at, r.last_error)


class Outbox(Silences):
    """The outbox queries on ``engine``; ``owns_engine``: :meth:`close` disposes of it. The silence
    queries (``add_silence``, ``silences``, ``active_silences``, ``expire_silence``) are
    :class:`~driftline.store.silences.Silences`'."""

    def __init__(self, engine: Engine, owns_engine: bool = False):
        self.engine, self.owns_engine = engine, owns_engine

    def close(self) -> None:
        if self.owns_engine:
            self.engine.dispose()

    @staticmethod
    def enqueue(c: Connection, notifications) -> None:
        """Queue ``notifications`` inside the caller's transaction; a stored key is left as it is."""
        now = time.time()
        for n in notifications:
            insert_ignore(c, t.outbox, dict(key=n.key, sink=n.sink, kind=n.kind, payload=n.payload,
                                            status="pending", attempts=0, next_attempt_at=n.not_before,
                                            created_at=now))

    @mapped("could not read due notifications")
    def due(self, now: float, limit: int = 100, exclude_sinks: tuple = (), early: bool = False) -> list[OutboxItem]:
        """Pending notifications due at ``now``, the longest waiting first, none for ``exclude_sinks``;
        ``early``: also those never tried that wait for a later time (``group_wait``)."""
        due = t.outbox.c.next_attempt_at <= now
        if early:
            due = due | (t.outbox.c.attempts == 0)
        q = (select(t.outbox).where(t.outbox.c.status == "pending", due)
             .order_by(t.outbox.c.next_attempt_at, t.outbox.c.id).limit(limit))
        if exclude_sinks:
            q = q.where(t.outbox.c.sink.not_in(exclude_sinks))
        with self.engine.connect() as c:
            return [_item(r) for r in c.execute(q)]

    @mapped("could not read overdue notifications")
    def overdue(self, now: float, deadline: float, limit: int = 100) -> list[OutboxItem]:
        """Pending notifications past their deadline (``deadline_at``, else ``created_at + deadline``)."""
        due = func.coalesce(t.outbox.c.deadline_at, t.outbox.c.created_at + deadline)
        q = select(t.outbox).where(t.outbox.c.status == "pending", due < now).order_by(t.outbox.c.id).limit(limit)
        with self.engine.connect() as c:
            return [_item(r) for r in c.execute(q)]

    @mapped("could not mark a notification sent")
    def mark_sent(self, item_id: int, status: str = "sent", receipt: Receipt | None = None) -> None:
        """Delivered (or ``silenced``): ``status``, the time, and what the sink said (``receipt.detail``)."""
        values = {"status": status, "sent_at": time.time()}
        if receipt is not None:
            values["receipt"] = receipt.detail
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(**values))

    @mapped("could not record a delivery attempt")
    def mark_attempt(self, item_id: int, attempts: int) -> None:
        """Before sending: the attempt is recorded, so after a crash mid-send the next one knows
        the sink may already have it (``DeliveryContext.attempted``)."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(attempts=attempts))

    # -- incidents (docs/alerting.md) -----------------------------------------------

    @mapped("could not read an incident's first notification")
    def opened(self, incident: str, sink: str) -> tuple[str, dict | None] | None:
        """The status and receipt of incident ``incident``'s ``opened`` notification to ``sink``."""
        q = (select(t.outbox.c.status, t.outbox.c.receipt)
             .where(t.outbox.c.key.startswith(f"incident:{incident}:opened:", autoescape=True),
                    t.outbox.c.sink == sink).order_by(t.outbox.c.id).limit(1))
        with self.engine.connect() as c:
            row = c.execute(q).first()
        return None if row is None else (row.status, row.receipt)

    @mapped("could not supersede an incident's notification")
    def supersede(self, incident: str, sink: str, item_id: int, new_features: list[str]) -> tuple[int, list] | None:
        """If a later notification of ``incident`` to ``sink`` is still to be sent, mark
        ``item_id`` superseded and give the later one its ``new_features`` too; return the
        later one's id and new features."""
        q = (select(t.outbox.c.id, t.outbox.c.payload)
             .where(t.outbox.c.key.startswith(f"incident:{incident}:", autoescape=True), t.outbox.c.sink == sink,
                    t.outbox.c.id > item_id, t.outbox.c.status == "pending").order_by(t.outbox.c.id).limit(1))
        with self.engine.begin() as c:
            later = c.execute(q).first()
            if later is None:
                return None
            payload = dict(later.payload)
            inc = dict(payload["incident"])
            inc["new_features"] = list(dict.fromkeys([*new_features, *inc.get("new_features", [])]))
            c.execute(update(t.outbox).where(t.outbox.c.id == later.id).values(payload={**payload, "incident": inc}))
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(status="superseded",
                                                                               sent_at=time.time()))
            return later.id, inc["new_features"]

    @mapped("could not read an incident")
    def incident(self, incident: str) -> dict | None:
        """The incident's stored state (``Incident.to_state()``), as the last checkpoint left it."""
        with self.engine.connect() as c:
            row = c.execute(select(t.incidents.c.state).where(t.incidents.c.id == incident)).first()
        return None if row is None else row.state

    @mapped("could not read open incidents")
    def open_incidents(self) -> list[dict]:
        q = select(t.incidents.c.state).where(t.incidents.c.status == "firing")
        with self.engine.connect() as c:
            return [r.state for r in c.execute(q)]

    @mapped("could not record a failed delivery")
    def mark_retry(self, item_id: int, attempts: int, next_at: float, error: str, give_up: bool) -> None:
        """A failed attempt: retry at ``next_at``, or (``give_up``) status ``failed``.
        ``error`` must already be redacted."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
                attempts=attempts, next_attempt_at=next_at, last_error=error[:500],
                status="failed" if give_up else "pending"))

    @mapped("could not count notifications")
    def counts(self, statuses: tuple[str, ...] = ("pending", "failed")) -> dict[str, int]:
        """How many notifications are in each of ``statuses`` (by the status index: sent rows,
        which only grow, are not counted unless asked for)."""
        q = (select(t.outbox.c.status, func.count()).where(t.outbox.c.status.in_(statuses))
             .group_by(t.outbox.c.status))
        with self.engine.connect() as c:
            return {status: n for status, n in c.execute(q)}

    @mapped("could not read undelivered notifications")
    def undelivered(self, limit: int = 1000) -> list[dict]:
        """Notifications still pending and those given up (``failed``), oldest first."""
        q = (select(t.outbox).where(t.outbox.c.status.in_(("pending", "failed")))
             .order_by(t.outbox.c.id).limit(limit))
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    @mapped("could not retry failed notifications")
    def retry_failed(self, now: float, deadline_at: float) -> int:
        """Put every given-up notification back to pending, due now, with a fresh deadline."""
        with self.engine.begin() as c:
            return c.execute(update(t.outbox).where(t.outbox.c.status == "failed").values(
                status="pending", attempts=0, next_attempt_at=now, deadline_at=deadline_at)).rowcount
