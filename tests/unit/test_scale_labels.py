"""Scale-out with labels in one test process: two pipelines own three partitions each of one
SQLite store, the labels keyed like their predictions (same partition); every stored
performance row equals a single pipeline's, each metric alert fires once. Plus the merge of
window accumulators, the ``perf_partials`` table and what stays refused."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.errors import ConfigError
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.realized import RealizedPerformance
from driftline.store import SqlStore
from driftline.types import CommitUnit
from tests.helpers import config
from tests.scale_data import key_of, labelled_traffic, same_performance
from tests.unit.test_scale_out import PG, TOPIC, batches, worker

RULE = {"name": "auc", "metric": "roc_auc", "below": 0.75, "resolve_after": 1}


def settings(**labels):
    # idle_close: once the traffic stops the clock closes the last window (every partition is
    # quiet then; without it the newest window stays open, as in one process)
    cfg = config(model={"window": {"duration": "5s", "min_count": 100, "idle_close": "30s"},
                        "reference": {"path": "unused.csv"},
                        "labels": {"max_delay": "1h", "min_labelled": 0.3} | labels, "rules": [RULE]},
                 kafka={"scale_out": True, "topics": [TOPIC]}, store={"url": PG})
    return parse_settings(cfg, {})


def stored_reference(store, s, labelled: bool = False):
    """The reference of ``tests.helpers.events``, with a label column (calibrating the estimate) or not."""
    import orjson

    from driftline.monitor import reference_for
    from tests.helpers import events
    docs = [orjson.loads(v) for v in events(2000, seed=1)]
    columns = {k: [d["features"][k] for d in docs] for k in ("x", "y", "colour")}
    columns = {k: np.array(v) if k != "colour" else v for k, v in columns.items()}
    columns["prediction"] = np.array([d["prediction"] for d in docs])
    if labelled:
        flip = np.random.default_rng(5).random(len(docs)) < 0.1
        columns["label"] = ((columns["prediction"] >= 0.5) ^ flip).astype(float)
    profile = reference_for(s.models[0], columns, "test reference")
    assert (profile.performance is not None) == labelled
    store.commit("g", CommitUnit(references=[profile]))
    return profile


def keyed(values: list[bytes], partitions: int = 6) -> list[tuple[int, bytes]]:
    """Each record on the partition of its entity id (as a producer with that key puts it)."""
    return [(zlib.crc32(key_of(v).encode()) % partitions, v) for v in values]


def single(s, tmp_path, values, labelled: bool = False) -> tuple[list[dict], list[tuple]]:
    store = SqlStore(f"sqlite:///{tmp_path / 'single.db'}")
    stored_reference(store, s, labelled)
    p = Pipeline(s, store, Router(s, {}, store, "g1"), NoDeadLetters(), [].append, "g1", checkpoint_every=0.0)
    for b in batches([(0, v) for v in values]):
        p.process(b)
    p.end_of_input()
    return store.results.performance("m"), fired(store)


def fired(store) -> list[tuple]:
    return sorted((r["rule"], r["status"]) for r in store.reads.alert_events() if r["rule"] == "auc")


def run_workers(s, store, values, clock):
    out = []
    a, b = worker(s, store, None, out, lambda: clock[0]), worker(s, store, None, out, lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in batches(keyed(values)):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    return a, b, out


@pytest.mark.parametrize("labelled", [False, True], ids=["realized", "estimated-two-versions"])
def test_two_workers_store_the_performance_one_process_stores(tmp_path, labelled):
    s = settings()
    values = labelled_traffic(v2_from=3000 if labelled else None)
    expected, expected_alerts = single(s, tmp_path, values, labelled)
    assert len(expected) == 12 and ("auc", "firing") in expected_alerts
    if labelled:  # estimated windows, and v2 compared with v1
        assert all(r["estimated"] for r in expected) and any(r["versions"] for r in expected)
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s, labelled)
    clock = [1_795_000_000.0]
    a, b, out = run_workers(s, store, values, clock)
    clock[0] += 60  # window.idle_close: the last window closes and is merged
    for w in (a, b):
        w.process(next(batches([], 1), None) or _empty())
    a.merger.run(clock[0])
    same_performance(store.results.performance("m"), expected)
    assert fired(store) == expected_alerts  # once (per version), as one process
    assert [r for r in out if r["type"] == "performance"]  # revisions are printed like windows
    assert store.partials.pending_performance("g") == {}  # every change revised


def test_labels_on_a_co_partitioned_label_topic_are_joined_where_their_predictions_are(tmp_path):
    """``kafka.label_topics``: partition p of the label topic is read and stored with partition
    p of the event topic; a worker that takes a partition over resumes its labels from the
    stored offset too (nothing credited twice, nothing lost)."""
    cfg = config(model={"window": {"duration": "5s", "min_count": 100, "idle_close": "30s"},
                        "reference": {"path": "unused.csv"}, "labels": {"max_delay": "1h", "min_labelled": 0.3},
                        "rules": [RULE]},
                 kafka={"scale_out": True, "topics": [TOPIC], "label_topics": ["lb"]}, store={"url": PG})
    s = parse_settings(cfg, {})
    values = labelled_traffic()
    expected, expected_alerts = single(settings(), tmp_path, values)
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock, out = [1_795_000_000.0], []
    a, b = worker(s, store, None, out, lambda: clock[0]), worker(s, store, None, out, lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    feed = list(batches(keyed(values), topic_of=lambda v: "lb" if b'"label"' in v else TOPIC))
    half = len(feed) // 2
    for batch in feed[:half]:
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    offsets = b.revoke([(TOPIC, 5)])  # b checkpoints partition 5 (and label partition 5) and gives it up
    assert ("lb", 5) in offsets and (TOPIC, 5) in offsets
    assert store.state.load_offsets("g")[("lb", 5)] == offsets[("lb", 5)]
    assert a.assign([(TOPIC, 5)])[("lb", 5)] == offsets[("lb", 5)]
    for batch in feed[half:]:
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    clock[0] += 60
    for w in (a, b):
        w.process(_empty())
    a.merger.run(clock[0])
    same_performance(store.results.performance("m"), expected)
    assert fired(store) == expected_alerts
    assert sum(p.labels.models["m"].counts["orphan"] for w in (a, b) for p in w.parts.values()) == 0


def test_finished_windows_leave_the_store_and_what_stays_is_what_one_process_stores(tmp_path):
    s = settings(max_delay="20s")  # a window is finished 20 s (event time) after its last prediction
    values = labelled_traffic()
    expected, _ = single(s, tmp_path, values)
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock = [1_795_000_000.0]
    a, b, _ = run_workers(s, store, values, clock)
    same_performance(store.results.performance("m")[:9], expected[:9])  # the windows closed and merged by now
    with store.partials.merging("g", "m", lambda c, u: None) as m:
        kept = {r["window_key"] for r in m.performance()}
    starts = sorted(r["window_key"] for r in expected)
    assert kept and starts[0] not in kept and kept <= set(starts[-4:])  # the old ones deleted, the newest kept


def _empty():
    from driftline.types import Batch
    return Batch([], lambda i: None, {})


def test_a_label_on_another_partition_than_its_prediction_is_an_orphan_there(tmp_path):
    import orjson
    s = settings(early_for=0)  # else it is held 5 minutes for a prediction that may come
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    values = labelled_traffic(1000, share=0.0)
    home = keyed(values)[0][0]
    wrong = orjson.dumps({"model": "m", "id": "0", "ts": 1_795_000_009_000, "label": 1})
    w = worker(s, store, None, [], lambda: 1_795_000_000.0)
    w.assign([(TOPIC, p) for p in range(6)])
    for batch in batches(keyed(values) + [((home + 1) % 6, wrong)]):
        w.process(batch)
    totals = w.label_totals.view(w.parts.values())["m"]
    assert totals.counts["orphan"] == 1 and totals.counts["joined"] == 0 and totals.buffer.pending == 1000


def test_a_worker_restored_from_its_checkpoint_credits_no_label_twice(tmp_path):
    s = settings()
    values = labelled_traffic(3000, noisy_from=3000)
    expected, _ = single(s, tmp_path, values)
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock = [1_795_000_000.0]
    every = list(batches(keyed(values)))
    a, b = worker(s, store, None, [], lambda: clock[0]), worker(s, store, None, [], lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for k, batch in enumerate(every):
        a.process(batch)
        if k % 3 == 1:
            b._stage(batch, False)  # read and credited, then killed before its checkpoint was written:
            b.reload()  # restarted from the store,
        b.process(batch)  # it reads the batch again (the consumer seeks to the stored offsets)
        clock[0] += 0.1
    clock[0] += 60
    for w in (a, b):
        w.process(_empty())
    same_performance(store.results.performance("m"), expected)


def test_window_accumulators_merge_to_the_whole():
    spec = settings().models[0].labels
    rng = np.random.default_rng(3)
    ids = np.array([str(i) for i in range(400)], dtype=object)
    preds, ts = rng.random(400), np.arange(400) + 1000
    labels = (rng.random(400) < preds).astype(float)

    def realized(sel):
        r = RealizedPerformance("m", spec, False)
        r.add("v1", ids[sel], np.zeros(int(sel.sum()), dtype=np.int64), preds[sel], ts[sel], {0: (0, 1000, 6000)})
        r.join(ids[sel], labels[sel], ts[sel] + 500)
        return r.windows[(0, 0)]

    whole = realized(np.ones(400, dtype=bool))
    part = np.arange(400) % 3 == 0
    merged = realized(part)
    merged.merge(realized(~part))
    assert (merged.count, merged.stats.n, merged.stats.tp, merged.stats.fn) == \
        (whole.count, whole.stats.n, whole.stats.tp, whole.stats.fn)
    for k, v in whole.stats.metrics().items():
        assert merged.stats.metrics()[k] == pytest.approx(v, rel=1e-9, nan_ok=True), k
    assert merged.delay.metrics() == pytest.approx(whole.delay.metrics())


def perf_row(window_key=0, partition=0, data=b"x", revise=True):
    return {"model": "m", "version": "v1", "window_key": window_key, "topic": TOPIC, "partition": partition,
            "data": data, "revise": revise, "newest": 0}


def test_perf_partials_are_upserted_and_a_merge_clears_only_what_it_read(store_url):
    store = SqlStore(store_url)
    store.commit("g", CommitUnit(perf_partials=[perf_row(), perf_row(partition=1, revise=False)]))
    assert store.partials.pending_performance("g") == {"m": 1}  # a row written without a change to revise
    with store.partials.merging("g", "m", lambda c, u: store.write(c, "g", u)) as m:
        rows = m.performance()
    assert [(r["partition"], r["dirty"], r["finished"]) for r in rows] == [(0, True, False), (1, False, False)]
    store.commit("g", CommitUnit(perf_partials=[perf_row(data=b"y"), perf_row(partition=1, revise=False)]))
    with store.partials.merging("g", "m", lambda c, u: store.write(c, "g", u)) as m:
        assert [r["dirty"] for r in m.performance()] == [True, False]  # an unrevised write keeps the flag
        m.commit(CommitUnit(), [], revised=[(rows[0]["id"], rows[0]["stamp"])])  # the stamp it read before
    assert store.partials.pending_performance("g") == {"m": 1}  # written after it was read: still to revise
    store.commit("g", CommitUnit(perf_partials=[perf_row() | {"data": None}, perf_row(partition=1) | {"data": None}]))
    with store.partials.merging("g", "m", lambda c, u: store.write(c, "g", u)) as m:
        rows = m.performance()
        assert all(r["finished"] for r in rows) and m.performance_data([rows[0]["id"]]) == {rows[0]["id"]: b"y"}
        m.commit(CommitUnit(), [], revised=[(r["id"], r["stamp"]) for r in rows],
                 gone=[(r["id"], r["stamp"]) for r in rows])
    assert store.partials.pending_performance("g") == {}
    store.commit("g", CommitUnit(perf_partials=[perf_row()]))
    assert store.state.reset("g") >= 0 and store.partials.pending_performance("g") == {}


@pytest.mark.parametrize("change, path, says", [
    ({"kafka": {"label_topics": ["labels", "more"]}}, "kafka.label_topics", "2 label topic(s) for 1 event topic(s)"),
    ({"kafka": {"label_topics": ["ev"]}}, "kafka.label_topics", "and a topic in both lists"),
])
def test_what_scale_out_with_labels_cannot_serve_is_refused_with_its_yaml_path(change, path, says):
    cfg = config(model={"window": {"duration": "5s"}, "labels": change.get("labels", {})},
                 kafka={"scale_out": True, "topics": ["ev"]} | change.get("kafka", {}), store={"url": PG})
    with pytest.raises(ConfigError) as err:
        parse_settings(cfg, {})
    assert err.value.problems[0][0] == path and says in err.value.problems[0][1]


def test_a_labelled_model_is_accepted_in_scale_out():
    assert settings().kafka.scale_out and settings().models[0].labels is not None
