"""Scale-out: partial windows, partition watermarks, and the merge transaction.

A process writes the partials its partitions closed and each partition's mark (its
event-time watermark, the models it carried, whether it is idle, its owner, and per model
version its newest event and last arrival: ``seen``, for the no-data rules) in the
transaction of its checkpoint (:meth:`Partials.write`, called by ``SqlStore.commit``).
A window is merged in a transaction of its own that first takes a PostgreSQL advisory
lock per model and group (``pg_try_advisory_xact_lock``: it ends with the transaction,
or with the session of a process that died), reads the model's partials, and writes the
summary, alert state, outbox and merge state and deletes the merged partials before it
commits (:meth:`Partials.merging`). On SQLite (one process, tests) there is no lock.

A model with labels adds each partition's performance accumulators (``perf_partials``,
upserted by the checkpoint, each write with a new random ``stamp``); the merge revises
windows from them and marks a row clean, or deletes it, only if its stamp is the one it read
(``driftline/scale/performance.py``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from driftline.errors import StoreError
from driftline.store import schema as t
from driftline.store.engine import insert_ignore, mapped, store_error, upsert

log = logging.getLogger(__name__)

_PARTIAL = ("model", "version", "start_ms", "end_ms", "topic", "partition", "closed_by", "count")
_PERF_KEY = ("model", "version", "window_key", "topic", "partition")


class Fenced(StoreError):
    """Another process owns a partition this one checkpoints: it was reassigned meanwhile."""

    def __init__(self, partitions: list[tuple[str, int]]):
        self.partitions = partitions
        super().__init__("partition(s) " + ", ".join(f"{tp}[{p}]" for tp, p in partitions)
                         + " belong to another process now; their state here is dropped (if the broker still "
                         "assigns them here, this process reads them again only after the next rebalance)")


def _lock_key(group: str, model: str) -> int:
    return int.from_bytes(hashlib.sha256(f"driftline:merge:{group}:{model}".encode()).digest()[:8], "big",
                          signed=True)


def _kept_first(c: Connection, row: dict) -> None:
    """A partial whose (window, partition) is stored already, unmerged: the same one again (a
    checkpoint retried after its commit went through) is nothing; a different one is logged,
    its events not counted twice (no path is known to make one: a partition's events that
    come after its share of a window closed are counted late)."""
    key = ("group", "model", "version", "start_ms", "topic", "partition")
    first = c.execute(select(t.partials.c.count, t.partials.c.data).where(
        *(t.partials.c[k] == row[k] for k in key))).first()
    if first is not None and (first.count, first.data) != (row["count"], row["data"]):
        log.error("model %s %s: a second partial for window %d of %s[%d] (%d events) while its first (%d "
                  "events) waits for its merge; the first is kept, the second dropped", row["model"],
                  row["version"], row["start_ms"], row["topic"], row["partition"], row["count"], first.count)


class Partials:
    def __init__(self, engine: Engine):
        self.engine = engine

    @staticmethod
    def write(c: Connection, group: str, unit) -> None:
        """The partials and partition marks of ``unit``, inside the checkpoint's transaction; a mark
        whose partition another process owns now raises :class:`Fenced` (the transaction is undone)."""
        now = time.time()
        for p in unit.partials:
            row = {"group": group, **{k: p[k] for k in _PARTIAL}, "data": p["data"], "created_at": now}
            if insert_ignore(c, t.partials, row, returning=t.partials.c.id) is None:
                _kept_first(c, row)
        for p in unit.perf_partials:
            key = {"group": group, **{k: p[k] for k in _PERF_KEY}}
            if p["data"] is None:  # the partition's share is finished: no label can reach it
                c.execute(update(t.perf_partials).where(*(t.perf_partials.c[k] == v for k, v in key.items()))
                          .values(finished=True, updated_at=now))
            else:
                revise = {"dirty": True} if p["revise"] else {}  # else a row keeps its flag (new: clean)
                upsert(c, t.perf_partials, key, {"data": p["data"], "newest": p["newest"], "stamp": secrets.randbits(62),
                                                 "finished": False, "updated_at": now, **revise},
                       inserted=revise or {"dirty": False})
        fenced = []
        for (topic, partition), mark in unit.marks.items():
            key = {"group": group, "topic": topic, "partition": partition}
            if not mark.get("claim"):
                res = c.execute(update(t.partitions).where(*(t.partitions.c[k] == v for k, v in key.items()),
                                                           t.partitions.c.owner == mark["owner"])
                                .values(watermark=mark["watermark"], models=mark["models"], idle=mark["idle"],
                                        seen=mark.get("seen"), read_to=mark.get("read_to"), updated_at=now))
                if res.rowcount == 1:
                    continue
                if c.execute(select(t.partitions.c.owner).where(
                        *(t.partitions.c[k] == v for k, v in key.items()))).first() is not None:
                    fenced.append((topic, partition))
                    continue
            upsert(c, t.partitions, key, {"watermark": mark["watermark"], "models": mark["models"],
                                          "idle": mark["idle"], "owner": mark["owner"], "seen": mark.get("seen"),
                                          "read_to": mark.get("read_to"), "updated_at": now})
        if fenced:
            raise Fenced(fenced)

    @mapped("could not load partition marks")
    def marks(self, group: str) -> dict[tuple[str, int], dict]:
        q = select(t.partitions).where(t.partitions.c.group == group)
        with self.engine.connect() as c:
            return {(r.topic, r.partition): dict(r._mapping) for r in c.execute(q)}

    @mapped("could not count partials")
    def pending(self, group: str) -> dict[str, int]:
        """Per model, how many partials wait for their merge."""
        q = select(t.partials.c.model).where(t.partials.c.group == group)
        out: dict[str, int] = {}
        with self.engine.connect() as c:
            for (model,) in c.execute(q):
                out[model] = out.get(model, 0) + 1
        return out

    @mapped("could not count performance partials")
    def pending_performance(self, group: str) -> dict[str, int]:
        """Per model, how many partitions' performance accumulators changed since their merge."""
        q = select(t.perf_partials.c.model).where(t.perf_partials.c.group == group, t.perf_partials.c.dirty)
        out: dict[str, int] = {}
        with self.engine.connect() as c:
            for (model,) in c.execute(q):
                out[model] = out.get(model, 0) + 1
        return out

    @contextmanager
    def merging(self, group: str, model: str, write: Callable[[Connection, object], None]) -> Iterator[Merge | None]:
        """A transaction holding the model's merge lock (``None`` while another process holds it)."""
        try:
            with self.engine.begin() as c:
                if c.dialect.name == "postgresql":
                    got = c.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": _lock_key(group, model)}).scalar()
                    if not got:
                        yield None
                        return
                yield Merge(c, group, model, write)
        except SQLAlchemyError as exc:
            raise store_error(exc, f"could not merge the partial windows of model {model}") from exc


