"""The outbox: notifications written in the checkpoint's transaction, then delivered.

:meth:`Outbox.enqueue` runs inside :meth:`~driftline.store.SqlStore.commit` (a key
already stored is ignored, so a replayed checkpoint never queues a notification twice);
everything else is for the dispatcher, which may hold an :class:`Outbox` on its own
engine (:meth:`~driftline.store.SqlStore.outbox_for_thread`): what is due or overdue,
what was sent (with the sink's receipt) or must be retried, counts, and silences
(``store/silences.py``).

**Claims** (docs/alerting.md, "Several processes"): a dispatcher takes due rows only with
:meth:`Outbox.claim`, which stamps them with its ``owner`` and a lease (``claimed_until``,
wall clock). A row whose lease is live is nobody else's, and neither is any other row of
the same incident and sink (the *unit*): one process at a time delivers an incident's
notifications to a sink, so the order the dispatcher keeps within one process (an update
waits for its ``opened`` and its receipt; superseded updates) holds across processes. On
PostgreSQL the due rows are read ``FOR UPDATE SKIP LOCKED`` (concurrent claimers skip each
other's rows) and each unit is taken under a transaction-level advisory lock
(``pg_try_advisory_xact_lock``, a unit being claimed elsewhere right now is skipped), then
claimed by one ``UPDATE … RETURNING`` that checks again; on SQLite the claim's first
statement is a write, so the whole claim runs under the database's write lock.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from driftline.store import schema as t
from driftline.store.engine import in_memory, insert_ignore, mapped
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


def incident_of(kind: str, payload) -> str | None:
    """The incident a notification belongs to (an incident's own id, a trigger's ``incident``), for any payload."""
    value = payload.get("incident") if isinstance(payload, dict) else None
    if kind == "incident" and isinstance(value, dict):
        value = value.get("id")
    return value[:40] if kind in ("incident", "trigger") and isinstance(value, str) and value else None


def _unit_lock(incident: str, sink: str) -> int:
    """The advisory-lock key of a unit: 64 bits of its hash (a collision only makes a claimer skip a unit once)."""
    digest = hashlib.blake2b(f"driftline-outbox:{incident}:{sink}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_o = t.outbox
_h = t.outbox.alias("held")


def _free(owner: str, now: float):
    """The row is not claimed by another process with a live lease."""
    return or_(_o.c.claimed_until.is_(None), _o.c.claimed_until < now, _o.c.claimed_by == owner)


def _unit_free(owner: str, now: float):
    """No other pending row of the row's unit (incident and sink) is claimed by another process with a live lease."""
    return ~exists().where(_h.c.incident == _o.c.incident, _h.c.sink == _o.c.sink, _h.c.status == "pending",
                           _h.c.claimed_by != owner, _h.c.claimed_until >= now)


