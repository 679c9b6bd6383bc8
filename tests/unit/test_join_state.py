"""The label-join buffer's state: incremental checkpoints by key, and restores that join alike."""

import numpy as np
import pytest

from driftline.labels.join import JoinBuffer
from driftline.state import StateError, decode, encode


class Store:
    """Rows by key, as the state store keeps them: encoded, deleted then put per checkpoint."""

    def __init__(self):
        self.rows: dict[str, bytes] = {}

    def apply(self, dirty: dict) -> int:
        for key in dirty["delete"]:
            assert key in self.rows, f"deleting {key!r}, which was never written"
            del self.rows[key]
        blobs = {k: encode(v) for k, v in dirty["put"].items()}
        self.rows |= blobs
        return sum(map(len, blobs.values()))

    def checkpoint(self, buf: JoinBuffer) -> int:
        written = self.apply(buf.dirty_state())
        buf.clean()
        return written

    def restore(self, **kw) -> JoinBuffer:
        return JoinBuffer.from_state({k: decode(b) for k, b in self.rows.items()}, **kw)


def add(buf, ids, ts=None):
    n = len(ids)
    ts = np.zeros(n, int) if ts is None else np.asarray(ts)
    buf.add(ids, np.arange(n) % 3, np.arange(n) // 100, np.arange(n) / max(n, 1),
            {"country": np.arange(n) % 7}, ts)


def same(a, b) -> bool:
    return (a.counts == b.counts and a.index.tolist() == b.index.tolist() and a.pred.tolist() == b.pred.tolist()
            and a.window.tolist() == b.window.tolist() and a.ts.tolist() == b.ts.tolist()
            and a.segments["country"].tolist() == b.segments["country"].tolist())


def test_after_a_million_predictions_a_thousand_labels_dirty_a_few_kilobytes():
    buf, store = JoinBuffer(segments=("country",), max_pending=2_000_000), Store()
    ids = [f"pred-{i}" for i in range(1_000_000)]
    for s in range(0, len(ids), 250_000):
        add(buf, ids[s:s + 250_000])
    full = store.checkpoint(buf)
    rng = np.random.default_rng(3)
    picked = [ids[i] for i in rng.choice(len(ids), 1000, replace=False)]
    assert buf.join(picked, np.ones(1000), np.ones(1000)).n == 1000
    dirty = buf.dirty_state()
    assert {k.split("/")[0] for k in dirty["put"]} == {"dead", "gone", "meta"} and dirty["delete"] == []
    small = store.apply(dirty)
    buf.clean()
    print(f"full checkpoint {full:,} bytes; after 1,000 joins {small:,} bytes")
    assert small < 64 * 1024 and full > 30_000_000
    later = [ids[i] for i in rng.choice(len(ids), 2000, replace=False)] + picked[:10] + ["never"]
    args = (later, np.zeros(len(later)), np.full(len(later), 5))
    assert same(store.restore().join(*args), buf.join(*args))


def scenario(buf, store, rounds=6):
    """Adds, joins, expiry and eviction across several checkpoints, with small chunks."""
    rng = np.random.default_rng(7)
    for r in range(rounds):
        ids = [f"r{r}-{i}" for i in range(500)]
        add(buf, ids, ts=np.full(500, r * 1000))
        old = [f"r{rng.integers(0, r + 1)}-{i}" for i in rng.integers(0, 500, 300)]
        buf.join(old, np.ones(300), np.full(300, r * 1000))
        buf.expire(r * 1000)
        store.checkpoint(buf)


def test_a_restored_buffer_joins_exactly_as_the_live_one():
    kw = {"segments": ("country",), "max_delay_ms": 2500, "max_pending": 1500, "chunk_rows": 256}
    buf, store = JoinBuffer(**kw), Store()
    scenario(buf, store)
    assert buf.counts["compactions"] and buf.counts["evicted"] and buf.counts["expired"]
    back = store.restore()
    assert back.counts == buf.counts and back.pending == buf.pending
    labels = [f"r{r}-{i}" for r in range(6) for i in range(0, 500, 3)] + ["nope"]
    args = (labels, np.ones(len(labels)), np.full(len(labels), 9000))
    assert same(back.join(*args), buf.join(*args))
    assert back.expire(8000) == buf.expire(8000)


def test_the_store_holds_only_what_the_buffer_holds():
    kw = {"segments": ("country",), "max_delay_ms": 2500, "max_pending": 1500, "chunk_rows": 256}
    buf, store = JoinBuffer(**kw), Store()
    scenario(buf, store, rounds=12)
    chunks = {int(k.split("/")[1]) for k in store.rows if k.startswith("chunk/")}
    assert chunks == set(buf._chunks)
    assert store.restore().dirty_state()["put"].keys() == {"meta"}


def test_a_checkpoint_with_nothing_new_writes_only_meta():
    buf, store = JoinBuffer(segments=("country",)), Store()
    add(buf, ["a", "b"])
    store.checkpoint(buf)
    assert list(buf.dirty_state()["put"]) == ["meta"]
    add(buf, ["c"])
    assert sorted(buf.dirty_state()["put"]) == ["chunk/0/2", "meta"]  # only the new rows, as a part


def test_clean_refuses_a_buffer_changed_since_its_dirty_state():
    buf = JoinBuffer(segments=("country",))
    buf.dirty_state()
    add(buf, ["a"])
    with pytest.raises(RuntimeError, match="dirty_state"):
        buf.clean()


def test_limits_may_change_on_restore_but_not_the_layout():
    buf, store = JoinBuffer(segments=("country",), max_pending=10), Store()
    add(buf, [str(i) for i in range(10)])
    store.checkpoint(buf)
    assert store.restore(max_pending=5).max_pending == 5
    with pytest.raises(ValueError, match="only"):
        store.restore(sample=0.5)


def test_unreadable_state_is_a_state_error():
    buf, store = JoinBuffer(segments=("country",), chunk_rows=4), Store()
    add(buf, [str(i) for i in range(6)])
    store.checkpoint(buf)
    add(buf, ["x"])
    store.checkpoint(buf)
    states = {k: decode(b) for k, b in store.rows.items()}
    for broken in ({k: v for k, v in states.items() if k != "meta"},
                   states | {"what/1": {}},
                   {k: v for k, v in states.items() if k != "chunk/1/0"} | {"dead/1": {"rows": np.array([0], np.uint32)}},
                   {k: v for k, v in states.items() if k != "chunk/1/0"},
                   states | {"meta": states["meta"] | {"format": 99}}):
        with pytest.raises(StateError):
            JoinBuffer.from_state(broken)
