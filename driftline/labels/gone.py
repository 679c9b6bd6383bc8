"""A bounded record of removed prediction ids: which were joined, expired or evicted.

It tells a label whose prediction is gone (``duplicate`` if it was joined,
``expired`` if it expired or was evicted) from one that never had a
prediction (``orphan``). It is exact — sorted ``uint64`` hashes, no false
positives beyond hash collisions — and bounded: ids are kept in segments, one
per checkpoint, and whole segments are forgotten oldest first once more than
``remember`` ids are held (the segment being filled since the last checkpoint
is never forgotten, so the bound is ``remember`` plus one checkpoint's
removals). A forgotten id is as if never seen. Each sealed segment is stored
under its own key, written once and deleted when forgotten.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from driftline.labels.index import Index
from driftline.state import StateError

JOINED, EXPIRED, EVICTED = 1, 2, 3


def gone_key(seq: int) -> str:
    return f"gone/{seq}"


class Gone:
    def __init__(self, remember: int):
        self.remember = remember
        self.segments: deque[tuple[int, np.ndarray, np.ndarray]] = deque()  # (seq, hashes, reasons), stored
        self.current: list[tuple[np.ndarray, np.ndarray]] = []
        self.seq = 0  # the current segment's
        self.held = 0
        self.forgotten = 0
        self.deleted: set[str] = set()
        self._index = Index()

    @property
    def nbytes(self) -> int:
        arrays = [a for _, h, r in self.segments for a in (h, r)] + [a for pair in self.current for a in pair]
        return self._index.nbytes + sum(a.nbytes for a in arrays)

    def add(self, hashes: np.ndarray, reason: int) -> None:
        if hashes.size == 0:
            return
        self.current.append((hashes.copy(), np.full(hashes.size, reason, dtype=np.uint8)))
        self._index.insert(hashes, np.full(hashes.size, self.seq * 4 + reason, dtype=np.int64))
        self.held += hashes.size
        while self.segments and self.held > self.remember:
            seq, h, _ = self.segments.popleft()
            self.held -= h.size
            self.forgotten += h.size
            self.deleted.add(gone_key(seq))
        if self._index.size > 2 * self.held + 65536:
            self._rebuild()

    def reasons(self, hashes: np.ndarray) -> np.ndarray:
        """``JOINED``, ``EXPIRED`` or ``EVICTED`` per hash, 0 where not remembered."""
        found = self._index.find(hashes)
        oldest = self.segments[0][0] if self.segments else self.seq
        return np.where((found >= 0) & (found // 4 >= oldest), found % 4, 0).astype(np.uint8)

    def dirty_state(self) -> dict:
        if not self.current:
            return {}
        h = np.concatenate([h for h, _ in self.current])
        r = np.concatenate([r for _, r in self.current])
        return {gone_key(self.seq): {"hash": h, "reason": r}}

    def stored(self) -> None:
        """The store now holds the current segment: seal it."""
        if self.current:
            (seg,) = self.dirty_state().values()
            self.segments.append((self.seq, seg["hash"], seg["reason"]))
            self.current = []
            self.seq += 1
        self.deleted = set()

    def _rebuild(self) -> None:
        parts = [(h, np.full(h.size, seq * 4, dtype=np.int64) + r) for seq, h, r in self.segments]
        parts += [(h, np.full(h.size, self.seq * 4, dtype=np.int64) + r) for h, r in self.current]
        if not parts:
            self._index.rebuild(np.empty(0, np.uint64), np.empty(0, np.int64))
            return
        # oldest first: a key held twice (re-added after it was forgotten) finds its newest entry
        self._index.rebuild(np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts]))

    @classmethod
    def from_state(cls, remember: int, seq: int, held: int, forgotten: int, segments: dict[int, dict]) -> Gone:
        out = cls(remember)
        out.seq, out.forgotten = seq, forgotten
        for s in sorted(segments):
            out.segments.append((s, segments[s]["hash"], segments[s]["reason"]))
        out.held = sum(h.size for _, h, _ in out.segments)
        if out.held != held:
            raise StateError(f"label-join state: {out.held} removed ids stored, {held} expected")
        out._rebuild()
        return out
