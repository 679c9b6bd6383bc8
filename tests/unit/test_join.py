"""The label-join buffer: which labels join, which do not and why, TTL, cap, sampling, memory."""

import hashlib

import numpy as np
import pytest

from driftline.labels.hashing import hash_ids, sampled_in
from driftline.labels.index import Index
from driftline.labels.join import JoinBuffer

DAY = 86_400_000


def buffer(**kw) -> JoinBuffer:
    return JoinBuffer(**({"segments": ("country",), "max_delay_ms": 30 * DAY, "max_pending": 1000} | kw))


def add(buf, ids, ts=None, pred=None, version=0, window=None, country=None):
    n = len(ids)
    ts = np.arange(n) * 1000 if ts is None else ts
    buf.add(ids, np.full(n, version), np.arange(n) if window is None else window,
            np.linspace(0, 1, n) if pred is None else pred, {"country": np.zeros(n, int) if country is None else country}, ts)


def test_labels_out_of_order_join_their_own_predictions():
    buf = buffer()
    add(buf, ["a", "b", "c", "d"], ts=[10, 20, 30, 40], pred=[0.1, 0.2, 0.3, 0.4], window=[7, 7, 8, 8],
        country=[3, 1, 4, 1], version=2)
    j = buf.join(["d", "b", "a"], [1, 0, 1], [1040, 2020, 3010])
    assert j.index.tolist() == [0, 1, 2]
    assert np.allclose(j.pred, [0.4, 0.2, 0.1])
    assert j.window.tolist() == [8, 7, 7] and j.segments["country"].tolist() == [1, 1, 3]
    assert j.version.tolist() == [2, 2, 2] and j.ts.tolist() == [40, 20, 10]
    assert j.label.tolist() == [1, 0, 1] and j.delay.tolist() == [1000, 2000, 3000]
    assert j.hash.tolist() == hash_ids(["d", "b", "a"]).tolist()
    assert buf.pending == 1 and buf.counts["joined"] == 3


def test_a_label_weeks_late_still_joins_within_max_delay():
    buf = buffer(max_delay_ms=30 * DAY)
    add(buf, ["p"], ts=[0])
    assert buf.expire(29 * DAY) == 0
    j = buf.join(["p"], [1.0], [29 * DAY])
    assert j.n == 1 and j.delay.tolist() == [29 * DAY]


def test_duplicates_in_one_batch_and_across_batches():
    buf = buffer()
    add(buf, ["a", "b"])
    j = buf.join(["a", "a", "x", "x"], [1, 1, 0, 0], [5, 5, 5, 5])
    assert j.index.tolist() == [0]
    assert (j.duplicate, j.orphan) == (2, 1)  # the second "a" and the second "x" repeat an id of the batch
    j = buf.join(["a", "b"], [1, 1], [6, 6])
    assert j.index.tolist() == [1] and j.duplicate == 1
    assert buf.counts["duplicate_labels"] == 3 and buf.counts["orphan_labels"] == 1


def test_orphans_are_labels_whose_prediction_never_came():
    buf = buffer()
    add(buf, ["a"])
    j = buf.join(["zz", "yy"], [0, 1], [1, 1])
    assert j.n == 0 and j.orphan == 2 and buf.pending == 1


def test_expired_predictions_go_by_event_time_and_their_labels_count_as_expired():
    buf = buffer(max_delay_ms=100)
    add(buf, ["old", "edge", "new"], ts=[0, 900, 1000])
    assert buf.expire(1000) == 1  # cutoff 900: event time 900 stays
    assert buf.pending == 2 and buf.counts["expired"] == 1
    j = buf.join(["old", "edge"], [1, 1], [1000, 1000])
    assert j.index.tolist() == [1] and j.expired == 1 and j.orphan == 0


def test_the_cap_evicts_the_oldest_arrivals_first():
    buf = buffer(max_pending=3)
    add(buf, ["a", "b", "c"], ts=[500, 400, 300])
    add(buf, ["d", "e"], ts=[0, 0])  # arrival order, not event time, decides
    assert buf.pending == 3 and buf.counts["evicted"] == 2
    j = buf.join(["a", "b", "c", "d", "e"], np.ones(5), np.full(5, 1000))
    assert j.index.tolist() == [2, 3, 4] and j.expired == 2


def test_a_batch_larger_than_the_cap_keeps_its_newest():
    buf = buffer(max_pending=2)
    add(buf, ["a", "b", "c"])
    assert buf.join(["a", "b", "c"], np.ones(3), np.zeros(3)).index.tolist() == [1, 2]


def test_a_repeated_prediction_is_held_once():
    buf = buffer()
    add(buf, ["a", "a", "b"], pred=[0.1, 0.9, 0.5])
    add(buf, ["b"], pred=[0.7])
    assert buf.pending == 2 and buf.counts["duplicate_predictions"] == 2
    j = buf.join(["a", "b"], [1, 1], [9, 9])
    assert np.allclose(j.pred, [0.1, 0.5])  # the first one seen
    add(buf, ["a"])  # already labelled: not pending again
    assert buf.pending == 0 and buf.counts["duplicate_predictions"] == 3


