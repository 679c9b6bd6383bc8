"""Drift per segment (``segments: [region]``): each value's own reference, windows, tests and
rules, through the real pipeline on SQLite with an in-memory source."""

import time
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import pytest

from driftline.alerts.console import RecordingSink
from driftline.app import build_http, build_service
from driftline.config import parse_settings
from driftline.errors import ConfigError
from driftline.ports import NoDeadLetters
from driftline.segment_drift import MIN_ROWS
from driftline.store import SqlStore
from driftline.streams.memory import MemorySource
from driftline.types import iso

T0 = 1_795_000_000_000


def events(n, start=0, south_shift=0.0, seed=0, regions=("north", "south"), p=None):
    """``x`` is N(0, 1) in the north and N(3, 1) in the south (they differ by nature);
    ``south_shift`` moves the south's only, by that many of its standard deviations."""
    rng = np.random.default_rng(seed)
    region = rng.choice(list(regions), n, p=p)
    x = np.where(region == "south", rng.normal(3 + south_shift, 1, n), rng.normal(0, 1, n))
    y = rng.normal(10, 2, n)
    colour = rng.choice(["red", "green", "blue"], n)
    return [orjson.dumps({"model": "m", "version": "v1", "id": str(start + i), "ts": T0 + (start + i) * 10,
                          "features": {"x": float(x[i]), "y": float(y[i]), "colour": str(colour[i]),
                                       "region": str(region[i])},
                          "prediction": float(1 / (1 + np.exp(-x[i])))}) for i in range(n)]


def config(**model) -> dict:
    base = {"name": "m", "features": {"x": "numeric", "y": "numeric", "colour": "categorical",
                                      "region": "categorical"},
            "prediction": "numeric", "window": {"duration": "20s", "min_count": 200},
            "reference": {"first_n": 4000}, "segments": ["region"],
            "rules": [{"name": "feature_drift", "share": 0.3, "resolve_after": 1}], "retrain": {"cooldown": "1h"}}
    return {"models": [base | model]}


def traffic():
    """The reference, 10 stationary windows (2,000 events each), 4 with the south moved, 2 stationary."""
    return (events(12000, seed=1) + events(20000, 12000, seed=2)
            + events(8000, 32000, south_shift=0.6, seed=3) + events(4000, 40000, seed=4))


def service(store, values, cfg=None, start=0, sink=None):
    windows = []
    src = MemorySource(values, batch_size=700, start=start)
    svc = build_service(parse_settings(cfg or config(), {}), store, src, NoDeadLetters(),
                        {"console": sink or RecordingSink()}, windows.append)
    return svc, src, windows


def by_version(windows):
    out = {}
    for w in windows:
        out.setdefault(w["version"], []).append(w)
    return out


