"""One process per consumer group: a lock that dies with its holder.

driftline keeps one checkpoint of open windows per consumer group, so two
processes serving the same group would overwrite each other's state: the second one
refuses to start, unless all of them run in scale-out mode (``kafka.scale_out``: state
per partition), which holds the lock shared. The lock is a
PostgreSQL session advisory lock, or an OS file lock beside a SQLite file;
either is released by the operating system or the server when the process
dies, so a restart after a crash never waits.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from driftline.errors import StoreError


def _key(group: str) -> int:
    return int.from_bytes(hashlib.sha256(f"driftline:{group}".encode()).digest()[:8], "big", signed=True)


class GroupLock:
    """``shared``: scale-out processes hold the lock together (PostgreSQL's shared advisory lock),
    so a single-process service or ``db reset-state`` (exclusive) is refused while any runs, and
    they are refused while one of those does."""

    def __init__(self, engine: Engine, database: str | None, group: str, shared: bool = False):
        self.group, self.engine, self.shared = group, engine, shared
        self._conn = None
        self._file = None
        self._advisory_lock = engine.dialect.name == "postgresql"
        if self._advisory_lock:
            self._advisory()
        elif database and database != ":memory:":
            self._file = open(Path(f"{database}.{hashlib.sha1(group.encode()).hexdigest()[:12]}.lock"), "w")
            try:
                fcntl.flock(self._file, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                self._file.close()
                raise StoreError(self._busy()) from exc

    def _advisory(self) -> None:
        self._conn = self.engine.connect()
        how = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
        got = self._conn.execute(text(f"SELECT {how}(:k)"), {"k": _key(self.group)}).scalar()
        self._conn.commit()
        if not got:
            self._conn.close()
            self._conn = None
            raise StoreError(self._busy())

    def check(self) -> None:
        """After a database outage: the session that held the lock may be gone; take it again
        (or fail, if another process took it meanwhile)."""
        if not self._advisory_lock:
            return
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1")).scalar()
                self._conn.commit()
                return
            except Exception:  # noqa: BLE001 - the session is gone, and the lock with it
                try:
                    self._conn.invalidate()
                    self._conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self._conn = None
        self._advisory()

    def _busy(self) -> str:
        if self.shared:
            return (f"a single driftline process (or `db reset-state`) is serving consumer group {self.group!r} "
                    "with this database; scale-out processes (kafka.scale_out) cannot join it")
        return (f"another driftline process is serving consumer group {self.group!r} with this "
                f"database; run one process per group, or set kafka.scale_out: true on all of them")

    def release(self) -> None:
        self._advisory_lock = False
        if self._conn is not None:
            try:  # unlocked now: a closed session's lock lingers until its backend has exited
                how = "pg_advisory_unlock_shared" if self.shared else "pg_advisory_unlock"
                self._conn.execute(text(f"SELECT {how}(:k)"), {"k": _key(self.group)})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - the session is gone, and the lock with it
                pass
            self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
