"""One append-only chunk of pending predictions: columns, a live mask, what is stored.

A chunk holds up to ``capacity`` predictions in arrival order as parallel numpy
columns (``hash``, ``version``, ``window``, ``pred``, ``ts`` and one
``segment:NAME`` per segment feature). A removed prediction (joined, expired,
evicted) is only marked dead; the chunk is rewritten (compacted) by its owner
when few rows are live. The chunk remembers what of it the store already holds
(``written`` rows in ``parts`` keyed by their first row, and whether a
tombstone is stored) so that a checkpoint writes only what is new.
"""

from __future__ import annotations

import numpy as np

from driftline.state import StateError


class Chunk:
    def __init__(self, cid: int, columns: dict[str, np.ndarray], n: int, live: np.ndarray):
        self.cid = cid
        self.columns = columns
        self.n = n
        self.live = live
        self.nlive = int(live[:n].sum())
        self.written = 0  # rows [0, written) are in the store, as ``parts``
        self.parts: list[int] = []
        self.dead_dirty = False
        self.dead_stored = False
        self._min_ts: int | None = None

    @classmethod
    def empty(cls, cid: int, capacity: int, dtypes: dict[str, np.dtype]) -> Chunk:
        cols = {k: np.empty(capacity, dtype=dt) for k, dt in dtypes.items()}
        return cls(cid, cols, 0, np.zeros(capacity, dtype=bool))

    @property
    def capacity(self) -> int:
        return self.live.size

    @property
    def nbytes(self) -> int:
        return self.live.nbytes + sum(c.nbytes for c in self.columns.values())

    @property
    def hashes(self) -> np.ndarray:
        return self.columns["hash"][:self.n]

    def append(self, cols: dict[str, np.ndarray]) -> int:
        """Append rows from the start of ``cols``; the number taken (as many as fit)."""
        take = min(self.capacity - self.n, next(iter(cols.values())).size)
        for k, c in self.columns.items():
            c[self.n:self.n + take] = cols[k][:take]
        self.live[self.n:self.n + take] = True
        if take and (self.nlive == 0 or self._min_ts is not None):
            low = int(self.columns["ts"][self.n:self.n + take].min())
            self._min_ts = low if self.nlive == 0 else min(self._min_ts, low)
        self.n += take
        self.nlive += take
        return take

    def min_ts(self) -> int | None:
        """A lower bound of the live rows' event times (exact when last computed; removals
        only raise the true minimum), ``None`` when no row is live."""
        if not self.nlive:
            return None
        if self._min_ts is None:
            self._min_ts = int(self.columns["ts"][:self.n][self.live[:self.n]].min())
        return self._min_ts

    def expire(self, cutoff: int) -> np.ndarray:
        """The live rows with event time before ``cutoff``; the bound becomes exact."""
        rows = self.live_rows()
        ts = self.columns["ts"][rows]
        old = ts < cutoff
        self._min_ts = int(ts[~old].min()) if (~old).any() else None
        return rows[old]

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.live[:self.n])

    def kill(self, rows: np.ndarray) -> None:
        """Mark live ``rows`` dead."""
        if rows.size:
            self.live[rows] = False
            self.nlive -= rows.size
            self.dead_dirty = True

    def compact(self) -> list[str]:
        """Keep only the live rows; the store keys that now hold stale data."""
        keep = self.live_rows()
        self.columns = {k: c[keep] for k, c in self.columns.items()}
        self.n = self.nlive = keep.size
        self.live = np.ones(self.n, dtype=bool)
        stale = [part_key(self.cid, s) for s in self.parts] + ([dead_key(self.cid)] if self.dead_stored else [])
        self.written, self.parts, self.dead_dirty, self.dead_stored = 0, [], False, False
        return stale

    def part_state(self) -> dict:
        """The rows added since the store last took this chunk."""
        s = self.written
        return {"start": s, "columns": {k: c[s:self.n].copy() for k, c in self.columns.items()}}

    def dead_state(self) -> dict | None:
        """The removed rows: a sorted ``uint32`` row list or a packed bitmap, whichever is smaller."""
        dead = ~self.live[:self.n]
        ndead = int(dead.sum())
        if ndead == 0:
            return None
        if 4 * ndead <= (self.n + 7) // 8:
            return {"rows": np.flatnonzero(dead).astype(np.uint32)}
        return {"bits": np.packbits(dead), "n": self.n}

    def stored(self) -> None:
        """The store now holds this chunk as it is."""
        if self.written < self.n:
            self.parts.append(self.written)
            self.written = self.n
        if self.dead_dirty:
            self.dead_stored = self.nlive < self.n
            self.dead_dirty = False

    @classmethod
    def from_parts(cls, cid: int, parts: list[dict], dead: dict | None, capacity: int | None) -> Chunk:
        """Rebuild from stored parts (any order) and tombstone; ``capacity`` reopens it for appends."""
        parts = sorted(parts, key=lambda p: p["start"])
        starts = [p["start"] for p in parts]
        lengths = [next(iter(p["columns"].values())).size for p in parts]
        if starts != [sum(lengths[:i]) for i in range(len(parts))]:
            raise StateError(f"label-join chunk {cid}: stored parts do not follow each other ({starts})")
        cols = {k: np.concatenate([p["columns"][k] for p in parts]) for k in parts[0]["columns"]}
        n = sum(lengths)
        live = np.ones(n, dtype=bool)
        if dead is not None and "rows" in dead:
            live[dead["rows"]] = False
        elif dead is not None:
            live = ~np.unpackbits(dead["bits"], count=n).astype(bool)
        if capacity is not None and capacity > n:
            cols = {k: np.concatenate([c, np.empty(capacity - n, dtype=c.dtype)]) for k, c in cols.items()}
            live = np.concatenate([live, np.zeros(capacity - n, dtype=bool)])
        out = cls(cid, cols, n, live)
        out.written, out.parts, out.dead_stored = n, starts, dead is not None
        return out


def part_key(cid: int, start: int) -> str:
    return f"chunk/{cid}/{start}"


def dead_key(cid: int) -> str:
    return f"dead/{cid}"