def test_each_segment_is_tested_against_its_own_reference(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    sink = RecordingSink()
    svc, src, windows = service(store, traffic(), sink=sink)
    svc.run(until=lambda: src.done)
    got = by_version(windows)
    assert set(got) == {"v1", "v1[region=north]", "v1[region=south]"}
    north, south = got["v1[region=north]"], got["v1[region=south]"]
    assert all(w["segment"] == {"feature": "region", "value": "north", "version": "v1"} for w in north)
    assert "segment" not in got["v1"][0]
    # the north's x is 3 standard deviations from the south's: neither segment's own tests see it
    assert [w["drifted"] for w in north if w["tests_run"]] == [[]] * sum(w["tests_run"] for w in north)
    moved = [bool(w["drifted"]) for w in south if w["tests_run"]]
    assert moved[-5:] == [True] * 4 + [False] and not any(moved[:-5])  # the last window is still open
    assert "x" in south[-3]["drifted"] and south[-3]["count"] == pytest.approx(1000, rel=0.15)
    # every event of a segment after its reference (4,000) is in one of its windows, but for the open one
    left = sum(b'"region":"south"' in v for v in traffic()) - 4000 - sum(w["count"] for w in south)
    assert 0 < left < 1200
    refs = store.state.load_references()
    assert {"m", "m[region=north]", "m[region=south]"} <= set(refs)
    assert refs["m[region=south]"]["n"] == 4000
    assert refs["m[region=south]"]["features"]["x"]["mean"] == pytest.approx(3, abs=0.1)
    # the segment's alert is its own (its fingerprint, "segment", the subject names it) in the version's
    # incident: it fires once and resolves once; the retraining trigger is the version's
    deadline = time.monotonic() + 10
    while len([s for s in sink.sent if s[1].get("segment")]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    alerts = [p for k, p, _ in sink.sent if k == "alert"]
    south_alerts = [p for p in alerts if p.get("segment") == "region=south"]
    assert [p["status"] for p in south_alerts] == ["firing", "resolved"]
    assert south_alerts[0]["version"] == "v1" and south_alerts[0]["subject"].startswith("segment region=south: x")
    whole = [p for p in alerts if "segment" not in p]
    assert whole and whole[0]["fingerprint"] != south_alerts[0]["fingerprint"]
    assert south_alerts[0]["incident"] == whole[0]["incident"]
    assert not [p for p in alerts if p.get("segment") == "region=north"]
    [trigger] = [p for k, p, _ in sink.sent if k == "trigger"]
    assert trigger["version"] == "v1" and trigger["event"]["data"]["version"] == "v1"
    stored = by_version(store.reads.windows("m"))
    assert [w["seq"] for w in stored["v1[region=south]"]] == [w["seq"] for w in south]
    # the API draws a segment's window against the segment's reference, not the whole model's
    server = build_http(parse_settings(config() | {"store": {"url": store.url}}, {}), port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            def first(version):
                listed = client.get(f"/api/v1/models/m/versions/{quote(version)}/windows").json()["items"]
                return client.get(f"/api/v1/windows/{listed[0]['id']}").json()["histograms"]
            seg, whole = first("v1[region=south]"), first("v1")
    finally:
        server.stop()
    assert seg["region"]["labels"][:1] == ["south"] and seg["region"]["reference"][0] == 1.0
    assert sorted(whole["region"]["labels"][:2]) == ["north", "south"]


def test_a_restart_mid_stream_gives_the_windows_of_one_run(tmp_path, store_url):
    values = traffic()
    svc, src, whole = service(SqlStore(f"sqlite:///{tmp_path / 'a.db'}"), values)
    svc.run(until=lambda: src.done)
    url = store_url
    svc, src, first = service(SqlStore(url), values)
    while src.next < 10_300:  # while the segments still collect their references
        svc.step()
    while src.next < 35_100:  # mid-window, during the south's shift
        svc.step()
    svc.dispatcher.close()  # a crash: nothing more committed
    store = SqlStore(url)
    resume = store.state.load_offsets("driftline")[("memory", 0)]
    svc2, src2, _ = service(store, values, start=resume)
    svc2.run(until=lambda: src2.done)

    def key(w):
        return (w["version"], w["seq"], w["count"], sorted(w["drifted"]),
                round(w["features"]["x"]["drift"]["statistic"] if w["tests_run"] else 0, 9))
    assert sorted(map(key, store.reads.windows("m"))) == sorted(map(key, whole))


def test_a_quiet_segment_closes_its_windows_with_its_version(tmp_path):
    """A segment with no events for a while does not hold its window open: the version's
    watermark closes it, and later events of it open new ones."""
    values = (events(12000, seed=1) + events(2000, 12000, seed=2)
              + events(6000, 14000, seed=3, regions=("north",)) + events(4000, 20000, seed=4))
    svc, src, windows = service(SqlStore("sqlite://"), values)
    svc.run(until=lambda: src.done)
    at = {(w["version"], w["start"]): i for i, w in enumerate(windows)}
    south = {w["start"]: w for w in by_version(windows)["v1[region=south]"]}
    # the south's last window before its silence closed when the version passed it (before the north's
    # next window), not when the south's events came back 60 s later
    assert at[("v1[region=south]", iso(T0 + 120_000))] < at[("v1", iso(T0 + 160_000))]
    assert south[iso(T0 + 120_000)]["count"] > 0
    # the windows it sent nothing in are summarised, empty, once its events come back
    assert [south[iso(T0 + s * 1000)]["count"] for s in (140, 160, 180)] == [0, 0, 0]
    assert south[iso(T0 + 200_000)]["count"] > 0 and all(w["closed_by"] == "watermark" for w in south.values())


def test_a_segment_reference_comes_from_its_rows_of_the_reference_file(tmp_path):
    ref = tmp_path / "ref.jsonl"
    rows = events(6000, seed=9, regions=("north", "south", "east"), p=[0.495, 0.495, 0.01])
    ref.write_bytes(b"\n".join(rows))
    cfg = config(reference={"path": str(ref)})
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    svc, src, windows = service(store, events(12000, seed=2, regions=("north", "south", "east"),
                                              p=[0.45, 0.45, 0.1]), cfg=cfg)
    svc.run(until=lambda: src.done)
    refs = store.state.load_references()
    east_rows = sum(b'"region":"east"' in r for r in rows)
    assert east_rows < MIN_ROWS <= min(sum(b'"region":"%s"' % r in x for x in rows) for r in (b"north", b"south"))
    assert refs["m[region=south]"]["source"] == f"{ref} (region=south)"
    assert refs["m[region=south]"]["n"] == sum(b'"region":"south"' in r for r in rows)
    # too few rows in the file: the segment's reference is its first 1,000 events
    assert refs["m[region=east]"]["n"] == 1000 and refs["m[region=east]"]["source"] == "first 1000 events"
    got = by_version(windows)
    assert got["v1[region=south]"][0]["seq"] == 0 and got["v1[region=south]"][0]["count"] > 800
    # the east's share grew tenfold: the whole model's inputs drifted (region, and x by the mix), no
    # segment's own inputs did
    assert {"region", "x"} <= {f for w in got["v1"] for f in w["drifted"]}
    assert not any(w["drifted"] for v, ws in got.items() if v != "v1" for w in ws)


def test_a_segment_feature_kept_through_a_change_of_segments_keeps_its_windows(tmp_path):
    """[region] → [colour, region] → [colour]: region's segments go on as if nothing changed
    (the same windows as one run, no seq twice), then are dropped with their state."""
    values = traffic()
    svc, src, once = service(SqlStore("sqlite://"), values)
    svc.run(until=lambda: src.done)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    svc, src, _ = service(SqlStore(url), values)
    while src.next < 20_000:
        svc.step()
    svc.shutdown()
    store = SqlStore(url)
    before = {k for (_, k, _) in store.state.load_states("driftline")}
    assert "segments/codes" in before and any(k.startswith("segments/0/") for k in before)
    resume = store.state.load_offsets("driftline")[("memory", 0)]
    svc, src, _ = service(store, values, cfg=config(segments=["colour", "region"]), start=resume)
    svc.run(until=lambda: src.done)
    svc.shutdown()
    stored = by_version(SqlStore(url).reads.windows("m"))
    for v in ("v1[region=north]", "v1[region=south]"):
        assert [(w["seq"], w["count"], w["drifted"]) for w in stored[v]] == \
            [(w["seq"], w["count"], w["drifted"]) for w in by_version(once)[v]]
    assert {"v1[colour=red]", "v1[colour=green]", "v1[colour=blue]"} <= set(stored)
    keys = {k for (_, k, _) in SqlStore(url).state.load_states("driftline")}
    # region moved to index 1 (its keys with it, not copied); a segment's version key is the version
    assert {k for k in keys if k.startswith("segments/1/")} == {"segments/1/0/v1", "segments/1/1/v1"}
    assert {k for k in keys if k.startswith("segments/0/")} == {f"segments/0/{c}/v1" for c in range(3)}
    svc, src, _ = service(SqlStore(url), values, cfg=config(segments=["colour"]), start=len(values))
    svc.step()
    svc.shutdown()
    after = {k for (_, k, _) in SqlStore(url).state.load_states("driftline")}
    assert "v1" in after and {k for k in after if k.startswith("segments/") and k != "segments/codes"} == \
        {f"segments/0/{c}/v1" for c in range(3)}


def _errors(model: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(config(**model), {})
    return [f"{p}: {m}" for p, m in info.value.problems]


def test_segments_are_categorical_features_named_by_their_yaml_path():
    (err,) = _errors({"segments": ["region", "x"]})
    assert err.startswith("models[0].segments[1]: 'x' is not a categorical feature of model m")
    (err,) = _errors({"segments": ["region", "region"]})
    assert err == "models[0].segments[1]: 'region' is listed twice"
    (err,) = _errors({"max_segments": 0})
    assert err.startswith("models[0].max_segments:")


def test_labels_are_segmented_like_the_model_unless_told_otherwise():
    cfg = config(fields={"id": "id"}, max_segments=4, labels={})
    labels = parse_settings(cfg, {}).models[0].labels
    assert labels.segments == ["region"] and labels.max_segments == 4
    cfg = config(fields={"id": "id"}, labels={"segments": ["colour"]})
    assert parse_settings(cfg, {}).models[0].labels.segments == ["colour"]


def test_hostile_segment_values_name_nothing_long_and_break_nothing(tmp_path):
    """Values that look like the tag's syntax are segments like any other; a value longer than
    MAX_VALUE is in (other), never the name of a version, an alert or a store row."""
    odd = ["a]b[c=d", "x" * 5000, "(other)", ""]
    values = events(12000, seed=1, regions=("north", "south")) + [
        v.replace(b'"region":"north"', b'"region":' + orjson.dumps(odd[i % 4]))
        for i, v in enumerate(events(8000, 12000, seed=2))]
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    svc, src, windows = service(store, values, cfg=config(reference={"first_n": 4000, "segment_first_n": 200}))
    svc.run(until=lambda: src.done)
    versions = {w["version"] for w in windows}
    assert {"v1[region=a]b[c=d]", "v1[region=]", "v1[region=(other)]"} <= versions
    assert max(map(len, versions)) < 40
    seg = {w["segment"]["value"]: w["segment"] for w in windows if "segment" in w}
    assert seg["a]b[c=d"]["version"] == "v1" and seg[""]["version"] == "v1"
    assert max(len(r) for r in store.state.load_references()) < 40


def test_versions_that_would_be_confused_with_a_segment_or_overflow_the_store_are_bad_records():
    from driftline.streams.decode import Decoder
    from driftline.types import Batch, SourcePosition
    decoder = Decoder(parse_settings(config(), {}).models)
    good, = events(1)
    for version, reason in [("v1[region=south]", "spelled like a segment's version (model m's segments: region)"),
                            ("x" * 101, "is 101 characters long, at most 100")]:
        bad = good.replace(b'"version":"v1"', b'"version":' + orjson.dumps(version))
        for batch in ([bad], [good, bad], [bad] * 3):  # the columnar, the one-group and the record paths
            out = decoder.decode(Batch(batch, lambda i: SourcePosition("t", 0, i), {("t", 0): len(batch)}))
            assert [b.reason for b in out.bad] == [f"field 'version' is {version!r}, {reason}"
                                                   if "[" in version else f"field 'version' {reason}"] * batch.count(bad)
            assert sum(c.n for c in out.groups.values()) == batch.count(good)
    ok = good.replace(b'"version":"v1"', b'"version":"v1[colour=red]"')  # brackets are fine otherwise
    out = decoder.decode(Batch([ok], lambda i: SourcePosition("t", 0, i), {("t", 0): 1}))
    assert not out.bad and list(out.groups) == [("m", "v1[colour=red]")]
    # performance's segments tag versions too (scale-out stores their shares as v1[colour=red]'s)
    labelled = Decoder(parse_settings(config(segments=[], labels={"task": "regression", "segments": ["colour"]}),
                                      {}).models)
    for batch in ([ok], [good, ok], [ok] * 3):
        out = labelled.decode(Batch(batch, lambda i: SourcePosition("t", 0, i), {("t", 0): len(batch)}))
        assert [b.reason for b in out.bad] == ["field 'version' is 'v1[colour=red]', spelled like a segment's "
                                               "version (model m's segments: colour)"] * batch.count(ok)


def test_status_and_the_fleet_put_a_segment_alert_on_its_segments_row(tmp_path):
    from driftline.status import status_rows
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    values = events(12000, seed=1) + events(20000, 12000, seed=2) + events(8000, 32000, south_shift=0.6, seed=3)
    svc, src, windows = service(store, values)
    svc.run(until=lambda: src.done)
    svc.pipeline.end_of_input()
    # closed together, a segment's window is routed before its version's window of the same end
    last = [w for w in windows if w["closed_by"] == "end_of_input"]
    assert [w["version"] for w in last][-1] == "v1" and {"v1[region=north]", "v1[region=south]"} <= \
        {w["version"] for w in last}
    rows = {r["version"]: r for r in status_rows(store.reads, time.time())}
    assert [a["rule"] for a in rows["v1[region=south]"]["firing"]] == ["feature_drift"]
    assert rows["v1[region=north]"]["firing"] == [] and len(rows["v1"]["firing"]) == 1
    server = build_http(parse_settings(config() | {"store": {"url": store.url}}, {}), port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            fleet = {m["version"]: m for m in client.get("/api/v1/models").json()["items"]}
    finally:
        server.stop()
    assert fleet["v1[region=south]"]["firing"] == ["feature_drift"] and fleet["v1[region=north]"]["firing"] == []
    assert fleet["v1"]["firing"] == ["feature_drift"]


def test_the_longest_names_fit_the_store(store_url):
    """A 100-character version, a 33-character segment feature and 64-character values: every
    window, reference and state row is written (PostgreSQL's columns are 200 characters)."""
    feature = "f" * 33
    version = "v" * 100
    cfg = config(features={"x": "numeric", "y": "numeric", "colour": "categorical", feature: "categorical"},
                 segments=[feature], reference={"first_n": 4000, "segment_first_n": 200})
    values = [v.replace(b'"version":"v1"', b'"version":"' + version.encode() + b'"')
              .replace(b'"region":"north"', b'"' + feature.encode() + b'":"' + b"n" * 64 + b'"')
              .replace(b'"region":"south"', b'"' + feature.encode() + b'":"' + b"s" * 64 + b'"')
              for v in events(8000, seed=1)]
    store = SqlStore(store_url)
    svc, src, windows = service(store, values, cfg=cfg)
    svc.run(until=lambda: src.done)
    longest = max((w["version"] for w in windows), key=len)
    assert len(longest) == 100 + 3 + 33 + 64 == 200
    assert len(store.reads.windows("m")) == len(windows)
    assert f"m[{feature}={'s' * 64}]" in store.state.load_references()
    with pytest.raises(ConfigError, match=r"models\[0\]\.segments\[0\]: 'ffff.*' is 34 characters long; a segment "
                                          r"feature's name is at most 33"):
        parse_settings(config(features={"x": "numeric", "f" * 34: "categorical"}, segments=["f" * 34]), {})
