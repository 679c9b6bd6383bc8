"""Scale-out in one test process: two pipelines own three partitions each of one SQLite
store (no broker: batches carry their partitions); every merged window equals the window
a single pipeline made of the same events, and each is stored once."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftline.alerts.console import RecordingSink
from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.errors import ConfigError
from driftline.monitor import reference_for
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.scale.merge import passed
from driftline.scale.pipeline import ScaleOutPipeline, by_partition
from driftline.store import SqlStore
from driftline.streams.decode import Decoder
from driftline.types import Batch, CommitUnit, SourcePosition
from tests.helpers import config, events
from tests.scale_data import raw_values, same_window

TOPIC = "ev"
PG = "postgresql://u@h/db"  # scale-out settings name PostgreSQL; these tests hand in a SQLite store


def settings(**kafka):
    cfg = config(model={"window": {"duration": "5s", "min_count": 100}, "reference": {"path": "unused.csv"}},
                 kafka={"scale_out": True, "topics": [TOPIC], **kafka}, store={"url": PG})
    return parse_settings(cfg, {})


def stored_reference(store, s):
    """The reference of ``tests.helpers.events`` (what `driftline reference` would store)."""
    docs = [orjson.loads(v) for v in events(2000, seed=1)]
    columns = {k: [d["features"][k] for d in docs] for k in ("x", "y", "colour")}
    columns = {k: np.array(v) if k != "colour" else v for k, v in columns.items()}
    columns["prediction"] = np.array([d["prediction"] for d in docs])
    profile = reference_for(s.models[0], columns, "test reference")
    store.commit("g", CommitUnit(references=[profile]))
    return profile


def keyless(values: list[bytes], partitions: int = 6) -> list[tuple[int, bytes]]:
    """Each record on a partition chosen at random (as a producer without keys spreads them)."""
    rng = np.random.default_rng(7)
    return [(int(p), v) for p, v in zip(rng.integers(0, partitions, len(values)), values)]


def batches(records: list[tuple[int, bytes]], size: int = 700, topic_of=lambda value: TOPIC):
    """Batches in arrival order with their partitions and offsets (each record on the topic
    ``topic_of`` names)."""
    offsets: dict[tuple[str, int], int] = {}
    for lo in range(0, len(records), size):
        chunk = records[lo:lo + size]
        sources, positions, ends = [], [], {}
        for p, v in chunk:
            tp = (topic_of(v), p)
            off = offsets.get(tp, 0)
            offsets[tp] = off + 1
            sources.append(tp)
            positions.append(SourcePosition(*tp, off))
            ends[tp] = off + 1
        yield Batch([v for _, v in chunk], positions.__getitem__, ends, sources)


def worker(s, store, sink, out, wall, checkpoint_every=0.0):
    router = Router(s, {"console": frozenset({"alert", "incident", "trigger"})}, store, "g")
    return ScaleOutPipeline(s, store, router, NoDeadLetters(), out.append, "g", checkpoint_every=checkpoint_every,
                            wall=wall, topology=lambda: {TOPIC: 6}, merge_every=0.0)


def single(s, tmp_path, values):
    """The windows one process makes of ``values`` (all on one partition), in a store of its own."""
    store = SqlStore(f"sqlite:///{tmp_path / 'single.db'}")
    stored_reference(store, s)
    router = Router(s, {}, store, "g1")
    out = []
    p = Pipeline(s, store, router, NoDeadLetters(), out.append, "g1")
    for b in batches([(0, v) for v in values]):
        p.process(b)
    return out


def traffic():
    return events(6000, start=0, seed=2) + events(3000, start=6000, shift=1.0, seed=3) + \
        events(3000, start=9000, seed=4)


def test_two_workers_store_each_window_once_with_the_single_process_statistics(tmp_path):
    s = settings()
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    values = traffic()
    expected = single(s, tmp_path, values)
    clock = [1_795_000_000.0]
    sink, out = RecordingSink(), []
    a, b = worker(s, store, sink, out, lambda: clock[0]), worker(s, store, sink, out, lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in batches(keyless(values)):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    stored = store.reads.windows("m")
    assert len(stored) == len(out) == len({w["start"] for w in out})  # each window once
    assert [w["seq"] for w in out] == list(range(len(out)))
    # the last window is still open in every partition: no event after it yet
    assert [w["start"] for w in out] == [w["start"] for w in expected[:len(out)]] and len(out) >= len(expected) - 1
    assert any(w["drifted"] for w in out) and not out[0]["drifted"]
    for w in out:
        same_window(w, expected[w["seq"]], raw_values(values, w["start"]))
        assert "prediction_adwin" not in w  # one ordered stream of predictions: not in scale-out


def one_partition_at_a_time(records: list[tuple[int, bytes]], size: int = 700):
    """The batches of :func:`batches`, each split into one batch per partition (as a consumer
    often delivers them: a fetch's worth of one partition, then of the next)."""
    for batch in batches(records, size):
        rows: dict = {}
        for i, tp in enumerate(batch.sources):
            rows.setdefault(tp, []).append(i)
        for tp, idx in rows.items():
            yield Batch([batch.values[i] for i in idx], lambda j, idx=idx, b=batch: b.position(idx[j]),
                        {tp: batch.next_offsets[tp]}, [tp] * len(idx))


def test_between_periodic_checkpoints_only_the_partitions_the_merge_waits_for_are_written(tmp_path):
    """Two workers, ``checkpoint_every`` an hour: each write holds only the partitions that closed a
    window or became idle (each whole: its offsets with its state), and the windows are still the
    single process's."""
    s = settings()
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    values = traffic()
    expected = single(s, tmp_path, values)
    written = []
    commit = store.commit

    def recording(group, unit):
        if unit.marks:
            closing = {(p["topic"], p["partition"]) for p in unit.partials}
            written.append((set(unit.offsets), closing, set(unit.marks)))
        return commit(group, unit)

    store.commit = recording
    clock = [1_795_000_000.0]
    out = []
    a, b = (worker(s, store, None, out, lambda: clock[0], checkpoint_every=3600.0) for _ in "ab")
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in one_partition_at_a_time(keyless(values)):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.05
    first = written[:2]  # each worker's first write claims all three of its partitions
    assert all(len(marks) == 3 for _, _, marks in first)
    later = written[2:]
    assert later and all(offsets == marks and offsets <= closing | marks for offsets, closing, marks in later)
    assert any(len(offsets) == 1 for offsets, _, _ in later)  # a partition at a time, as its windows close
    assert all(closing <= offsets for offsets, closing, _ in later)
    assert [w["start"] for w in out] == [w["start"] for w in expected[:len(out)]] and len(out) >= len(expected) - 1
    for w in out:
        same_window(w, expected[w["seq"]], raw_values(values, w["start"]))
    stored = store.state.load_offsets("g")
    a.process(Batch([], lambda i: None), force=True)
    b.process(Batch([], lambda i: None), force=True)
    final = store.state.load_offsets("g")
    assert len(final) == 6 and any(stored.get(tp) != final[tp] for tp in final)  # some waited for the last write


def per_partition(batch: Batch) -> dict[tuple[str, int], Batch]:
    """The batch's records per source partition, with their own positions (the oracle)."""
    idx: dict = {}
    for i, tp in enumerate(batch.sources):
        idx.setdefault(tp, []).append(i)
    return {tp: Batch([batch.values[i] for i in rows], lambda j, rows=rows: batch.position(rows[j]))
            for tp, rows in idx.items()}


def columns_of(cols) -> dict:
    return {"ts": cols.ts.tolist(), "ids": None if cols.ids is None else cols.ids.tolist(),
            "extra": {k: v.tolist() for k, v in cols.extra.items()},
            **{k: (c.values.tolist(), c.valid.tolist(), c.missing.tolist()) if hasattr(c, "valid")
               else c.values.tolist() for k, c in cols.features.items()}}


def decoded_of(d) -> dict:
    return {"groups": {k: columns_of(c) for k, c in d.groups.items()}, "invalid": d.invalid,
            "bad": [(b.reason, b.value, b.position, b.model, b.version) for b in d.bad],
            "labels": {m: [a.tolist() for a in (c.ids, c.ts, c.label, c.version)] for m, c in d.labels.items()}}


@pytest.mark.parametrize("mix", ["clean", "two versions", "bad records", "labels", "labels and a bad one"])
def test_one_decode_split_by_partition_is_each_partitions_own_decode(mix):
    labelled = "labels" in mix
    s = parse_settings(config(model={"window": {"duration": "5s"}, "reference": {"path": "unused.csv"},
                                     **({"labels": {"task": "regression"}} if labelled else {})},
                              kafka={"topics": [TOPIC]}), {})  # the decoder's settings only
    values = events(600, seed=3)
    if mix == "two versions":
        values = [v.replace(b'"v1"', b'"v2"') if i % 3 == 0 else v for i, v in enumerate(values)]
    if "bad" in mix:
        values[5], values[77], values[301] = b"{nope", b'{"model": "m", "version": "v1", "features": 3}', b"[]"
    if labelled:
        values += [orjson.dumps({"model": "m", "id": str(i), "ts": 1_700_000_000_000 + i, "label": i % 2 * 1.0})
                   for i in range(0, 600, 7)]
        values.sort(key=lambda v: hash(v) % 11)  # labels among the events
    assert any(b'"label"' in v for v in values) == labelled
    (batch,) = batches(keyless(values, 3), size=len(values))
    decoder = Decoder(s.models)
    whole = by_partition(decoder.decode(batch), batch)
    own = {tp: decoder.decode(sub) for tp, sub in per_partition(batch).items()}
    assert set(whole) == set(own) == {(TOPIC, p) for p in range(3)}
    for tp in own:
        assert decoded_of(whole[tp]) == decoded_of(own[tp]), tp
    assert sum(c.n for d in whole.values() for c in d.groups.values()) == 600 - 3 * ("bad" in mix)
    assert sum(len(d.bad) for d in whole.values()) == 3 * ("bad" in mix)
    assert sum(c.n for d in whole.values() for c in d.labels.values()) == 86 * labelled


def test_a_partition_blocks_a_window_until_it_passed_it_is_idle_or_never_carried_the_model():
    mark = {"watermark": 10_000, "models": ["m"], "idle": False}
    assert passed(mark, "m", 10_000, 0) and not passed(mark, "m", 10_001, 0)
    assert not passed(mark, "m", 9_000, 2_000)  # its lateness keeps the window open there
    assert passed(mark | {"idle": True}, "m", 99_999, 0)
    assert passed(mark | {"models": ["other"]}, "m", 99_999, 0)
    assert not passed(None, "m", 0, 0)  # never read by anyone yet
    assert not passed(mark | {"watermark": None, "models": []}, "m", 0, 0)


@pytest.mark.parametrize("model, path, says", [
    ({"window": {"size": 100}}, "models[0].window.size", "time windows only"),
])
def test_what_scale_out_cannot_serve_is_refused_with_its_yaml_path(model, path, says):
    cfg = config(model=model, kafka={"scale_out": True}, store={"url": PG})
    with pytest.raises(ConfigError) as err:
        parse_settings(cfg, {})
    assert err.value.problems[0][0] == path and says in err.value.problems[0][1]


def test_scale_out_needs_postgresql():
    cfg = config(model={"window": {"duration": "5s"}}, kafka={"scale_out": True})
    with pytest.raises(ConfigError) as err:
        parse_settings(cfg, {})
    assert err.value.problems == [("store.url", "kafka.scale_out needs PostgreSQL (several processes share its "
                                                "state and a lock per model); got sqlite (a SQLite file)")]


def test_each_process_shows_its_partitions_lag_and_events_in_the_metrics(tmp_path):
    from driftline.metrics import Metrics
    s = settings()
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    metrics = Metrics()
    metrics.set_process("w7")
    router = Router(s, {}, store, "g")
    w = ScaleOutPipeline(s, store, router, NoDeadLetters(), lambda _: None, "g", metrics=metrics,
                         topology=lambda: {TOPIC: 6})
    w.assign([(TOPIC, 1), (TOPIC, 4)])
    for batch in batches(keyless(events(900, seed=2), partitions=2)):  # records of partitions 0 and 1
        w.process(batch)
    metrics.set_lag({(TOPIC, 1): 5, (TOPIC, 4): 2})
    text = metrics.text()
    assert f'driftline_assigned_partitions{{partition="1",process="w7",topic="{TOPIC}"}} 1.0' in text
    assert f'driftline_assigned_partitions{{partition="4",process="w7",topic="{TOPIC}"}} 1.0' in text
    assert 'driftline_process_lag{process="w7"} 7.0' in text
    owned = sum(1 for p, _ in keyless(events(900, seed=2), partitions=2) if p == 1)
    assert f'driftline_process_events_total{{process="w7"}} {float(owned)}' in text  # partition 0 is not its
    w.revoke([(TOPIC, 4)])
    assert 'partition="4",process="w7"' not in metrics.text()


def test_a_model_without_a_stored_or_file_reference_is_refused_at_start_up():
    from driftline.scale.limits import check_references
    cfg = config(model={"window": {"duration": "5s"}}, kafka={"scale_out": True}, store={"url": PG})
    s = parse_settings(cfg, {})  # reference.first_n: fine for check-config, the store may hold one
    check_references(s, {"m"})
    with pytest.raises(ConfigError) as err:
        check_references(s, set())
    assert err.value.problems[0][0] == "models[0].reference.first_n"
    assert "driftline reference" in err.value.problems[0][1]


def test_a_process_that_lost_a_partition_cannot_overwrite_its_new_owners_state(tmp_path):
    s = settings()
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock = [1_795_000_000.0]
    old, new = worker(s, store, None, [], lambda: clock[0]), worker(s, store, None, [], lambda: clock[0])
    records = [(0, v) for v in events(300, seed=2)]
    first, second = batches(records[:150], size=150), batches(records[150:], size=150)
    old.assign([(TOPIC, 0)])
    old.process(next(first))
    new.assign([(TOPIC, 0)])  # a rebalance the old owner slept through
    new.process(Batch([], lambda i: None), force=True)  # claims the partition's mark
    late = next(second)
    late.next_offsets = {(TOPIC, 0): 300}
    old.process(late, force=True)  # fenced: nothing of it is written, and old forgets the partition
    assert (TOPIC, 0) not in old.parts
    assert store.state.load_offsets("g") == {(TOPIC, 0): 150}
    assert store.partials.marks("g")[(TOPIC, 0)]["owner"] == new.owner


def idle_after_two_windows(tmp_path, ends=None, eof=True):
    """A worker owning six partitions, 1,000 events (two windows) read from partition 0 (its
    consumer then reports its end, and that of the five empty ones, if ``eof``), then two
    seconds of nothing (``partition_idle`` is one): its windows, output and clock."""
    s = settings(partition_idle="1s")
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock, out = [1_795_000_000.0], []
    w = worker(s, store, None, out, lambda: clock[0])
    w.merger.ends = ends
    w.assign([(TOPIC, p) for p in range(6)])
    w.process(next(batches([(0, v) for v in events(1000, seed=2)], size=1000)))
    if eof:
        for p in range(6):
            w.at_end((TOPIC, p), 1000 if p == 0 else 0)
    clock[0] += 2
    w.process(Batch([], lambda i: None))
    return w, out, clock


def late_of_the_first_window(w, clock, caplog) -> None:
    """Partition 1 brings events of the first window (after its merge, so late) and of the
    third: its watermark passes the second, which quiet partition 0 may then close."""
    values = events(1500, seed=2)
    stale = batches([(1, v) for v in values[:100]] + [(1, v) for v in values[1000:1500]], size=600)
    b = next(stale)
    b.next_offsets = {(TOPIC, 1): 600}
    with caplog.at_level("WARNING"):
        w.process(b)
        clock[0] += 2
        w.process(Batch([], lambda i: None))
        w.process(Batch([], lambda i: None))


def test_a_partial_that_comes_after_its_window_was_merged_is_counted_as_late(tmp_path, caplog):
    w, out, clock = idle_after_two_windows(tmp_path)
    # every partition quiet: the second window stays open, as one process holds its last window
    assert [(x["count"], x["closed_by"]) for x in out] == [(500, "watermark")]
    late_of_the_first_window(w, clock, caplog)
    assert w.merger.late == 100 and "after it was merged" in caplog.text
    assert [(x["count"], x["closed_by"]) for x in out] == [(500, "watermark"), (500, "watermark")]


@pytest.mark.parametrize("end", [None, 400, 1001])
def test_a_quiet_partition_its_consumer_did_not_report_read_to_its_end_keeps_its_window(tmp_path, caplog, end):
    """No end reported, or at another offset than the one read up to (a consumer starved in a
    rebalance halfway through a record batch, whose broker under-reports its high watermark):
    not quiet, only behind, so the others' watermark does not close its window."""
    w, out, clock = idle_after_two_windows(tmp_path, eof=False)
    if end is not None:
        w.at_end((TOPIC, 0), end)
    late_of_the_first_window(w, clock, caplog)
    assert [x["count"] for x in out] == [500] and w.parts[(TOPIC, 0)].holds_open
    w.at_end((TOPIC, 0), 1000)  # now it did: released, then merged
    w.process(Batch([], lambda i: None))
    w.process(Batch([], lambda i: None))
    assert [x["count"] for x in out] == [500, 500]


@pytest.mark.parametrize("unread, eof, merged", [
    (True, True, []),
    (False, True, [500]),
    (False, False, []),  # quiet by the clock, the broker's ends say read, but no consumer found an end
])
def test_an_idle_partition_whose_broker_has_unread_records_holds_its_windows(tmp_path, unread, eof, merged):
    # the broker's ends: partition 3 holds 50 records its owner has not read (or none)
    _, out, _ = idle_after_two_windows(
        tmp_path, lambda tps: {tp: (0, 50 if unread and tp == (TOPIC, 3) else 0) for tp in tps}, eof=eof)
    assert [x["count"] for x in out] == merged  # every partition quiet by the clock


def test_a_quiet_partition_keeps_its_open_window_until_the_others_pass_it(tmp_path):
    """Its later events of that window are in it, not late (the trial's lost events)."""
    s = settings(partition_idle="1s")
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock, out = [1_795_000_000.0], []
    w = worker(s, store, None, out, lambda: clock[0])
    w.assign([(TOPIC, p) for p in range(6)])
    values = events(1500, seed=2)  # 10 ms apart: windows of 500
    feed = batches([(0, v) for v in values[:300]] + [(1, v) for v in values[300:400]]
                   + [(0, v) for v in values[400:500]] + [(1, v) for v in values[500:1500]], size=100)
    for _ in range(3):  # partition 0's first 300
        w.process(next(feed))
    clock[0] += 2
    w.process(next(feed))  # partition 1, still inside the first window; partition 0 is quiet
    w.process(Batch([], lambda i: None))
    assert out == [] and w.parts[(TOPIC, 0)].holds_open
    w.process(next(feed))  # partition 0 again: its next 100 join the open window
    for b in feed:
        w.process(b)
    w.at_end((TOPIC, 0), 400)
    clock[0] += 2
    w.process(Batch([], lambda i: None))
    w.process(Batch([], lambda i: None))
    assert [x["count"] for x in out][:2] == [500, 500] and w.merger.late == 0


@pytest.mark.parametrize("reported, high, merged", [
    (True, 100, [500]),  # read to its end: its consumer said so at offset 100, the broker holds 100
    (False, 100, []),  # the broker's end alone (Tansu's may be the first offset of its last batch, plus one)
    (True, 10**6, []),  # records came since its consumer found the end
])
def test_a_partition_that_never_carried_the_model_holds_it_while_its_owner_is_behind(tmp_path, reported, high,
                                                                                      merged):
    """Another model's traffic on partition 1 is older than the window; whether partition 1 may
    still bring model m decides: its consumer's end report at the stored offset, and its
    broker end."""
    cfg = config(model={"window": {"duration": "5s", "min_count": 100}, "reference": {"path": "unused.csv"}},
                 kafka={"scale_out": True, "topics": [TOPIC], "partition_idle": "1h"}, store={"url": PG})
    cfg["models"].append(cfg["models"][0] | {"name": "zz"})
    s = parse_settings(cfg, {})
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    profile = stored_reference(store, s)
    store.commit("g", CommitUnit(references=[type(profile).from_dict(profile.to_dict() | {"model": "zz"})]))
    clock, out = [1_795_000_000.0], []
    w = worker(s, store, None, out, lambda: clock[0])
    w.assign([(TOPIC, p) for p in range(6)])
    for p in range(2, 6):
        w.at_end((TOPIC, p), 0)  # empty partitions
    other = events(100, seed=4, model="zz")
    w.merger.ends = lambda tps: {tp: (0, high if tp == (TOPIC, 1) else 10**6) if tp[1] < 2
                                 else (0, 0) for tp in tps}
    w.process(next(batches([(1, v) for v in other], size=100)))  # partition 1: 100 records, model zz only
    if reported:
        w.at_end((TOPIC, 1), 100)
    w.process(next(batches([(0, v) for v in events(1000, seed=2)], size=1000)))
    w.process(Batch([], lambda i: None))
    assert [x["count"] for x in out if x["model"] == "m"] == merged


def test_a_replay_with_a_scale_out_configuration_runs_as_one_process(tmp_path, capsys):
    import yaml

    from driftline.cli import main
    cfg = config(model={"window": {"duration": "5s", "min_count": 100}, "reference": {"first_n": 2000}},
                 kafka={"scale_out": True}, store={"url": PG}, alerts={"console": False, "topic": None,
                                                                       "retrain_topic": None})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(4000, seed=2)) + b"\n")
    code = main(["replay", "-c", str(path), str(data), "--database", f"sqlite:///{tmp_path / 'r.db'}",
                 "--output", "jsonl"])
    assert code == 0
    windows = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [w["count"] for w in windows] == [500] * 4  # the reference from the file's first 2,000 events


