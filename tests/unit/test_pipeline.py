"""The pipeline on a real SQLite file with an in-memory source and recording sinks."""

import time

import numpy as np
import pytest

from driftline.alerts.console import RecordingSink
from driftline.app import build_service
from driftline.config import parse_settings
from driftline.ports import NoDeadLetters
from driftline.store import SqlStore
from driftline.streams.memory import MemorySource
from tests.helpers import config, events


def traffic():
    """2,000 reference events, 6 stationary windows, 4 shifted, 4 stationary again."""
    return (events(2000, seed=1) + events(6000, start=2000, seed=2)
            + events(4000, start=8000, shift=1.0, seed=3) + events(4000, start=12000, seed=4))


def service(store, values, sink, start=0, cfg=None):
    settings = parse_settings(cfg or config(), {})
    src = MemorySource(values, batch_size=700, start=start)
    windows = []
    svc = build_service(settings, store, src, NoDeadLetters(), {"console": sink},
                        windows.append)
    return svc, src, windows


def test_drift_fires_once_triggers_once_and_resolves(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    sink = RecordingSink()
    svc, src, windows = service(store, traffic(), sink)
    svc.run(until=lambda: src.done)
    assert [w["seq"] for w in windows] == list(range(14))
    drifted = [bool(w["drifted"]) for w in windows]
    assert drifted == [False] * 6 + [True] * 4 + [False] * 4
    w = windows[6]
    assert w["features"]["x"]["drift"]["method"] in ("meanvar", "ks") and w["features"]["x"]["drift"]["drifted"]
    assert w["features"]["x"]["drift"]["mode"] == "calibrated" and len(w["features"]["x"]["tests"]) == 2
    statuses = [(k, p.get("status")) for k, p, _ in sink.sent]
    assert statuses == [("alert", "firing"), ("trigger", None), ("alert", "resolved")]
    trigger = sink.sent[1][1]["event"]
    assert trigger["specversion"] == "1.0" and trigger["type"] == "dev.driftline.retrain.requested"
    assert "x" in trigger["data"]["drifted"] and trigger["data"]["window"]["count"] == 1000
    assert len(store.reads.windows("m")) == 14 and len(store.reads.triggers()) == 1
    assert {r["status"] for r in store.reads.outbox()} == {"sent"}


def test_cooldown_holds_back_a_second_trigger(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    sink = RecordingSink()
    values = traffic() + events(3000, start=16000, shift=1.0, seed=5)
    svc, src, _ = service(store, values, sink)
    svc.run(until=lambda: src.done)
    kinds = [(k, p.get("status")) for k, p, _ in sink.sent]
    assert kinds.count(("alert", "firing")) == 2 and kinds.count(("trigger", None)) == 1


def test_restart_mid_stream_stores_every_window_once_and_pages_once(tmp_path):
    """Crash without shutdown after 9 windows, restart from the store: same result as one run."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    values = traffic()
    sink = RecordingSink()
    svc, src, _ = service(SqlStore(url), values, sink)
    while src.next < 9500:  # mid-window, mid-incident, after the alert fired
        svc.step()
    deadline = time.monotonic() + 10  # delivery is on its own thread
    while len(sink.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    svc.dispatcher.close()  # the crash ends the delivery thread with the process
    fired_before = len(sink.sent)
    assert fired_before >= 2  # the alert and the trigger went out before the crash
    # crash: no shutdown, nothing more committed; a new process starts from the store
    store2 = SqlStore(url)
    resume = store2.state.load_offsets("driftline")[("memory", 0)]
    assert resume <= src.next
    svc2, src2, _ = service(store2, values, sink, start=resume)
    svc2.run(until=lambda: src2.done)
    stored = store2.reads.windows("m")
    assert [w["seq"] for w in stored] == list(range(14))
    assert [w["count"] for w in stored] == [1000] * 14
    statuses = [(k, p.get("status")) for k, p, _ in sink.sent]
    assert statuses == [("alert", "firing"), ("trigger", None), ("alert", "resolved")]


def test_reference_from_first_n_is_stored_and_reused(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    svc, src, _ = service(SqlStore(url), events(2500, seed=1), RecordingSink())
    svc.run(until=lambda: src.done)
    refs = SqlStore(url).state.load_references()
    assert refs["m"]["n"] == 2000 and refs["m"]["source"] == "first 2000 events"
    assert set(refs["m"]["features"]) == {"x", "y", "colour", "prediction"}


def test_small_windows_skip_tests_and_say_why(tmp_path):
    cfg = config(model={"window": {"size": 100, "min_count": 200}})
    svc, src, windows = service(SqlStore("sqlite://"), events(2300, seed=1), RecordingSink(), cfg=cfg)
    svc.run(until=lambda: src.done)
    assert windows and all(not w["tests_run"] for w in windows)
    assert windows[0]["tests_skipped"] == "count 100 < min_count 200"
    assert windows[0]["features"]["x"]["drift"] is None


@pytest.mark.parametrize("bad", [b"{oops", b'{"model": "m", "version": "v1", "ts": 1, "features": 3}'])
def test_bad_records_are_dead_lettered_and_counted_in_their_window(bad):
    dead = NoDeadLetters(stream=open("/dev/null", "w"))
    values = events(2000, seed=1) + events(500, start=2000) + [bad] + events(500, start=2500)
    settings = parse_settings(config(), {})
    src = MemorySource(values, 700)
    windows = []
    svc = build_service(settings, SqlStore("sqlite://"), src, dead, {}, windows.append)
    svc.run(until=lambda: src.done)
    assert dead.count == 1
    known = bad.startswith(b'{"model"')
    assert windows[0]["invalid"] == (1 if known else 0)
    assert np.sum([w["count"] for w in windows]) == 1000


def test_event_time_windows_are_aligned_buckets(tmp_path):
    cfg = config(model={"window": {"duration": "5s", "min_count": 100}})
    svc, src, windows = service(SqlStore("sqlite://"), events(2000, seed=1) + events(2600, start=2000),
                                RecordingSink(), cfg=cfg)
    svc.run(until=lambda: src.done)
    # events are 10 ms apart from 1,795,000,000,000 ms; the reference takes the first 20 s
    from driftline.types import iso
    starts = [1_795_000_020_000 + k * 5000 for k in range(5)]
    assert [(w["start"], w["end"], w["count"]) for w in windows] == [
        (iso(t), iso(t + 5000), 500) for t in starts]
    assert [(w["start"], w["end"]) for w in windows][0] == ("2026-11-18T11:07:00.000Z",
                                                             "2026-11-18T11:07:05.000Z")


def test_restart_with_changed_configuration(tmp_path):
    """New thresholds apply at once; a changed feature set rebuilds the reference."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    svc, src, _ = service(SqlStore(url), events(2500, seed=1), RecordingSink())
    svc.run(until=lambda: src.done)

    strict = config(model={"drift": {"numeric": {"method": "ks", "threshold": 0.05}}})
    svc, src, windows = service(SqlStore(url), events(3000, start=2500, seed=2), RecordingSink(),
                                cfg=strict)
    svc.run(until=lambda: src.done)
    assert svc.pipeline.monitors["m"].profile.n == 2000  # the stored reference is kept
    assert windows[0]["count"] == 1000 and windows[0]["features"]["x"]["drift"]["method"] == "ks"

    fewer = config(model={"features": {"x": "numeric", "colour": "categorical"}})
    svc, src, windows = service(SqlStore(url), events(3000, start=5500, seed=3), RecordingSink(),
                                cfg=fewer)
    svc.run(until=lambda: src.done)
    assert [w["count"] for w in windows] == [1000]  # 2,000 events for a new reference, then a window
    assert set(windows[0]["features"]) == {"x", "colour"}
    assert set(SqlStore(url).state.load_references()["m"]["features"]) == {"x", "colour", "prediction"}


def test_a_quiet_stream_still_closes_its_last_time_window(tmp_path):
    cfg = config(model={"window": {"duration": "5s", "idle_close": "2m", "min_count": 100}})
    svc, src, windows = service(SqlStore("sqlite://"), events(2000, seed=1) + events(700, start=2000),
                                RecordingSink(), cfg=cfg)
    now = [1_795_000_100.0]  # wall clock, seconds: just after the events
    svc.pipeline.wall = lambda: now[0]
    while not src.done:
        svc.step()
    assert [w["count"] for w in windows] == [500]  # 20..25 s closed by event time; 25..27 s open
    now[0] += 119
    svc.step()
    assert len(windows) == 1
    now[0] += 1
    svc.step()
    assert [w["count"] for w in windows] == [500, 200]


def test_a_feature_without_reference_values_is_summarised_but_not_tested(tmp_path):
    import orjson
    empty_y = [orjson.dumps({**orjson.loads(v), "features": {**orjson.loads(v)["features"], "y": None}})
               for v in events(2000, seed=1)]
    url = f"sqlite:///{tmp_path / 'd.db'}"
    svc, src, windows = service(SqlStore(url), empty_y + events(1000, start=2000, seed=2), RecordingSink())
    svc.run(until=lambda: src.done)
    (w,) = windows
    assert w["features"]["y"]["drift"] is None and w["features"]["y"]["count"] == 1000
    assert w["features"]["y"]["drift_skipped"] == "the reference has no values for this feature"
    assert w["features"]["x"]["drift"]["method"] in ("meanvar", "ks")
    assert SqlStore(url).state.load_references()["m"]["features"]["y"]["n"] == 0


def test_the_service_keeps_its_open_window_on_shutdown_and_resumes_it(tmp_path):
    """Unlike replay, `run` never closes a window because it stopped: it checkpoints it."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    values = events(3500, seed=1) + events(1000, start=3500, seed=2)
    svc, src, windows = service(SqlStore(url), values[:3500], RecordingSink())
    svc.run(until=lambda: src.done)
    assert [(w["count"], w["closed_by"]) for w in windows] == [(1000, "size")]
    resume = SqlStore(url).state.load_offsets("driftline")[("memory", 0)]
    assert resume == 3500
    svc, src, windows = service(SqlStore(url), values, RecordingSink(), start=resume)
    svc.run(until=lambda: src.done)
    assert [(w["seq"], w["count"], w["closed_by"]) for w in windows] == [(1, 1000, "size")]
    assert svc.pipeline.monitors["m"].versions["v1"].current.count == 500  # open again, checkpointed


def test_a_restart_while_the_reference_is_collected_keeps_what_was_collected(tmp_path):
    """The checkpoint covers the events read for the reference: a restart goes on
    collecting from there, it neither loses them nor builds the reference from later ones."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    values = events(2000, seed=1) + events(2000, start=2000, seed=2)
    svc, src, windows = service(SqlStore(url), values[:1500], RecordingSink())
    svc.run(until=lambda: src.done)
    assert windows == [] and SqlStore(url).state.load_offsets("driftline")[("memory", 0)] == 1500
    svc, src, windows = service(SqlStore(url), values, RecordingSink(), start=1500)
    svc.run(until=lambda: src.done)
    assert [(w["seq"], w["count"]) for w in windows] == [(0, 1000), (1, 1000)]
    assert SqlStore(url).state.load_references()["m"]["n"] == 2000
