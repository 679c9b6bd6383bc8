"""Scale-out no-data rules in one test process: two workers own three partitions each of one
SQLite store (no broker); their merger raises the no-data alerts one pipeline raises for the
same events and wall clock, once, and a rebalance neither fires nor resolves one."""

from __future__ import annotations

import orjson
import pytest

from driftline.alerts.console import RecordingSink
from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.scale.silence import silences
from driftline.store import SqlStore
from driftline.types import Batch, CommitUnit
from tests.helpers import config, events
from tests.unit.test_scale_out import PG, TOPIC, batches, keyless, stored_reference, worker

T0 = 1_795_000_000_000
RULE = {"name": "no_data", "no_data": "10s", "severity": "critical"}


def settings():
    cfg = config(model={"window": {"duration": "5s", "min_count": 100}, "reference": {"path": "unused.csv"},
                        "rules": [RULE]},
                 kafka={"scale_out": True, "topics": [TOPIC], "partition_idle": "1h"}, store={"url": PG},
                 alerts={"group_wait": "0s"})
    cfg["models"].append(cfg["models"][0] | {"name": "zz"})
    return parse_settings(cfg, {})


def store_of(s, path):
    store = SqlStore(f"sqlite:///{path}")
    profile = stored_reference(store, s)
    store.commit("g", CommitUnit(references=[type(profile).from_dict(profile.to_dict() | {"model": "zz"})]))
    return store


def by_time(*streams: list[bytes]) -> list[bytes]:
    return sorted((v for s in streams for v in s), key=lambda v: orjson.loads(v)["ts"])


def no_data_alerts(store, model: str = "zz") -> list[dict]:
    return [e for e in store.reads.alert_events() if e["rule"] == "no_data" and e["model"] == model]


def one_process(s, tmp_path, values, clock):
    """The alerts one pipeline raises for ``values`` (in batches of 700, 0.1 s of wall clock each)."""
    store = store_of(s, tmp_path / "single.db")
    p = Pipeline(s, store, Router(s, {}, store, "g1"), NoDeadLetters(), lambda _: None, "g1", wall=lambda: clock[0])
    for b in batches([(0, v) for v in values]):
        p.process(b)
        clock[0] += 0.1
    return store


def two_workers(s, tmp_path, records, clock):
    """Two workers (partitions 0–2 and 3–5) over ``records``, batch by batch; the store and the sink."""
    store, sink = store_of(s, tmp_path / "d.db"), RecordingSink()
    a, b = (worker(s, store, sink, [], lambda: clock[0]) for _ in range(2))
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in batches(records):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    return store, (a, b)


def comparable(alert: dict) -> tuple:
    return alert["status"], alert["severity"], alert["subject"].split(" (")[1], alert["window_start"]


def test_a_version_that_stops_while_another_goes_on_fires_once_and_resolves_as_in_one_process(tmp_path):
    """zz sends nothing from 20 s to 40 s of event time while m goes on: by event time it is
    silent past 10 s, then it sends again."""
    s = settings()
    values = by_time(events(6000, seed=2), events(2000, seed=4, model="zz"),
                     events(2000, start=4000, seed=5, model="zz"))
    single = no_data_alerts(one_process(s, tmp_path, values, [1_795_000_000.0]))
    store, _ = two_workers(s, tmp_path, keyless(values), [1_795_000_000.0])
    merged = no_data_alerts(store)
    assert [a["status"] for a in single] == ["firing", "resolved"]
    assert [a["status"] for a in merged] == ["firing", "resolved"]  # once, not once per worker
    assert comparable(merged[0]) == comparable(single[0])  # the same silence, from the same last event
    assert merged[0]["subject"].startswith("no events for 1") and merged[0]["value"] == pytest.approx(
        single[0]["value"], abs=0.5)
    back = orjson.loads(events(1, start=4000, model="zz")[0])["ts"]
    assert merged[1]["subject"].startswith("events again") and merged[1]["window_end"] >= single[0]["window_end"]
    assert merged[1]["window_start"] >= iso_of(back)  # resolved by the events that came back
    assert no_data_alerts(store, "m") == []
    outbox = [r for r in store.reads.outbox() if r["kind"] == "alert"]
    assert len(outbox) == 2  # one notification per transition


