"""Scale-out with ``segments`` in one test process: two pipelines own three partitions each of
one SQLite store (no broker); every stored window, of each version and each segment, equals
the window a single pipeline made of the same events, each is stored once, and the alerts
(a segment's joining its version's incident) are the single pipeline's. Plus the fixed
segment table and what a segment without a reference of its own does."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.scale.segments import fixed_table
from driftline.store import SqlStore
from driftline.types import Batch, to_ms
from tests.helpers import config, events
from tests.scale_data import labelled_traffic, same_performance, same_window
from tests.unit.test_scale_out import PG, TOPIC, batches, keyless, stored_reference, traffic, worker


def settings(tmp_path, **model):
    """Segments by colour; the reference file holds the reference events (each colour has
    hundreds of rows there: each segment's reference is built from its rows)."""
    ref = tmp_path / "reference.jsonl"
    if not ref.exists():
        ref.write_bytes(b"\n".join(events(2000, seed=1)) + b"\n")
    cfg = config(model={"window": {"duration": "5s", "min_count": 100, "idle_close": "30s"},
                        "reference": {"path": str(ref)}, "segments": ["colour"],
                        "rules": [{"name": "feature_drift", "share": 0.3, "resolve_after": 1}]} | model,
                 kafka={"scale_out": True, "topics": [TOPIC]}, store={"url": PG})
    return parse_settings(cfg, {})


def single(s, tmp_path, values, reference=stored_reference) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'single.db'}")
    reference(store, s)
    p = Pipeline(s, store, Router(s, {}, store, "g1"), NoDeadLetters(), [].append, "g1", checkpoint_every=0.0)
    for b in batches([(0, v) for v in values]):
        p.process(b)
    p.end_of_input()
    return store


def scaled(s, tmp_path, values, routed: list | None = None) -> tuple[SqlStore, list[dict]]:
    """The two workers' store and output; ``routed``: every merged window's (end, version) as routed."""
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock, out = [1_795_000_000.0], []
    a, b = worker(s, store, None, out, lambda: clock[0]), worker(s, store, None, out, lambda: clock[0])
    for w in (a, b):
        w.router.route = _recording(w.router.route, [] if routed is None else routed)
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in batches(keyless(values)):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    clock[0] += 60  # window.idle_close: the last windows close and are merged
    for w in (a, b):
        w.process(Batch([], lambda i: None, {}))
    a.merger.run(clock[0])
    return store, out


def _recording(route, routed: list):
    def recorded(summary, now):
        routed.append((summary["end"], summary["version"]))
        return route(summary, now)
    return recorded


def raw(values: list[bytes], w: dict) -> dict[str, np.ndarray]:
    """The numeric values of a window's events (a segment's: those of its colour)."""
    lo = to_ms(w["start"].replace("Z", "+00:00"))
    colour = (w.get("segment") or {}).get("value")
    docs = [d for d in map(orjson.loads, values) if lo <= d["ts"] < lo + 5000
            and colour in (None, d["features"]["colour"])]
    return {k: np.array([d["features"][k] if k != "prediction" else d[k] for d in docs])
            for k in ("x", "y", "prediction")}


