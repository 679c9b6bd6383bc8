"""State and offsets: where a consumer group resumes.

The source offsets, the reference profiles, the group's checkpoint row (the pickled
monitors of the legacy format, until per-key state replaces it) and the lock that keeps
one process per group. :meth:`State.write` is the part of the one transaction in
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
    def lock_group(self, group: str) -> None:
        """Refuse to run beside another process serving ``group`` (see ``store/lock.py``)."""
        if self._lock is None:
            self._lock = GroupLock(self.engine, make_url(self.url).database, group)

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

    @mapped("could not load the checkpoint")
    def load_checkpoint(self, group: str) -> bytes | None:
        with self.engine.connect() as c:
            return c.execute(select(t.checkpoints.c.state).where(t.checkpoints.c.group == group)).scalar()

    @mapped("could not load offsets")
    def load_offsets(self, group: str) -> dict[tuple[str, int], int]:
        q = select(t.offsets).where(t.offsets.c.group == group)
        with self.engine.connect() as c:
            return {(r.topic, r.partition): r.offset for r in c.execute(q)}

    @mapped("could not reset the checkpoint")
    def reset(self, group: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(t.checkpoints).where(t.checkpoints.c.group == group))

    @staticmethod
    def write(c: Connection, group: str, unit) -> None:
        """References, offsets and the checkpoint of ``unit``, inside the caller's transaction."""
        for profile in unit.references:
            upsert(c, t.references, {"model": profile.model},
                   {"profile": profile.to_dict(), "created_at": time.time()})
        for (topic, partition), offset in unit.offsets.items():
            upsert(c, t.offsets, {"group": group, "topic": topic, "partition": partition}, {"offset": offset})
        if unit.checkpoint is not None:
            upsert(c, t.checkpoints, {"group": group}, {"state": unit.checkpoint, "updated_at": time.time()})
