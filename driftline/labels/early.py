"""Labels that came before their prediction, held a while for it (``labels.early_for``).

Across two topics (events and labels) the order in which records are read is not fixed: a
label produced a moment after its prediction may be read first. Such a label is an
``orphan`` of the join; :class:`EarlyLabels` keeps it (its id hash, value and time) for
``hold_ms`` of event time and at most ``cap`` of them (the oldest go first), and the caller
joins it again after each batch. What is still held when its time is up, or pushed out by
the cap, is an orphan after all. Pure: numpy arrays, no clock of its own; the state is the
three arrays (bounded by ``cap``: 20 bytes a label).

>>> import numpy as np
>>> e = EarlyLabels(hold_ms=1000, cap=3)
>>> e.hold(np.array([1, 2], dtype=np.uint64), np.array([1.0, 0.0]), np.array([100, 200]))
0
>>> e.hold(np.array([3, 4], dtype=np.uint64), np.array([1.0, 1.0]), np.array([300, 400]))  # 1 pushed out
1
>>> h, y, t = e.take(); h.tolist(), e.n
([2, 3, 4], 0)
>>> e.hold(h, y, t), e.expire(1250)   # the one at 200 is more than 1000 ms before 1250
(0, 1)
"""

from __future__ import annotations

import numpy as np

from driftline import state as st


class EarlyLabels:
    def __init__(self, hold_ms: int, cap: int):
        self.hold_ms, self.cap = int(hold_ms), int(cap)
        self.hash = np.empty(0, dtype=np.uint64)
        self.label = np.empty(0, dtype=np.float64)
        self.ts = np.empty(0, dtype=np.int64)
        self.changed = False

    @property
    def n(self) -> int:
        return int(self.hash.size)

    def hold(self, hashes: np.ndarray, labels: np.ndarray, ts: np.ndarray) -> int:
        """Keep these labels (after those held, in arrival order); return how many of the
        oldest the cap pushed out (orphans now)."""
        if not hashes.size:
            return 0
        self.hash = np.concatenate([self.hash, np.asarray(hashes, dtype=np.uint64)])
        self.label = np.concatenate([self.label, np.asarray(labels, dtype=np.float64)])
        self.ts = np.concatenate([self.ts, np.asarray(ts, dtype=np.int64)])
        self.changed = True
        over = max(0, self.n - self.cap)
        if over:
            self.hash, self.label, self.ts = self.hash[over:], self.label[over:], self.ts[over:]
        return over

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every label held, oldest arrival first; the holder is empty after."""
        out = self.hash, self.label, self.ts
        self.hash, self.label, self.ts = out[0][:0], out[1][:0], out[2][:0]
        self.changed = self.changed or bool(out[0].size)
        return out

    def expire(self, now_ms: int) -> int:
        """Drop the labels whose time is more than ``hold_ms`` before ``now_ms``; return how many."""
        keep = self.ts >= now_ms - self.hold_ms
        gone = int(self.n - keep.sum())
        if gone:
            self.hash, self.label, self.ts = self.hash[keep], self.label[keep], self.ts[keep]
            self.changed = True
        return gone

    def to_state(self) -> dict:
        return {"format": st.FORMAT, "hash": self.hash, "label": self.label, "ts": self.ts}

    @classmethod
    def from_state(cls, state: dict, hold_ms: int, cap: int) -> EarlyLabels:
        st.check_format(state, "labels: early labels")
        out = cls(hold_ms, cap)
        out.hash = np.asarray(state["hash"], dtype=np.uint64)
        out.label = np.asarray(state["label"], dtype=np.float64)
        out.ts = np.asarray(state["ts"], dtype=np.int64)
        if not (out.hash.shape == out.label.shape == out.ts.shape):
            raise st.StateError("labels: early labels: the stored arrays differ in length")
        return out