def by_version(windows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for w in windows:
        out.setdefault(w["version"], []).append(w)
    return {k: sorted(v, key=lambda w: w["seq"]) for k, v in out.items()}


def alerts(store) -> list[tuple]:
    return sorted((a["version"], a.get("segment") or "", a["rule"], a["subject"], a["status"], a["window_end"])
                  for a in store.reads.alert_events())


def test_two_workers_store_every_segment_window_and_alert_one_process_stores(tmp_path):
    s = settings(tmp_path)
    values = traffic()
    one = by_version(single(s, tmp_path, values).reads.windows("m"))
    assert set(one) == {"v1", "v1[colour=red]", "v1[colour=green]", "v1[colour=blue]"}
    routed: list[tuple[str, str]] = []
    store, out = scaled(s, tmp_path, values, routed)
    got = by_version(store.reads.windows("m"))
    assert len(out) == sum(map(len, got.values()))  # each window stored and printed once
    assert set(got) == set(one)
    for version, windows in one.items():
        assert [w["seq"] for w in got[version]] == list(range(len(windows))), version
        for a, b in zip(got[version], windows, strict=True):
            assert a["start"] == b["start"] and a.get("segment") == b.get("segment")
            same_window(a, b, raw(values, a))
    drifted = [w for w in got["v1[colour=red]"] if w["drifted"]]
    assert drifted and drifted[0]["segment"] == {"feature": "colour", "value": "red", "version": "v1"}
    expected = alerts(single_store := SqlStore(f"sqlite:///{tmp_path / 'single.db'}"))
    assert any(a[1] == "colour=red" for a in expected)
    assert alerts(store) == expected
    # a segment's window is routed before its version's of the same end (its alert joins the incident)
    for end in {e for e, _ in routed}:
        assert [v for e, v in routed if e == end][-1] == "v1", end
    assert len(routed) == len(out)
    assert _incidents(store) == _incidents(single_store)  # the segments' alerts in their version's incident


def _incidents(store) -> list[tuple]:
    return sorted((i["state"]["version"], i["state"]["opened_end"], i["state"]["resolved_at"],
                   sorted(a["subject"] for a in i["state"]["alerts"].values()))
                  for i in store.browse.incidents(None, None, None, None, 100, None))


def test_the_segments_are_the_reference_values_most_frequent_first(tmp_path):
    s = settings(tmp_path, max_segments=2)
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    profile = stored_reference(store, s)
    table = fixed_table(["colour"], 2, profile)
    assert table.names == {"colour": ["red", "green"]}  # the reference: red 50%, green 30%, blue 20%
    codes = table.codes({"colour": np.array(["blue", "red", None, "violet"], dtype=object)})["colour"]
    assert codes.tolist() == [-1, 0, -2, -1] and table.names == {"colour": ["red", "green"]}  # it never grows


def test_a_segment_without_a_reference_of_its_own_is_not_watched(tmp_path, caplog):
    """``(other)`` (blue, past max_segments) would collect its reference from the stream: not in scale-out."""
    s = settings(tmp_path, max_segments=2)
    with caplog.at_level("WARNING"):
        store, out = scaled(s, tmp_path, traffic()[:3000])
    assert {w["version"] for w in out} == {"v1", "v1[colour=red]", "v1[colour=green]"}
    assert "segment colour=(other) has no reference of its own" in caplog.text
    whole = [w for w in out if w["version"] == "v1"]
    assert sum(w["count"] for w in whole) == 3000  # blue's events are in their version's windows


def test_segment_references_built_from_the_file_are_stored(tmp_path):
    s = settings(tmp_path)
    store, _ = scaled(s, tmp_path, traffic()[:3000])
    refs = store.state.load_references()
    assert {"m[colour=red]", "m[colour=green]", "m[colour=blue]"} <= set(refs)
    assert refs["m[colour=red]"]["source"].endswith("(colour=red)")


@pytest.mark.parametrize("model, labelled", [({"labels": {"segments": ["colour"]}, "segments": []}, False),
                                             ({"labels": {}}, True)],
                         ids=["labels.segments", "segments-and-labels-estimated"])
def test_two_workers_store_the_performance_per_segment_one_process_stores(tmp_path, model, labelled, store_url):
    """With a labelled reference: each segment estimated, and compared with its rows of the reference."""
    from tests.unit.test_scale_labels import RULE, fired, keyed
    from tests.unit.test_scale_labels import stored_reference as labelled_reference

    def reference(store, s):
        return labelled_reference(store, s, labelled)
    labels = {"max_delay": "1h", "min_labelled": 0.3} | model["labels"]
    s = settings(tmp_path, **(model | {"labels": labels, "rules": [RULE]}))
    assert s.models[0].labels.segments == ["colour"]
    values = labelled_traffic(v2_from=3000)
    one = single(s, tmp_path, values, reference)
    expected = one.results.performance("m")
    assert {r["segment"] for r in expected} >= {"colour=red", "colour=green", "colour=blue"}
    if labelled:
        assert all(r["estimated"] and r["reference"] for r in expected if r["segment"])
    store = SqlStore(store_url)  # SQLite, and PostgreSQL (the store scale-out runs on) when available
    reference(store, s)
    clock, out = [1_795_000_000.0], []
    a, b = worker(s, store, None, out, lambda: clock[0]), worker(s, store, None, out, lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for batch in batches(keyed(values)):
        for w in (a, b):
            w.process(batch)
        clock[0] += 0.1
    clock[0] += 60
    for w in (a, b):
        w.process(Batch([], lambda i: None, {}))
    a.merger.run(clock[0])
    same_performance(store.results.performance("m"), expected)
    assert fired(store) == fired(one)
    assert store.partials.pending_performance("g") == {}


def test_a_worker_restored_from_its_checkpoint_stores_the_same_segment_windows(tmp_path):
    """Worker b is killed before its checkpoint every third batch and reads the batch again from
    the store's offsets: its partitions' open segment windows come back from their state."""
    s = settings(tmp_path)
    values = traffic()[:6000]
    one = by_version(single(s, tmp_path, values).reads.windows("m"))
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    stored_reference(store, s)
    clock = [1_795_000_000.0]
    a, b = worker(s, store, None, [], lambda: clock[0]), worker(s, store, None, [], lambda: clock[0])
    a.assign([(TOPIC, p) for p in range(3)])
    b.assign([(TOPIC, p) for p in range(3, 6)])
    for k, batch in enumerate(batches(keyless(values))):
        a.process(batch)
        if k % 3 == 1:
            b._stage(batch, False)  # read, then killed before its checkpoint was written:
            b.reload()  # restarted from the store, it reads the batch again
        b.process(batch)
        clock[0] += 0.1
    clock[0] += 60
    for w in (a, b):
        w.process(Batch([], lambda i: None, {}))
    got = by_version(store.reads.windows("m"))
    assert set(got) == set(one)
    for version, windows in one.items():
        assert [(w["start"], w["count"]) for w in got[version]] == [(w["start"], w["count"]) for w in windows]
        for x, y in zip(got[version], windows, strict=True):
            same_window(x, y, raw(values, x))


def test_segment_references_from_the_stream_are_refused_with_their_yaml_path(tmp_path):
    from driftline.errors import ConfigError
    from driftline.scale.limits import check_references
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, reference={"path": "ref.csv", "segment_first_n": 500})
    assert err.value.problems[0][0] == "models[0].reference.segment_first_n"
    s = settings(tmp_path, reference={"first_n": 2000})  # the model's reference is stored, its segments' not
    with pytest.raises(ConfigError) as err:
        check_references(s, {"m"})
    assert err.value.problems[0][0] == "models[0].reference.path" and "segments' references" in err.value.problems[0][1]
    check_references(s, {"m", "m[colour=red]"})  # stored ones (the others are not watched)


def test_a_partitions_segment_windows_coded_on_another_table_are_discarded(tmp_path, caplog):
    """The reference changed between two runs, and with it the fixed table: a stored segment
    state's code would name another value, so the partition's segment states are deleted."""
    from driftline.scale.partition import PartitionMonitor
    from driftline.scale.segments import PartitionSegments, SegmentCatalogue
    s = settings(tmp_path)
    spec = s.models[0]
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    catalogue = SegmentCatalogue(spec, stored_reference(store, s), {}, None)
    old = {"segments/codes": {"format": 1, "names": {"colour": ["green", "red", "blue"]}},
           "segments/0/0/v1": {"format": 1}}
    seg = PartitionSegments(spec, catalogue, PartitionMonitor)
    with caplog.at_level("WARNING"):
        seg.load(old, lambda *a: pytest.fail("restored"))
    assert seg.deleted == set(old) and not seg.children and "discarded" in caplog.text
    assert seg.table.names == {"colour": ["red", "green", "blue"]}
