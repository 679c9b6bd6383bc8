"""Per-segment realized performance (labels.segments): code tables, the "(other)" and
"(missing)" segments, state over a restore, metrics against scikit-learn on the segment's
rows, metric rules per segment, and segment rows in the store beside the whole version's."""

import numpy as np
import orjson
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from driftline import state as st
from driftline.config import parse_settings
from driftline.config.settings import LabelsSpec
from driftline.errors import ConfigError
from driftline.labels.segments import MISSING, OTHER, SegmentCodes
from driftline.realized import RealizedPerformance
from driftline.store import SqlStore
from driftline.types import INVALID, Batch, SourcePosition
from tests.helpers import config, make_pipeline

START = 1_795_000_000_000
COUNTRIES = ["DE", "FR", "CZ"]


def _obj(values):
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _roundtrip(states: dict) -> dict:
    """As the store gives them back: encoded and decoded, deleted keys gone."""
    return {k: st.decode(st.encode(v, None), k, None) for k, v in states.items() if v is not None}


# -- code tables --------------------------------------------------------------------------


def test_values_get_codes_as_first_seen_up_to_the_cap_and_the_rest_is_other():
    t = SegmentCodes(("country",), max_segments=3)
    first = t.codes({"country": _obj(["FR", "DE", "FR", None, INVALID, "(other)", "(missing)"])})["country"]
    assert first.tolist() == [0, 1, 0, MISSING, OTHER, OTHER, OTHER] and first.dtype == np.int16
    later = t.codes({"country": _obj(["CZ", "PL", "DE", "SK", None])})["country"]
    assert later.tolist() == [2, OTHER, 1, OTHER, MISSING]  # CZ took the last code; PL and SK are over the cap
    assert t.names["country"] == ["FR", "DE", "CZ"]
    assert [t.value("country", c) for c in (0, 2, OTHER, MISSING)] == ["FR", "CZ", "(other)", "(missing)"]


def test_the_code_tables_are_stored_when_they_grow_and_are_stable_over_a_restore():
    spec = LabelsSpec(segments=["country"], max_segments=2, max_delay=3600)
    r = RealizedPerformance("m", spec, count_windows=True)
    r.add("v1", _obj(["a", "b"]), np.zeros(2, np.int64), np.array([0.9, 0.1]), np.array([START, START + 1]),
          {0: (0, START, START + 2)}, {"country": _obj(["FR", "DE"])})
    stored = r.dirty_state()
    r.clean()
    assert stored["labels/seg/codes"]["names"] == {"country": ["FR", "DE"]}
    r.add("v1", _obj(["c"]), np.zeros(1, np.int64), np.array([0.5]), np.array([START + 2]), {},
          {"country": _obj(["FR"])})
    assert "labels/seg/codes" not in r.dirty_state()  # no new value: the table is not written again
    r.clean()
    back = RealizedPerformance.from_state("m", spec, True, _roundtrip(stored))
    assert back.segments.table.names == {"country": ["FR", "DE"]}
    # after the restore, a new value is over the cap and the old ones keep their codes
    back.add("v1", _obj(["d", "e"]), np.zeros(2, np.int64), np.array([0.2, 0.7]), np.array([START + 3] * 2), {},
             {"country": _obj(["CZ", "DE"])})
    back.join(_obj(["a", "b", "d"]), np.array([1.0, 0.0, 1.0]), np.array([START + 10] * 3))
    lines = {(r["segment"] or {}).get("value"): r for r in back.revisions()}
    assert set(lines) == {None, "FR", "DE", "(other)"}
    assert lines["FR"]["labelled"] == 1 and lines["FR"]["count"] == 1  # "a"; "c" came after the checkpoint
    assert lines["DE"]["count"] == 2 and lines["(other)"]["count"] == 1