def test_reset_state_forgets_the_partials_and_partition_marks_too(tmp_path):
    s = settings()
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    w = worker(s, store, None, [], lambda: 1_795_000_000.0)
    w.assign([(TOPIC, 0), (TOPIC, 1)])
    w.process(next(batches([(0, v) for v in events(1000, seed=2)], size=1000)))  # a partial, held by partition 1
    assert store.partials.pending("g") == {"m": 1} and len(store.partials.marks("g")) == 2
    assert store.state.reset("g") > 0
    assert store.partials.pending("g") == {} and store.partials.marks("g") == {}
    assert store.state.load_states("g") == {}


def test_a_second_different_partial_for_a_waiting_one_is_logged_and_the_first_kept(tmp_path, caplog):
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    partial = {"model": "m", "version": "v1", "start_ms": 0, "end_ms": 5000, "topic": TOPIC, "partition": 2,
               "closed_by": "watermark", "count": 40, "data": b"first"}
    mark = {"watermark": 6000, "models": ["m"], "idle": False, "owner": "w0", "claim": True}
    store.commit("g", CommitUnit(partials=[partial], marks={(TOPIC, 2): mark}))
    with caplog.at_level("ERROR"):
        store.commit("g", CommitUnit(partials=[dict(partial)]))  # a retried checkpoint: the same one
        assert caplog.records == []
        store.commit("g", CommitUnit(partials=[partial | {"count": 3, "data": b"second"}]))
    assert "a second partial for window 0 of ev[2] (3 events) while its first (40 events)" in caplog.text
    from sqlalchemy import select

    from driftline.store import schema as t
    with store.engine.connect() as c:
        assert c.execute(select(t.partials.c.count, t.partials.c.data)).all() == [(40, b"first")]
