"""The label-join buffer: pending predictions of one model, waiting for their labels.

Everything is batch-at-a-time numpy; no Python object per prediction. A pending
prediction is a row of a :class:`~driftline.labels.chunk.Chunk` — its id's 64-bit
hash (:func:`~driftline.labels.hashing.hash_ids`), version code, window, prediction,
segment codes and event time — found through a sorted-runs :class:`Index`. Removed
ids go to a bounded :class:`~driftline.labels.gone.Gone` record so that a late label
is told apart as ``expired`` or ``duplicate`` rather than ``orphan``.

Time: ``expire(now_ms)`` removes predictions whose *event time* is older than
``now_ms - max_delay_ms`` (a label's delay is measured in event time too); ``now_ms``
is the caller's clock, e.g. the newest label time seen, so a replay expires what the
live run expired. The size cap evicts in *arrival* order (oldest added first).

State is incremental: ``dirty_state()`` gives ``{"put": {key: state}, "delete": [keys]}``
with only the chunk parts, tombstones and removed-id segments changed since the last
``clean()``; ``from_state(states)`` rebuilds the buffer from every stored key.

>>> buf = JoinBuffer(segments=("country",), max_delay_ms=1000, max_pending=100)
>>> buf.add(["a", "b"], [0, 0], [7, 7], [0.9, 0.2], {"country": [1, 2]}, [100, 200])
>>> j = buf.join(["b", "x", "b"], [1.0, 0.0, 1.0], [250, 250, 260])
>>> j.pred.tolist(), j.delay.tolist(), j.counts
([0.20000000298023224], [50], {'joined': 1, 'orphan': 1, 'expired': 0, 'duplicate': 1, 'sampled_out': 0})
>>> buf.expire(2000), buf.join(["a"], [0.0], [2100]).counts["expired"]
(1, 1)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from driftline.labels.chunk import Chunk, dead_key, part_key
from driftline.labels.gone import EVICTED, EXPIRED, JOINED, Gone
from driftline.labels.hashing import hash_ids, sampled_in
from driftline.labels.index import Index
from driftline.labels.joined import Joined
from driftline.state import FORMAT

COUNTS = ("added", "duplicate_predictions", "sampled_out_predictions", "expired", "evicted", "joined",
          "orphan_labels", "expired_labels", "duplicate_labels", "sampled_out_labels",
          "compactions", "dropped_chunks")
_CODE = np.iinfo(np.int16)
_ROW = np.int64(0xFFFFFFFF)


def _first(h: np.ndarray) -> np.ndarray:
    """Which hashes are the first of their value in the batch."""
    ordered = np.sort(h)
    if ordered.size < 2 or not (ordered[1:] == ordered[:-1]).any():  # the usual case: no id twice
        return np.ones(h.size, dtype=bool)
    first = np.zeros(h.size, dtype=bool)
    first[np.unique(h, return_index=True)[1]] = True
    return first


def _codes(name: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,) or (n and (arr.dtype.kind not in "iu" or arr.min() < _CODE.min or arr.max() > _CODE.max)):
        raise ValueError(f"{name}: {n} integer codes in the int16 range expected")
    return arr.astype(np.int16)


class JoinBuffer:
    def __init__(self, segments: tuple[str, ...] = (), pred_dtype: str = "float32", max_delay_ms: int = 14 * 86_400_000,
                 max_pending: int = 10_000_000, sample: float = 1.0, remember: int = 1_000_000,
                 chunk_rows: int = 65536, compact_below: float = 0.25):
        if pred_dtype not in ("float32", "int32"):
            raise ValueError(f"pred_dtype: 'float32' (a score) or 'int32' (a class code), not {pred_dtype!r}")
        if not 0.0 < sample <= 1.0:
            raise ValueError(f"sample: a fraction in (0, 1], not {sample!r}")
        for name, v in (("max_delay_ms", max_delay_ms), ("max_pending", max_pending), ("remember", remember),
                        ("chunk_rows", chunk_rows)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: a positive integer, not {v!r}")
        if chunk_rows >= 2**32:
            raise ValueError("chunk_rows: less than 2**32")
        if not 0.0 <= compact_below < 1.0:
            raise ValueError(f"compact_below: a fraction in [0, 1), not {compact_below!r}")
        self.segments, self.pred_dtype = tuple(segments), pred_dtype
        self.max_delay_ms, self.max_pending, self.sample = max_delay_ms, max_pending, sample
        self.remember, self.chunk_rows, self.compact_below = remember, chunk_rows, compact_below
        self._reset()

    def _reset(self) -> None:
        self._chunks: dict[int, Chunk] = {}  # by chunk id, which grows with arrival
        self._open: Chunk | None = None
        self._next_cid = 0
        self._index = Index()
        self._gone = Gone(self.remember)
        self._deleted: set[str] = set()
        self._mutations, self._taken = 0, None
        self.counts = dict.fromkeys(COUNTS, 0)
        self.last_added = np.zeros(0, dtype=bool)

    @property
    def config(self) -> dict:
        return {"segments": list(self.segments), "pred_dtype": self.pred_dtype, "max_delay_ms": self.max_delay_ms,
                "max_pending": self.max_pending, "sample": self.sample, "remember": self.remember,
                "chunk_rows": self.chunk_rows, "compact_below": self.compact_below}

    @property
    def dtypes(self) -> dict[str, np.dtype]:
        base = {"hash": np.uint64, "version": np.int16, "window": np.int64, "pred": self.pred_dtype, "ts": np.int64}
        return {k: np.dtype(v) for k, v in base.items()} | {f"segment:{s}": np.dtype(np.int16) for s in self.segments}

    @property
    def pending(self) -> int:
        return sum(c.nlive for c in self._chunks.values())

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays: chunks, their index and the removed-id record."""
        return sum(c.nbytes for c in self._chunks.values()) + self._index.nbytes + self._gone.nbytes

    # -- predictions ---------------------------------------------------------------------------

    def add(self, ids, version_codes, windows, preds, segments: Mapping[str, object], ts) -> None:
        """Hold a batch of predictions. Ids outside the sample are skipped; an id already pending,
        remembered as removed, or earlier in the batch is a ``duplicate_predictions`` and skipped."""
        h = hash_ids(ids)
        cols = self._columns(h, version_codes, windows, preds, segments, ts)
        keep = sampled_in(h, self.sample)
        new = keep & _first(h)
        new[new] = ~self._known(h[new])
        self.last_added = new  # which of the batch's ids were taken (for the caller's counts per segment)
        self.counts["sampled_out_predictions"] += int(h.size - keep.sum())
        self.counts["duplicate_predictions"] += int(keep.sum() - new.sum())
        self.counts["added"] += int(new.sum())
        self._append({k: c[new] for k, c in cols.items()})
        self._evict()
        self._mutations += 1

    def _columns(self, h, version_codes, windows, preds, segments, ts) -> dict[str, np.ndarray]:
        n = h.size
        if set(segments) != set(self.segments):
            raise ValueError(f"segments: codes for {sorted(self.segments)} expected, got {sorted(segments)}")
        cols = {"hash": h, "version": _codes("version_codes", version_codes, n),
                "window": np.asarray(windows, dtype=np.int64), "pred": np.asarray(preds).astype(self.pred_dtype),
                "ts": np.asarray(ts, dtype=np.int64)}
        cols |= {f"segment:{s}": _codes(f"segments[{s!r}]", segments[s], n) for s in self.segments}
        if any(c.shape != (n,) for c in cols.values()):
            raise ValueError(f"add: every column must hold one value per id ({n})")
        return cols

    def _append(self, cols: dict[str, np.ndarray]) -> None:
        pos, n = 0, cols["hash"].size
        while pos < n:
            if self._open is None or self._open.n == self._open.capacity:
                full, self._open = self._open, Chunk.empty(self._next_cid, self.chunk_rows, self.dtypes)
                self._chunks[self._next_cid] = self._open
                self._next_cid += 1
                if full is not None:  # it may have emptied while it was open
                    self._maybe_compact(full)
            c = self._open
            take = c.append({k: v[pos:] for k, v in cols.items()})
            rows = np.arange(c.n - take, c.n, dtype=np.int64)
            self._index.insert(c.hashes[rows], (np.int64(c.cid) << 32) | rows)
            pos += take

    def _evict(self) -> None:
        excess = self.pending - self.max_pending
        for c in list(self._chunks.values()):
            if excess <= 0:
                break
            rows = c.live_rows()[:excess]
            self._remove(c, rows, EVICTED)
            excess -= rows.size
            self.counts["evicted"] += rows.size
            self._maybe_compact(c)

    def expire(self, now_ms: int) -> int:
        """Remove the predictions whose event time is before ``now_ms - max_delay_ms``; how many."""
        cutoff, total = int(now_ms) - self.max_delay_ms, 0
        for c in list(self._chunks.values()):
            oldest = c.min_ts()
            if oldest is None or oldest >= cutoff:
                continue
            rows = c.expire(cutoff)
            self._remove(c, rows, EXPIRED)
            total += rows.size
            self._maybe_compact(c)
        self.counts["expired"] += total
        self._mutations += 1
        return total

    # -- labels --------------------------------------------------------------------------------

    def join(self, label_ids, label_values, label_ts) -> Joined:
        """Join a batch of labels to their pending predictions, which are then removed."""
        h = hash_ids(label_ids)
        values, lts = np.asarray(label_values), np.asarray(label_ts, dtype=np.int64)
        if values.shape != h.shape or lts.shape != h.shape:
            raise ValueError(f"join: one label value and one time per id ({h.size})")
        keep = sampled_in(h, self.sample)
        first = keep & _first(h)
        cand = np.flatnonzero(first)
        locs = self._index.find(h[cand])
        ok = self._verify(h[cand], locs)
        hit, cols = cand[ok], self._take(locs[ok])
        reasons = self._gone.reasons(h[cand[~ok]])
        counts = {"orphan": int((reasons == 0).sum()), "expired": int((reasons >= EXPIRED).sum()),
                  "duplicate": int((reasons == JOINED).sum() + keep.sum() - first.sum()),
                  "sampled_out": int(h.size - keep.sum())}
        self._gone.add(h[hit], JOINED)
        self.counts["joined"] += hit.size
        for k, v in counts.items():
            self.counts[f"{k}_labels"] += v
        self._mutations += 1
        segs = {s: cols[f"segment:{s}"] for s in self.segments}
        return Joined(hit, cols["hash"], cols["version"], cols["window"], cols["pred"], segs, cols["ts"],
                      values[hit], lts[hit], **counts, orphans=cand[~ok][reasons == 0])

    def _known(self, h: np.ndarray) -> np.ndarray:
        return self._verify(h, self._index.find(h)) | (self._gone.reasons(h) > 0)

    def _groups(self, locs: np.ndarray):
        """``(chunk or None, positions in locs, rows)`` per chunk that ``locs`` point into."""
        cids = locs >> 32
        order = np.argsort(cids, kind="stable")
        ucid, start = np.unique(cids[order], return_index=True)
        for c, s, e in zip(ucid.tolist(), start.tolist(), start[1:].tolist() + [order.size]):
            sel = order[s:e]
            yield self._chunks.get(c), sel, locs[sel] & _ROW

    def _verify(self, h: np.ndarray, locs: np.ndarray) -> np.ndarray:
        """Which index hits point at a live row holding that hash (stale entries do not)."""
        ok = np.zeros(h.size, dtype=bool)
        has = np.flatnonzero(locs >= 0)
        for c, sel, rows in self._groups(locs[has]):
            if c is not None:
                inside = rows < c.n
                r = np.where(inside, rows, 0)
                ok[has[sel]] = inside & c.live[r] & (c.columns["hash"][r] == h[has[sel]])
        return ok

    def _take(self, locs: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of the rows at ``locs`` (live, distinct), which are then removed as joined."""
        out = {k: np.empty(locs.size, dtype=dt) for k, dt in self.dtypes.items()}
        touched = []
        for c, sel, rows in self._groups(locs):
            for k in out:
                out[k][sel] = c.columns[k][rows]
            c.kill(rows)
            touched.append(c)
        for c in touched:
            self._maybe_compact(c)
        return out

    def _remove(self, c: Chunk, rows: np.ndarray, reason: int) -> None:
        self._gone.add(c.columns["hash"][rows], reason)
        c.kill(rows)

    def _maybe_compact(self, c: Chunk) -> None:
        if c is self._open or c.nlive >= self.compact_below * c.n:
            return
        if c.nlive == 0:
            self._deleted.update([part_key(c.cid, s) for s in c.parts] + ([dead_key(c.cid)] if c.dead_stored else []))
            del self._chunks[c.cid]
            self.counts["dropped_chunks"] += 1
        else:
            self._deleted.update(c.compact())
            self._index.insert(c.hashes, (np.int64(c.cid) << 32) | np.arange(c.n, dtype=np.int64))
            self.counts["compactions"] += 1
        if self._index.size > 2 * self.pending + self.chunk_rows:
            self._rebuild_index()

    def _rebuild_index(self) -> None:
        self._index.rebuild(np.empty(0, np.uint64), np.empty(0, np.int64))  # free the old one first
        keys, vals = np.empty(self.pending, np.uint64), np.empty(self.pending, np.int64)
        at = 0
        for c in self._chunks.values():
            rows = c.live_rows()
            keys[at:at + rows.size] = c.columns["hash"][rows]
            vals[at:at + rows.size] = (np.int64(c.cid) << 32) | rows
            at += rows.size
        self._index.rebuild(keys, vals)

    # -- state ---------------------------------------------------------------------------------

    def dirty_state(self) -> dict:
        """What changed since the last ``clean()``: ``{"put": {key: state}, "delete": [key]}``.
        Write it in one transaction (deletes, then puts), then call ``clean()``."""
        put = {}
        for c in self._chunks.values():
            if c.written < c.n:
                put[part_key(c.cid, c.written)] = c.part_state()
            if c.dead_dirty and (dead := c.dead_state()) is not None:
                put[dead_key(c.cid)] = dead
        put |= self._gone.dirty_state()
        put["meta"] = self._meta()
        self._taken = self._mutations
        return {"put": put, "delete": sorted((self._deleted | self._gone.deleted) - put.keys())}

    def clean(self) -> None:
        """The store now holds the last ``dirty_state()``."""
        if self._taken != self._mutations:
            raise RuntimeError("the label-join buffer changed after dirty_state(); take it again before clean()")
        for c in self._chunks.values():
            c.stored()
        self._gone.stored()
        self._deleted = set()

    def _meta(self) -> dict:
        g = self._gone
        return {"format": FORMAT, "config": self.config, "counts": dict(self.counts), "next_cid": self._next_cid,
                "open": self._open.cid if self._open is not None else None,
                "gone": {"seq": g.seq + bool(g.current), "held": g.held, "forgotten": g.forgotten}}

    @classmethod
    def from_state(cls, states: Mapping[str, dict], **overrides) -> JoinBuffer:
        """Rebuild from every stored key; ``max_delay_ms``, ``max_pending``, ``remember`` and
        ``compact_below`` may be given anew."""
        from driftline.labels.restore import restore
        return restore(cls, states, overrides)
