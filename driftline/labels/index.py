"""A sorted-runs index from ``uint64`` keys to ``int64`` values, in numpy.

New keys form a small sorted run; runs merge (a linear merge by
``np.searchsorted``) while the older of the last two is less than
``FACTOR`` times the newer, so there are ``O(log n)`` runs and each key is
copied ``O(log n)`` times. A lookup searches the runs newest first and returns
the newest value for a key, so a key inserted again overrides its old entry
without deleting it. Entries are never deleted: the owner checks what a value
points at and rebuilds the index when stale entries pile up.

>>> ix = Index()
>>> ix.insert(np.array([5, 1], dtype=np.uint64), np.array([50, 10]))
>>> ix.insert(np.array([5], dtype=np.uint64), np.array([55]))
>>> ix.find(np.array([1, 5, 7], dtype=np.uint64)).tolist()
[10, 55, -1]
"""

from __future__ import annotations

import numpy as np

FACTOR = 4


def _merge(old: tuple, new: tuple) -> tuple:
    (ak, av), (bk, bv) = old, new
    pos = np.searchsorted(ak, bk, side="right") + np.arange(bk.size)  # newer after equal older keys
    rest = np.ones(ak.size + bk.size, dtype=bool)
    rest[pos] = False
    keys, vals = np.empty(rest.size, dtype=np.uint64), np.empty(rest.size, dtype=np.int64)
    keys[pos], vals[pos] = bk, bv
    keys[rest], vals[rest] = ak, av
    return keys, vals


def _order(keys: np.ndarray) -> np.ndarray:
    """A stable sorting order of ``keys``: numpy's default sort (several times faster than its
    stable one on ``uint64``) when no key repeats, which is the usual case, else the stable one."""
    order = np.argsort(keys)
    ordered = keys[order]
    if ordered.size > 1 and (ordered[1:] == ordered[:-1]).any():
        return np.argsort(keys, kind="stable")
    return order


class Index:
    def __init__(self):
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    @property
    def size(self) -> int:
        return sum(k.size for k, _ in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.runs)

    def insert(self, keys: np.ndarray, vals: np.ndarray) -> None:
        """Add entries; of a key given twice in one call the later one is found."""
        if keys.size == 0:
            return
        order = _order(keys)
        self.runs.append((keys[order], np.asarray(vals, dtype=np.int64)[order]))
        while len(self.runs) > 1 and self.runs[-2][0].size < FACTOR * self.runs[-1][0].size:
            new = self.runs.pop()
            self.runs[-1] = _merge(self.runs[-1], new)

    def rebuild(self, keys: np.ndarray, vals: np.ndarray) -> None:
        """Replace every entry by these (one run; the arrays given are consumed)."""
        self.runs = []
        order = _order(keys)
        keys = keys[order]  # one sorted copy at a time: the peak is two arrays and the order
        vals = vals.astype(np.int64, copy=False)[order]
        del order
        if keys.size:
            self.runs.append((keys, vals))

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The newest value of each key, ``-1`` where there is none."""
        out = np.full(keys.size, -1, dtype=np.int64)
        todo = np.argsort(keys)  # sorted queries: each search starts where the last ended (any order of ties)
        for rk, rv in reversed(self.runs):
            if todo.size == 0:
                break
            q = keys[todo]
            i = np.searchsorted(rk, q, side="right") - 1
            hit = (i >= 0) & (rk[np.maximum(i, 0)] == q)
            out[todo[hit]] = rv[i[hit]]
            todo = todo[~hit]
        return out