class Outbox(Silences):
    """The outbox queries on ``engine``; ``owns_engine``: :meth:`close` disposes of it. The silence
    queries (``add_silence``, ``silences``, ``active_silences``, ``expire_silence``) are
    :class:`~driftline.store.silences.Silences`'."""

    def __init__(self, engine: Engine, owns_engine: bool = False):
        self.engine, self.owns_engine = engine, owns_engine
        #: another connection (a thread, a process) can see this database: claims can be contested
        self.shared = not in_memory(engine.url)

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
                                            created_at=now, incident=incident_of(n.kind, n.payload)))

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

    @mapped("could not claim due notifications")
    def claim(self, owner: str, now: float, until: float, limit: int = 100, exclude_sinks: tuple = (),
              early: bool = False) -> list[OutboxItem]:
        """Claim for ``owner`` until ``until`` what :meth:`due` would give, less the rows and units
        another process holds (see the module's docstring); return them in :meth:`due`'s order."""
        due = _o.c.next_attempt_at <= now
        if early:
            due = due | (_o.c.attempts == 0)
        claimable = (_o.c.status == "pending", due, _free(owner, now), _unit_free(owner, now))
        q = (select(_o.c.id, _o.c.incident, _o.c.sink).where(*claimable)
             .order_by(_o.c.next_attempt_at, _o.c.id).limit(limit).with_for_update(skip_locked=True, of=_o))
        if exclude_sinks:
            q = q.where(_o.c.sink.not_in(exclude_sinks))
        with self.engine.begin() as c:
            if c.dialect.name == "sqlite":  # a write first (of no row): the write lock is held from here
                c.execute(update(_o).where(_o.c.id == -1).values(claimed_until=None))
            candidates = c.execute(q).all()
            locked: dict[tuple[str, str], bool] = {}
            for r in candidates:
                if r.incident is not None and (r.incident, r.sink) not in locked:
                    locked[r.incident, r.sink] = self._lock_unit(c, r.incident, r.sink)
            ids = [r.id for r in candidates if r.incident is None or locked[r.incident, r.sink]]
            if not ids:
                return []
            rows = c.execute(update(_o).where(_o.c.id.in_(ids), *claimable)
                             .values(claimed_by=owner, claimed_until=until).returning(*_o.c)).all()
        return [_item(r) for r in sorted(rows, key=lambda r: (r.next_attempt_at, r.id))]

    @staticmethod
    def _lock_unit(c: Connection, incident: str, sink: str) -> bool:
        """PostgreSQL: whether this transaction got the unit's advisory lock (held until it ends); SQLite: yes."""
        if c.dialect.name != "postgresql":
            return True
        return bool(c.execute(select(func.pg_try_advisory_xact_lock(_unit_lock(incident, sink)))).scalar())

    @mapped("could not renew a delivery lease")
    def renew(self, owner: str, until: float) -> int:
        """Extend ``owner``'s live claims on rows still pending to ``until``; return how many."""
        with self.engine.begin() as c:
            return c.execute(update(_o).where(_o.c.status == "pending", _o.c.claimed_by == owner,
                                              _o.c.claimed_until.is_not(None))
                             .values(claimed_until=until)).rowcount

    @mapped("could not release claimed notifications")
    def release(self, owner: str) -> None:
        """End ``owner``'s leases (the end of a pass): what it did not deliver is anyone's again.
        ``claimed_by`` stays: who had the row last (who delivered it, for a sent one). Only pending
        rows can hold a lease (every status change ends it), so the status index bounds the scan."""
        with self.engine.begin() as c:
            c.execute(update(_o).where(_o.c.status == "pending", _o.c.claimed_by == owner,
                                       _o.c.claimed_until.is_not(None)).values(claimed_until=None))

    @mapped("could not read overdue notifications")
    def overdue(self, now: float, deadline: float, limit: int = 100, owner: str | None = None) -> list[OutboxItem]:
        """Pending notifications past their deadline (``deadline_at``, else ``created_at + deadline``);
        with ``owner``, none that another process holds."""
        due = func.coalesce(t.outbox.c.deadline_at, t.outbox.c.created_at + deadline)
        q = select(t.outbox).where(t.outbox.c.status == "pending", due < now).order_by(t.outbox.c.id).limit(limit)
        if owner is not None:
            q = q.where(_free(owner, now))
        with self.engine.connect() as c:
            return [_item(r) for r in c.execute(q)]

    @mapped("could not mark a notification sent")
    def mark_sent(self, item_id: int, status: str = "sent", receipt: Receipt | None = None) -> None:
        """Delivered (or ``silenced``): ``status``, the time, and what the sink said (``receipt.detail``)."""
        values = {"status": status, "sent_at": time.time(), "claimed_until": None}
        if receipt is not None:
            values["receipt"] = receipt.detail
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(**values))

    @mapped("could not record a delivery attempt")
    def mark_attempt(self, item_id: int, attempts: int, owner: str | None = None, until: float | None = None) -> bool:
        """Before sending: the attempt is recorded, so after a crash mid-send the next one knows
        the sink may already have it (``DeliveryContext.attempted``). With ``owner``: only while
        the row is pending and still ``owner``'s (its lease renewed to ``until``); return whether
        it was, i.e. whether ``owner`` may send it."""
        q, values = update(_o).where(_o.c.id == item_id), {"attempts": attempts}
        if owner is not None:
            q, values = q.where(_o.c.claimed_by == owner, _o.c.status == "pending"), values | {"claimed_until": until}
        with self.engine.begin() as c:
            return c.execute(q.values(**values)).rowcount == 1

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
                                                                               sent_at=time.time(), claimed_until=None))
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
    def mark_retry(self, item_id: int, attempts: int, next_at: float, error: str, give_up: bool,
                   owner: str | None = None, now: float | None = None) -> bool:
        """A failed attempt: retry at ``next_at``, or (``give_up``) status ``failed``; the lease ends.
        ``error`` must already be redacted. With ``owner``: only while the row is pending and no
        other process holds it at ``now``; return whether it was written."""
        q = update(_o).where(_o.c.id == item_id)
        if owner is not None:
            q = q.where(_o.c.status == "pending", _free(owner, time.time() if now is None else now))
        with self.engine.begin() as c:
            return c.execute(q.values(attempts=attempts, next_attempt_at=next_at, last_error=error[:500],
                                      status="failed" if give_up else "pending", claimed_until=None)).rowcount == 1

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