def test_sampling_keeps_the_same_ids_for_predictions_and_labels():
    ids = [f"id-{i}" for i in range(20_000)]
    buf = buffer(sample=0.1, max_pending=100_000)
    add(buf, ids)
    kept = int(sampled_in(hash_ids(ids), 0.1).sum())
    assert buf.pending == kept and abs(kept / len(ids) - 0.1) < 0.01
    assert buf.counts["sampled_out_predictions"] == len(ids) - kept
    j = buf.join(ids[::-1], np.ones(len(ids)), np.full(len(ids), 10**9))
    assert j.n == kept and j.sampled_out == len(ids) - kept and j.orphan == 0
    other = buffer(sample=0.1, max_pending=100_000)
    add(other, ids)
    assert set(other.join(ids, np.ones(len(ids)), np.zeros(len(ids))).hash.tolist()) == set(j.hash.tolist())


def test_integer_class_predictions():
    buf = buffer(pred_dtype="int32")
    add(buf, ["a", "b"], pred=[3, 1])
    j = buf.join(["b"], [1], [0])
    assert j.pred.dtype == np.int32 and j.pred.tolist() == [1]


def test_a_forgotten_id_is_an_orphan_and_the_record_is_bounded():
    buf = buffer(remember=10, max_pending=10_000)
    for k in range(5):
        ids = [f"{k}-{i}" for i in range(10)]
        add(buf, ids)
        buf.join(ids, np.ones(10), np.zeros(10))
        buf.dirty_state()
        buf.clean()
    assert buf._gone.held <= 10 + 10
    j = buf.join(["0-0", "4-0"], [1, 1], [0, 0])
    assert (j.orphan, j.duplicate) == (1, 1)


def test_mostly_removed_chunks_are_compacted_or_dropped():
    buf = buffer(chunk_rows=100, max_pending=10_000)
    ids = [f"p{i}" for i in range(300)]
    add(buf, ids, pred=np.arange(300) / 300)
    before = buf.nbytes
    j = buf.join(ids[:80] + ids[100:200], np.ones(180), np.zeros(180))  # chunk 0: 20% live; chunk 1: none
    assert j.n == 180 and buf.counts["compactions"] == 1 and buf.counts["dropped_chunks"] == 1
    assert buf.nbytes < before
    j = buf.join(ids, np.ones(300), np.zeros(300))
    assert j.index.tolist() == list(range(80, 100)) + list(range(200, 300))
    assert np.allclose(j.pred, j.index / 300) and j.duplicate == 180


def test_a_chunk_that_emptied_while_it_was_filled_is_dropped_when_the_next_opens():
    buf = buffer(chunk_rows=2)
    add(buf, ["a", "b"])
    buf.join(["a", "b"], [1, 1], [0, 0])
    add(buf, ["c"])
    assert list(buf._chunks) == [1] and buf.counts["dropped_chunks"] == 1


def test_bad_input_is_refused_naming_the_argument():
    buf = buffer()
    with pytest.raises(ValueError, match="segments"):
        buf.add(["a"], [0], [0], [0.5], {"device": [0]}, [0])
    with pytest.raises(ValueError, match="version_codes"):
        buf.add(["a"], [70000], [0], [0.5], {"country": [0]}, [0])
    with pytest.raises(ValueError, match="one value per id"):
        buf.add(["a", "b"], [0, 0], [0], [0.5, 0.5], {"country": [0, 0]}, [0, 0])
    with pytest.raises(ValueError, match="one label value"):
        buf.join(["a"], [1, 2], [0])
    with pytest.raises(TypeError):
        hash_ids([5])
    for kw in ({"sample": 0}, {"pred_dtype": "float64"}, {"max_pending": 0}, {"compact_below": 1.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            buffer(**kw)


def test_the_hash_is_blake2b_with_eight_bytes_little_endian():
    want = int.from_bytes(hashlib.blake2b("café".encode(), digest_size=8).digest(), "little")
    assert hash_ids(["café", "café".encode()]).tolist() == [want, want]
    assert hash_ids(np.array(["café"])).tolist() == [want]


def test_the_index_finds_the_newest_value_of_each_key():
    rng = np.random.default_rng(1)
    ix, ref = Index(), {}
    for _ in range(200):
        keys = np.unique(rng.integers(0, 5000, rng.integers(1, 300)).astype(np.uint64))
        vals = rng.integers(0, 10**9, keys.size)
        ix.insert(keys, vals)
        ref.update(zip(keys.tolist(), vals.tolist()))
    q = np.arange(6000, dtype=np.uint64)
    assert ix.find(q).tolist() == [ref.get(k, -1) for k in range(6000)]
    assert len(ix.runs) <= 8


def test_a_pending_prediction_takes_under_56_bytes_of_arrays():
    n = 1_000_000
    buf = JoinBuffer(segments=("country", "device"), max_pending=n)
    h = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # distinct stand-ins for id hashes
    for s in range(0, n, 100_000):
        sl = slice(s, s + 100_000)
        buf.add(h[sl], np.zeros(100_000, int), np.zeros(100_000, int), np.zeros(100_000),
                {"country": np.zeros(100_000, int), "device": np.zeros(100_000, int)}, np.arange(100_000))
    assert buf.pending == n
    per = buf.nbytes / n
    print(f"{per:.1f} bytes of numpy arrays per pending prediction")
    assert per < 56