def iso_of(ms: int) -> str:
    from driftline.types import iso
    return iso(ms)


def test_a_version_silent_on_one_partition_but_alive_on_another_does_not_fire(tmp_path):
    s = settings()
    zz = events(6000, seed=4, model="zz")
    # zz on partitions 0 and 1 for its first 20 s, then on partition 1 only; m everywhere
    records = sorted([(i % 6, v) for i, v in enumerate(events(6000, seed=2))]
                     + [(i % 2 if i < 2000 else 1, v) for i, v in enumerate(zz)],
                     key=lambda pv: orjson.loads(pv[1])["ts"])
    clock = [1_795_000_000.0]
    store, (a, b) = two_workers(s, tmp_path, records, clock)
    assert a.parts[(TOPIC, 0)].seen[("zz", "v1")][0] < T0 + 20_000  # partition 0 has been silent 40 s
    assert no_data_alerts(store) == [] and no_data_alerts(store, "m") == []
    assert no_data_alerts(one_process(s, tmp_path, [v for _, v in records], [1_795_000_000.0])) == []


def test_a_gap_read_from_a_backlog_fires_and_resolves_as_in_one_process(tmp_path):
    """Nothing at all from 20 s to 40 s of event time, read in a few seconds of wall clock: only
    the gap between the merged windows shows it (as the gap between one process's events)."""
    s = settings()
    values = by_time(events(2000, seed=2), events(2000, start=4000, seed=3),
                     events(2000, seed=4, model="zz"), events(2000, start=4000, seed=5, model="zz"))
    single = one_process(s, tmp_path, values, [1_795_000_000.0])
    store, _ = two_workers(s, tmp_path, keyless(values), [1_795_000_000.0])
    for model in ("m", "zz"):
        one, merged = no_data_alerts(single, model), no_data_alerts(store, model)
        assert [a["status"] for a in one] == [a["status"] for a in merged] == ["firing", "resolved"]
        assert comparable(merged[0]) == comparable(one[0])
        assert merged[0]["value"] == one[0]["value"] and merged[0]["subject"] == one[0]["subject"]


def quiet(w, clock, seconds: float) -> None:
    """``seconds`` of wall clock with nothing read, one empty batch a second."""
    for _ in range(int(seconds)):
        clock[0] += 1
        w.process(Batch([], lambda i: None))


def test_a_rebalance_neither_fires_a_silence_nor_resolves_one(tmp_path):
    """Every model stops (only the wall clock can tell). The owner dies; its partitions' new owner
    counts from when it took them, fires after no_data, and a later rebalance keeps it firing."""
    s = settings()
    store = store_of(s, tmp_path / "d.db")
    clock = [1_795_000_000.0]
    dead = worker(s, store, None, [], lambda: clock[0])
    dead.assign([(TOPIC, p) for p in range(6)])
    for b in batches(keyless(by_time(events(1000, seed=2), events(1000, seed=4, model="zz")))):
        dead.process(b)
    quiet(dead, clock, 5)
    clock[0] += 20  # killed: 20 s without an owner, past no_data by the stale arrivals
    new = worker(s, store, None, [], lambda: clock[0])
    new.assign([(TOPIC, p) for p in range(6)])
    quiet(new, clock, 8)
    assert no_data_alerts(store) == []  # 8 s since the claim: not yet
    quiet(new, clock, 3)
    assert [a["status"] for a in no_data_alerts(store)] == ["firing"]  # 11 s: it is silent
    assert [a["status"] for a in no_data_alerts(store, "m")] == ["firing"]
    again = worker(s, store, None, [], lambda: clock[0])
    new.lose([(TOPIC, p) for p in range(6)])
    again.assign([(TOPIC, p) for p in range(6)])
    quiet(again, clock, 3)
    assert [a["status"] for a in no_data_alerts(store)] == ["firing"]  # not resolved by the rebalance