def test_segment_metrics_equal_scikit_learn_on_the_segments_rows():
    rng = np.random.default_rng(3)
    n = 3000
    country = rng.choice(COUNTRIES + [None, INVALID], n, p=[0.4, 0.3, 0.2, 0.06, 0.04])
    score = rng.random(n)
    label = np.where(country == "CZ", rng.random(n) < 0.5, rng.random(n) < score).astype(float)
    spec = LabelsSpec(segments=["country"], max_segments=5, max_delay=3600, threshold=0.5)
    r = RealizedPerformance("m", spec, count_windows=True)
    ids = _obj([str(i) for i in range(n)])
    windows = (np.arange(n) // 1500).astype(np.int64)
    r.add("v1", ids, windows, score, START + np.arange(n), {0: (0, START, START + 1500), 1: (1, START + 1500, START + n)},
          {"country": _obj(country)})
    labelled = rng.random(n) < 0.7
    r.join(ids[labelled], label[labelled], START + n + np.arange(int(labelled.sum())))
    lines = [x for x in r.revisions() if x["segment"] is not None]
    value = np.array(["(missing)" if c is None else "(other)" if c == INVALID else c for c in country], dtype=object)
    assert {(x["window_key"], x["segment"]["value"]) for x in lines} == {
        (w, v) for w in (0, 1) for v in COUNTRIES + ["(missing)", "(other)"]}
    score32 = score.astype(np.float32).astype(np.float64)  # the buffer holds scores as float32
    for x in lines:
        rows = (value == x["segment"]["value"]) & (windows == x["window_key"])
        hit = rows & labelled
        assert x["segment"]["feature"] == "country" and x["count"] == rows.sum() and x["labelled"] == hit.sum()
        m = x["metrics"]
        assert m["accuracy"] == pytest.approx(accuracy_score(label[hit], score32[hit] >= 0.5), abs=1e-12)
        assert abs(m["roc_auc"] - roc_auc_score(label[hit], score32[hit])) <= m["roc_auc_max_error"] + 1e-12
        assert x["labelled_share"] == pytest.approx(hit.sum() / rows.sum()) and x["enough"]


def test_segment_keys_are_written_when_changed_and_deleted_with_their_window():
    spec = LabelsSpec(segments=["country"], max_delay=10)
    r = RealizedPerformance("m", spec, count_windows=True)
    r.add("v1", _obj(["a", "b"]), np.zeros(2, np.int64), np.array([0.9, 0.1]), np.array([START, START]),
          {0: (0, START, START + 1)}, {"country": _obj(["DE", None])})
    r.join(_obj(["a"]), np.array([1.0]), np.array([START + 1000]))
    r.revisions()
    first = r.dirty_state()
    r.clean()
    assert {k for k in first if k.startswith("labels/seg/")} == {"labels/seg/codes", "labels/seg/0/0/n",
                                                                 "labels/seg/0/0/0/0"}
    r.join(_obj(["b"]), np.array([0.0]), np.array([START + 2000]))
    r.revisions()
    second = {k for k in r.dirty_state() if k.startswith("labels/seg/")}
    r.clean()
    assert second == {f"labels/seg/0/0/0/{MISSING}"}  # only the segment that got a label
    r.join(_obj(["zz"]), np.array([1.0]), np.array([START + 60_000]))  # the clock passes max_delay
    r.expire()
    gone = r.dirty_state()
    assert {k: v for k, v in gone.items() if k.startswith("labels/seg/")} == {
        "labels/seg/0/0/n": None, "labels/seg/0/0/0/0": None, f"labels/seg/0/0/0/{MISSING}": None}


def test_changed_segments_on_restore_are_refused_by_name():
    r = RealizedPerformance("m", LabelsSpec(segments=["country"]), count_windows=True)
    r.add("v1", _obj(["a"]), np.zeros(1, np.int64), np.array([0.9]), np.array([START]), {},
          {"country": _obj(["DE"])})
    stored = _roundtrip(r.dirty_state())
    with pytest.raises(st.StateError, match=r"labels.segments was \['country'\] .* now \[\]"):
        RealizedPerformance.from_state("m", LabelsSpec(), True, stored)


# -- configuration ------------------------------------------------------------------------


def _errors(model: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(config(model=model), {})
    return [f"{p}: {m}" for p, m in info.value.problems]


def test_segments_must_be_categorical_features_and_are_named_by_their_yaml_path():
    (err,) = _errors({"labels": {"segments": ["colour", "x"]}})
    assert err.startswith("models[0].labels.segments[1]: 'x' is not a categorical feature of model m")
    (err,) = _errors({"labels": {"segments": ["nope"]}})
    assert err.startswith("models[0].labels.segments[0]: 'nope' is not a categorical feature")
    (err,) = _errors({"labels": {"segments": ["colour", "colour"]}})
    assert err == "models[0].labels.segments[1]: 'colour' is listed twice"
    (err,) = _errors({"labels": {"max_segments": 0}})
    assert err.startswith("models[0].labels.max_segments:")
    s = parse_settings(config(model={"labels": {"segments": ["colour"]}}), {})
    assert s.models[0].labels.segments == ["colour"] and s.models[0].labels.max_segments == 10


# -- through the pipeline: rules and the store ----------------------------------------------


def _events(n: int, seed: int = 0) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    country = rng.choice(COUNTRIES, n, p=[0.6, 0.3, 0.1])
    x, y = rng.normal(0, 1, n), rng.normal(10, 2, n)
    pred = 1 / (1 + np.exp(-2 * x))
    out = [orjson.dumps({"model": "m", "version": "v1", "id": str(i), "ts": START + i * 10,
                         "features": {"x": float(x[i]), "y": float(y[i]), "colour": str(country[i])},
                         "prediction": float(pred[i])}) for i in range(n)]
    return out, country, pred


def _labels(ids, y, ts):
    return [orjson.dumps({"model": "m", "id": str(i), "ts": ts, "label": int(v)}) for i, v in zip(ids, y)]


def _batch(values, first):
    return Batch(values, lambda i: SourcePosition("t", 0, first + i), {("t", 0): first + len(values)})


def _pipeline(url, rules=()):
    cfg = config(model={"window": {"size": 1000, "min_count": 10}, "rules": list(rules),
                        "labels": {"max_delay": "1h", "segments": ["colour"], "min_labelled": 0.3}})
    return make_pipeline(parse_settings(cfg, {}), SqlStore(url), [].append, checkpoint_every=0.0)


def _feed(p, values, size=500):
    for k in range(0, len(values), size):
        p.process(_batch(values[k:k + size], k))


def test_a_segments_metric_rule_fires_while_the_whole_versions_does_not(tmp_path):
    p = _pipeline(f"sqlite:///{tmp_path / 'd.db'}",
                  [{"name": "auc", "metric": "roc_auc", "below": 0.7, "resolve_after": 1}])
    evs, country, pred = _events(3000)
    rng = np.random.default_rng(1)
    ids = np.arange(2000, 3000)  # the window after the reference
    y = np.where(country[ids] == "CZ", rng.random(ids.size) < 0.5, rng.random(ids.size) < pred[ids])
    _feed(p, evs + _labels(ids, y, START + 40_000))
    states = [s for s in p.store.results.load_alert_states().values() if s.rule == "auc"]
    firing = [s for s in states if s.status == "firing"]
    assert len(firing) == 1, states
    event = firing[0].last_event
    assert event["segment"] == "colour=CZ" and event["subject"].startswith("segment colour=CZ: roc_auc ")
    whole = [s for s in states if s.status != "firing"]
    assert len(whole) == 1 + 2 and all(s.last_event is None for s in whole)  # never fired: whole, DE, FR
    from driftline.alerts.rules import fingerprint, labels
    rule = p.settings.models[0].rules[0]
    assert firing[0].fingerprint == fingerprint("m", "v1", rule, "colour=CZ") != fingerprint("m", "v1", rule)
    assert labels(firing[0], rule, event["segment"])["segment"] == "colour=CZ"
    assert fingerprint("m", "v1", rule) in {s.fingerprint for s in whole}  # the whole version's, as before
    (inc,) = p.router.incidents.values()
    assert inc.group == {"model": "m", "version": "v1"} and list(inc.alerts) == [firing[0].fingerprint]


def test_segment_rows_are_stored_beside_the_whole_versions_row(store_url):
    p = _pipeline(store_url)
    evs, country, pred = _events(3000)
    ids = np.arange(2000, 3000, 2)
    _feed(p, evs + _labels(ids, pred[ids] > 0.5, START + 40_000))
    p.end_of_input()
    rows = SqlStore(store_url).results.performance("m")
    assert sorted(r["segment"] for r in rows) == ["", "colour=CZ", "colour=DE", "colour=FR"]
    assert {r["window_key"] for r in rows} == {0}  # the first count window after the reference
    whole = next(r for r in rows if r["segment"] == "")
    assert sum(r["count"] for r in rows if r["segment"]) == whole["count"] == 1000
    assert sum(r["labelled"] for r in rows if r["segment"]) == whole["labelled"] == 500
    de = next(r for r in rows if r["segment"] == "colour=DE")
    assert de["count"] == int((country[2000:] == "DE").sum()) and de["revision"] >= 1


def test_a_restart_between_checkpoints_gives_the_segment_rows_of_an_uninterrupted_run(tmp_path):
    evs, country, pred = _events(4000)
    ids = np.arange(2000, 4000, 3)
    values = evs + _labels(ids, pred[ids] > 0.5, START + 45_000)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    _feed(_pipeline(url), values[:3500])  # checkpointed at every batch
    _pipeline(url).process(_batch(values[3500:3700], 3500))  # read, never checkpointed: as after a SIGKILL
    p = _pipeline(url)
    offset = p.offsets[("t", 0)]
    for k in range(offset, len(values), 500):
        p.process(_batch(values[k:k + 500], k))
    p.end_of_input()
    whole = _pipeline(f"sqlite:///{tmp_path / 'w.db'}")
    _feed(whole, values, size=1000)
    whole.end_of_input()

    def rows(url):
        return sorted((r["window_key"], r["segment"], r["count"], r["labelled"], r["metrics"]["tp"])
                      for r in SqlStore(url).results.performance("m"))
    got = rows(url)
    assert got == rows(f"sqlite:///{tmp_path / 'w.db'}") and sum(r[3] for r in got if r[1]) == ids.size
    assert {r[1] for r in got} == {"", "colour=DE", "colour=FR", "colour=CZ"}