class Merge:
    """One model's merge, inside its locked transaction."""

    def __init__(self, c: Connection, group: str, model: str, write):
        self.c, self.group, self.model, self._write = c, group, model, write

    def marks(self) -> dict[tuple[str, int], dict]:
        q = select(t.partitions).where(t.partitions.c.group == self.group)
        return {(r.topic, r.partition): dict(r._mapping) for r in self.c.execute(q)}

    def offsets(self) -> dict[tuple[str, int], int]:
        q = select(t.offsets).where(t.offsets.c.group == self.group)
        return {(r.topic, r.partition): r.offset for r in self.c.execute(q)}

    def partials(self) -> list[dict]:
        """The model's partials without their ``data`` (most wait for other partitions: a partial
        is ~100 KiB, read only when its window is merged, :meth:`partial_data`)."""
        P = t.partials
        q = (select(*(c for c in P.c if c.name != "data")).where(P.c.group == self.group, P.c.model == self.model)
             .order_by(P.c.version, P.c.start_ms, P.c.topic, P.c.partition))
        return [dict(r._mapping) for r in self.c.execute(q)]

    def partial_data(self, ids: list[int]) -> dict[int, bytes]:
        """The encoded windows of the partials ``ids``."""
        q = select(t.partials.c.id, t.partials.c.data).where(t.partials.c.id.in_(ids))
        return {row_id: bytes(data) for row_id, data in self.c.execute(q)}

    def state(self, version: str, source: str) -> bytes | None:
        q = select(t.states.c.data).where(t.states.c.group == self.group, t.states.c.model == self.model,
                                          t.states.c.key == version, t.states.c.source == source)
        return self.c.execute(q).scalar()

    def performance(self) -> list[dict]:
        """The model's performance accumulators of every partition, without their ``data``."""
        P = t.perf_partials
        q = (select(*(c for c in P.c if c.name != "data")).where(P.c.group == self.group, P.c.model == self.model)
             .order_by(P.c.version, P.c.window_key, P.c.topic, P.c.partition))
        return [dict(r._mapping) for r in self.c.execute(q)]

    def performance_data(self, ids: list[int]) -> dict[int, bytes]:
        """The encoded accumulators of the rows ``ids``."""
        P = t.perf_partials
        out = {}
        for lo in range(0, len(ids), 500):
            q = select(P.c.id, P.c.data).where(P.c.id.in_(ids[lo:lo + 500]))
            out |= {row_id: bytes(data) for row_id, data in self.c.execute(q)}
        return out

    def seqs(self, version: str, starts: list[str]) -> dict[str, int]:
        """The stored windows' ``seq`` of ``version`` by start (ISO-8601)."""
        W = t.windows
        q = select(W.c.start, W.c.seq).where(W.c.model == self.model, W.c.version == version, W.c.start.in_(starts))
        return {start: seq for start, seq in self.c.execute(q)} if starts else {}

    def commit(self, unit, done: list[int], revised: list[tuple[int, int]] = (),
               gone: list[tuple[int, int]] = ()) -> None:
        """Write ``unit`` (summaries, revisions, alerts, outbox, merge state), delete the partials
        ``done``; of the performance accumulators ``(id, stamp)``, mark ``revised`` clean and delete
        ``gone``, each only if no checkpoint wrote it since it was read (its stamp is unchanged)."""
        self._write(self.c, unit)
        if done:
            self.c.execute(delete(t.partials).where(t.partials.c.id.in_(done)))
        P = t.perf_partials
        for row_id, stamp in revised:
            self.c.execute(update(P).where(P.c.id == row_id, P.c.stamp == stamp).values(dirty=False))
        for row_id, stamp in gone:
            self.c.execute(delete(P).where(P.c.id == row_id, P.c.stamp == stamp))