def mark(watermark, versions, claimed=0.0, idle=False):
    return {"watermark": watermark, "idle": idle, "seen": {"claimed": claimed, "versions": {"m": versions}}}


def test_the_silence_of_a_version_from_the_partitions_marks():
    marks = {(TOPIC, 0): mark(50_000, {"v1": [20_000, 100.0]}, claimed=90.0),
             (TOPIC, 1): mark(45_000, {"v1": [30_000, 104.0], "v2": [45_000, 110.0]}, claimed=80.0),
             (TOPIC, 2): mark(60_000, {}, claimed=109.0),  # never carried m: neither its claim nor watermark
             (TOPIC, 3): {"watermark": None, "idle": False, "seen": None}}  # a mark of an older release
    got = silences(marks, "m", 110.0, set())
    # v1: newest 30 s, read up to 45 s on both of its partitions; last arrival 104
    assert got == {"v1": (15.0, 30_000), "v2": (0.0, 45_000)}
    assert silences(marks, "m", 130.0, set())["v1"] == (26.0, 30_000)  # the wall clock since 104
    marks[(TOPIC, 1)]["seen"]["claimed"] = 125.0  # a new owner took partition 1 at 125
    assert silences(marks, "m", 130.0, set())["v1"] == (15.0, 30_000)  # its wall clock from then
    assert silences(marks, "m", 130.0, {"v1"})["v1"] == (26.0, 30_000)  # a firing one: from its arrival
    marks[(TOPIC, 1)]["idle"] = True  # idle: it brings no older event, partition 0 sets the horizon
    assert silences(marks, "m", 110.0, set())["v1"] == (20.0, 30_000)


class Stored:
    """The merge transaction's state rows, as :class:`NoData` reads and writes them."""

    def __init__(self):
        self.rows: dict = {}

    def state(self, version: str, source: str):
        return self.rows.get((version, source))

    def observe(self, nd, marks: dict, now: float, windows=()) -> list:
        from types import SimpleNamespace
        for first, last in windows:
            nd.merged("v1", SimpleNamespace(first_ts=first, last_ts=last))
        unit = CommitUnit()
        out = nd.observe(self, marks, now, {}, unit)
        self.rows |= {(version, source): blob for (_, version, source), blob in unit.states.items()}
        return out.get(("m", "v1"), [])


def test_windows_merged_after_a_silence_was_seen_neither_resolve_it_nor_fire_it_again():
    """Windows are merged well after their events were read: their small gaps are no news, and
    the gap of a silence the marks showed already is not a second one."""
    from driftline.scale.silence import NoData
    from driftline.types import iso
    nd, stored = NoData(settings().models[0], None), Stored()
    silent = {(TOPIC, 0): mark(35_000, {"v1": [20_000, 100.0]}, claimed=90.0)}
    assert stored.observe(nd, silent, 101.0) == [(15.0, iso(20_000))]  # by event time: past 10 s
    # the windows before the silence merge now, 10 ms between them
    assert stored.observe(nd, silent, 102.0, [(10_000, 14_990), (15_000, 20_000)]) == [(15.0, iso(20_000))]
    back = {(TOPIC, 0): mark(45_000, {"v1": [45_000, 110.0]}, claimed=90.0)}
    assert stored.observe(nd, back, 110.0, [(40_000, 44_990)]) == [(0.0, iso(45_000))]  # that gap: seen
    later = stored.observe(nd, back, 111.0, [(45_000, 45_000), (60_000, 61_000)])  # a backlog's gap of 15 s
    assert later == [(15.0, iso(45_000)), (1.0, iso(45_000))]
