"""Random interleavings of add, join, expire, checkpoint and crash-and-restore join exactly as a
plain Python dict does: no label credited twice, none lost.

A crash drops the buffer and what it joined since the last checkpoint, restores it from the
store and replays the operations since that checkpoint, as a consumer re-reads from its
committed offsets; only joins committed with a checkpoint count.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from driftline.labels.hashing import hash_ids, sampled_in
from driftline.labels.join import JoinBuffer
from driftline.state import decode, encode

MAX_DELAY, CAP = 80, 8


class Reference:
    def __init__(self, sample: float):
        self.sample, self.pending, self.gone, self.seq = sample, {}, {}, 0

    def sampled(self, i: str) -> bool:
        return bool(sampled_in(hash_ids([i]), self.sample)[0])

    def add(self, ids, ts, preds):
        seen = set()
        for i, t, p in zip(ids, ts, preds):
            if self.sampled(i) and i not in seen and i not in self.pending and i not in self.gone:
                self.pending[i] = (self.seq, t, p)
                self.seq += 1
            seen.add(i)
        while len(self.pending) > CAP:
            oldest = min(self.pending, key=lambda k: self.pending[k][0])
            del self.pending[oldest]
            self.gone[oldest] = "expired"

    def join(self, ids, lts):
        out, counts, seen = [], {"orphan": 0, "expired": 0, "duplicate": 0, "sampled_out": 0}, set()
        for n, (i, t) in enumerate(zip(ids, lts)):
            if not self.sampled(i):
                counts["sampled_out"] += 1
            elif i in seen or self.gone.get(i) == "joined":
                counts["duplicate"] += 1
            elif i in self.pending:
                _, ts, p = self.pending.pop(i)
                self.gone[i] = "joined"
                out.append((n, p, ts, t - ts))
            elif i in self.gone:
                counts["expired"] += 1
            else:
                counts["orphan"] += 1
            seen.add(i)
        return out, counts

    def expire(self, now):
        for i in [i for i, (_, ts, _) in self.pending.items() if ts < now - MAX_DELAY]:
            del self.pending[i]
            self.gone[i] = "expired"


def result(j):
    counts = {k: v for k, v in j.counts.items() if k != "joined"}
    return list(zip(j.index.tolist(), j.pred.tolist(), j.ts.tolist(), j.delay.tolist())), counts


ids = st.lists(st.integers(0, 11).map(lambda i: f"p{i}"), max_size=10)
ops = st.lists(st.one_of(
    st.tuples(st.just("add"), ids, st.integers(0, 40)),
    st.tuples(st.just("join"), ids),
    st.tuples(st.just("expire")),
    st.tuples(st.just("checkpoint")),
    st.tuples(st.just("crash"))), min_size=6, max_size=40)


def checkpoint(buf, store):
    dirty = buf.dirty_state()
    for key in dirty["delete"]:
        del store[key]
    store |= {k: encode(v) for k, v in dirty["put"].items()}
    buf.clean()


def run_with_crashes(config, ops):
    buf, store, committed, uncommitted, since, crashed = JoinBuffer(**config), {}, {}, {}, 0, set()
    checkpoint(buf, store)
    i = 0
    while i < len(ops):
        op, t = ops[i], i * 10
        if op[0] == "crash" and i not in crashed:
            crashed.add(i)
            buf, uncommitted = JoinBuffer.from_state({k: decode(b) for k, b in store.items()}), {}
            i = since
            continue
        if op[0] == "checkpoint":
            checkpoint(buf, store)
            committed |= uncommitted
            uncommitted, since = {}, i + 1
        elif op[0] == "add":
            n = len(op[1])
            buf.add(op[1], np.zeros(n, int), np.zeros(n, int), i * 100 + np.arange(n), {"s": np.zeros(n, int)},
                    np.full(n, t - op[2]))
        elif op[0] == "join":
            uncommitted[i] = result(buf.join(op[1], np.ones(len(op[1])), np.full(len(op[1]), t)))
        elif op[0] == "expire":
            buf.expire(t)
        i += 1
    checkpoint(buf, store)
    return committed | uncommitted, buf


def run_reference(sample, ops):
    ref, out = Reference(sample), {}
    for i, op in enumerate(ops):
        t = i * 10
        if op[0] == "add":
            ref.add(op[1], [t - op[2]] * len(op[1]), [float(i * 100 + k) for k in range(len(op[1]))])
        elif op[0] == "join":
            out[i] = ref.join(op[1], [t] * len(op[1]))
        elif op[0] == "expire":
            ref.expire(t)
    return out, ref


@given(ops, st.sampled_from([1.0, 0.5]), st.sampled_from([2, 4, 64]))
def test_random_interleavings_join_as_a_dict_does(ops, sample, chunk_rows):
    config = {"segments": ("s",), "max_delay_ms": MAX_DELAY, "max_pending": CAP, "sample": sample,
              "chunk_rows": chunk_rows, "compact_below": 0.6}
    got, buf = run_with_crashes(config, ops)
    want, ref = run_reference(sample, ops)
    assert got == want
    assert buf.pending == len(ref.pending)
    credited = [p for joined, _ in got.values() for _, p, _, _ in joined]
    assert len(credited) == len(set(credited))  # no prediction credited twice
