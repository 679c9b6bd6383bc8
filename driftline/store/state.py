"""State and offsets: where a consumer group resumes.

The source offsets, the reference profiles, the keyed states (``states``: each stateful
part's encoded state per consumer group, model, key and source partition; only changed
keys are written), the legacy checkpoint row (the pickle of older releases, read as bytes
for its one-off conversion and deleted after it) and the lock that keeps one process per
group. :meth:`State.write` is the part of the one transaction in
:meth:`~driftline.store.SqlStore.commit` that these tables take.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine, make_url

from driftline.store import schema as t
from driftline.store.engine import mapped, upsert
from driftline.store.lock import GroupLock


class State:
    def __init__(self, engine: Engine, url: str):
        self.engine, self.url = engine, url
        self._lock: GroupLock | None = None

    @mapped("could not take the consumer group's lock")
    def lock_group(self, group: str, shared: bool = False) -> None:
        """Refuse to run beside another process serving ``group`` (see ``store/lock.py``;
        ``shared``: beside other scale-out processes only)."""
        if self._lock is None:
            self._lock = GroupLock(self.engine, make_url(self.url).database, group, shared)

    @mapped("could not take the consumer group's lock again")
    def check_lock(self) -> None:
        """Take the group's lock again if the database session that held it ended in an outage."""
        if self._lock is not None:
            self._lock.check()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @mapped("could not load reference profiles")
    def load_references(self) -> dict[str, dict]:
        with self.engine.connect() as c:
            return {r.model: r.profile for r in c.execute(select(t.references))}

    @mapped("could not load the stored state")
    def load_states(self, group: str, source: str | None = None) -> dict[tuple[str, str, str], bytes]:
        """Every state key of ``group`` (of one ``source`` only, if given) → its encoded state."""
        q = select(t.states).where(t.states.c.group == group)
        if source is not None:
            q = q.where(t.states.c.source == source)
        with self.engine.connect() as c:
            return {(r.model, r.key, r.source): r.data for r in c.execute(q)}

    @mapped("could not load the checkpoint of the previous release")
    def load_checkpoint(self, group: str) -> bytes | None:
        """The pickled checkpoint an older release wrote (bytes, never unpickled here)."""
        with self.engine.connect() as c:
            return c.execute(select(t.checkpoints.c.state).where(t.checkpoints.c.group == group)).scalar()

    @mapped("could not load offsets")
    def load_offsets(self, group: str) -> dict[tuple[str, int], int]:
        q = select(t.offsets).where(t.offsets.c.group == group)
        with self.engine.connect() as c:
            return {(r.topic, r.partition): r.offset for r in c.execute(q)}

    @mapped("could not reset the stored state")
    def reset(self, group: str) -> int:
        """Forget ``group``'s open windows and detector state (closed windows, alerts and offsets stay),
        and in scale-out its partial windows, performance accumulators and partition watermarks."""
        with self.engine.begin() as c:
            c.execute(delete(t.checkpoints).where(t.checkpoints.c.group == group))
            c.execute(delete(t.partials).where(t.partials.c.group == group))
            c.execute(delete(t.partitions).where(t.partitions.c.group == group))
            c.execute(delete(t.perf_partials).where(t.perf_partials.c.group == group))
            return c.execute(delete(t.states).where(t.states.c.group == group)).rowcount

    @staticmethod
    def write(c: Connection, group: str, unit) -> None:
        """References, offsets and the changed states of ``unit``, inside the caller's transaction."""
        for profile in unit.references:
            upsert(c, t.references, {"model": profile.model},
                   {"profile": profile.to_dict(), "created_at": time.time()})
        for (topic, partition), offset in unit.offsets.items():
            upsert(c, t.offsets, {"group": group, "topic": topic, "partition": partition}, {"offset": offset})
        now = time.time()
        for (model, key, source), data in unit.states.items():
            where = {"group": group, "model": model, "key": key, "source": source}
            if data is None:
                c.execute(delete(t.states).where(*(t.states.c[k] == v for k, v in where.items())))
            else:
                upsert(c, t.states, where, {"data": data, "updated_at": now})
        if unit.drop_legacy:
            c.execute(delete(t.checkpoints).where(t.checkpoints.c.group == group))
