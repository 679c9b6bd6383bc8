"""Concept drift on the error stream (driftline/detectors/performance/concept.py): detections on seeded
streams whose label relation changes, none on stationary ones, state split anywhere equals the whole."""

import numpy as np
import pytest
from scipy.special import expit

from driftline import state as st
from driftline.detectors.performance.concept import ConceptDrift


def _calibrated(rng, n, rate=0.2, mu=1.466):
    """A calibrated binormal model (ROC AUC 0.85): scores P(y=1 | x), labels Bernoulli(score)."""
    y = rng.uniform(size=n) < rate
    x = rng.normal(size=n) + mu * y
    s = expit(np.log(rate / (1 - rate)) + mu * x - mu**2 / 2)
    return s, (rng.uniform(size=n) < s).astype(float)


def _run(c, preds, labels, windows=None):
    n = preds.size
    c.update(preds, labels, np.arange(n) // 1000 if windows is None else windows, np.arange(n) + 10**12)
    return c.drain()


def test_a_fall_in_accuracy_with_the_same_scores_is_detected_by_both_detectors_after_the_change():
    rng = np.random.default_rng(3)
    s, y = _calibrated(rng, 40_000, rate=0.3)
    acc = ((s >= 0.5) == (y == 1))[:20_000].mean()
    flip = (rng.uniform(size=s.size) < 0.10 / (2 * acc - 1)) & (np.arange(s.size) >= 20_000)  # −10 points
    found = _run(ConceptDrift("binary"), s, np.where(flip, 1 - y, y))
    worse = [f for f in found if f["direction"] == "worse"]
    assert {f["detector"] for f in worse} == {"adwin", "hddm_a"}
    assert all(f["label_ts"] - 10**12 >= 20_000 for f in found)  # nothing before the change
    first = {f["detector"]: f for f in reversed(worse)}
    assert first["adwin"]["signal"] == "loss" and first["hddm_a"]["signal"] == "error"
    for f in first.values():
        assert f["after"] > f["before"] and f["window"] == (f["label_ts"] - 10**12) // 1000
    assert first["hddm_a"]["after"] - first["hddm_a"]["before"] > 0.05  # the error rate rose by about 0.1
    assert first["adwin"]["labels_seen"] > 20_000


def test_a_stationary_stream_raises_nothing_at_the_defaults():
    """benchmarks/concept.py: 0 detections in 1.2 million stationary labels per base rate at these defaults."""
    for rate in (0.05, 0.5):
        s, y = _calibrated(np.random.default_rng(11), 200_000, rate=rate)
        assert _run(ConceptDrift("binary"), s, y) == []


def test_river_defaults_are_not_quiet_on_the_same_stream():
    s, y = _calibrated(np.random.default_rng(11), 200_000, rate=0.5)
    loose = ConceptDrift("binary", delta=0.002, drift_confidence=0.001, grace_period=10)
    assert len(_run(loose, s, y)) >= 1  # why the defaults are stricter


def test_regression_a_wider_noise_is_detected_and_the_warm_up_sets_the_scale():
    rng = np.random.default_rng(5)
    target = rng.normal(size=30_000) * 10 + 1e6  # the unit of the target does not matter
    sd = np.where(np.arange(target.size) >= 15_000, 4.5, 3.0)
    pred = target + rng.normal(size=target.size) * sd
    c = ConceptDrift("regression", warmup=500)
    found = _run(c, pred[:15_000], target[:15_000])
    assert found == [] and c.labels == 15_000
    found = _run(c, pred[15_000:], target[15_000:])
    assert {f["detector"] for f in found if f["direction"] == "worse"} == {"adwin", "hddm_a"}
    stationary = ConceptDrift("regression")
    t = rng.normal(size=100_000)
    assert _run(stationary, t + rng.normal(size=t.size) * 1e-3, t) == []


def _restored(c):
    return ConceptDrift.from_state(st.decode(st.encode(c.to_state())))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_state_split_at_any_boundary_gives_the_same_detections_as_the_whole(task):
    rng = np.random.default_rng(8)
    if task == "binary":
        s, y = _calibrated(rng, 30_000)
        y[15_000:] = 1 - y[15_000:]
    else:
        y = rng.normal(size=30_000)
        s = y + rng.normal(size=y.size) * np.where(np.arange(y.size) >= 15_000, 3.0, 1.0)
    whole = ConceptDrift(task)
    expected = _run(whole, s, y)
    assert expected
    cuts = [0, 1, 499, 500, 501, 7_777, 15_000, 15_001, 15_200, 15_650, 16_000, 29_999, 30_000]
    c, got = ConceptDrift(task), []
    windows = np.arange(s.size) // 1000
    for a, b in zip(cuts, cuts[1:]):
        c.update(s[a:b], y[a:b], windows[a:b], np.arange(a, b) + 10**12)
        if b in (15_650, 16_000):  # restore with a detection not yet drained
            c = _restored(c)
        got += c.drain()
        c = _restored(c)
    assert got == expected and c.to_state() == whole.to_state()


def test_bad_values_are_left_out_and_bad_parameters_name_themselves():
    c = ConceptDrift("binary")
    c.update(np.array([0.2, np.nan, 1.5, 0.7]), np.array([0.0, 1.0, 1.0, 2.0]), np.zeros(4), np.zeros(4))
    assert c.labels == 1
    with pytest.raises(ValueError, match="task: 'multiclass'"):
        ConceptDrift("multiclass")
    with pytest.raises(ValueError, match="delta"):
        ConceptDrift("binary", delta=0)
    with pytest.raises(ValueError, match="format"):
        ConceptDrift.from_state({"format": 99})


def test_a_label_relation_that_flips_half_way_pages_concept_drift_and_no_input_drift(tmp_path):
    """The same inputs throughout (no feature drift); the labels follow the score, then its opposite."""
    import orjson

    from driftline.config import parse_settings
    from driftline.store import SqlStore
    from driftline.types import Batch, SourcePosition, iso
    from tests.helpers import config, events, make_pipeline

    start = 1_795_000_000_000
    rules = [{"name": "feature_drift", "share": 0.5, "resolve_after": 1}, {"name": "any_drift", "count": 1},
             {"name": "concept", "concept_drift": True},
             {"name": "accuracy", "metric": "accuracy", "below": 0.55}]
    settings = parse_settings(config(model={"labels": {"max_delay": "1h"}, "rules": rules}), {})
    store, out = SqlStore(f"sqlite:///{tmp_path / 'd.db'}"), []
    p = make_pipeline(settings, store, out.append, checkpoint_every=0.0)
    evs = events(14_000, seed=4)  # reference 2,000, then 12 count windows of 1,000
    pred = np.array([orjson.loads(e)["prediction"] for e in evs])
    y = (np.random.default_rng(4).uniform(size=pred.size) < pred).astype(int)
    y[8_000:] = 1 - y[8_000:]
    labels = [orjson.dumps({"model": "m", "id": str(i), "ts": start + i * 10 + 2_000, "label": int(y[i])})
              for i in range(2_000, 14_000)]
    values = [v for pair in zip(evs[2_000:], labels) for v in pair]  # each label right after a later event
    values = evs[:2_000] + values
    for k in range(0, len(values), 500):
        p.process(Batch(values[k:k + 500], lambda i, k=k: SourcePosition("t", 0, k + i), {("t", 0): k + 500}))
    p.end_of_input()
    revs = [r for r in out if r["type"] == "performance"]
    found = [(r["window"]["seq"], f) for r in revs for f in r["findings"]]
    assert found and all(f["kind"] == "concept_drift" and f["version"] == "v1" for _, f in found)
    worse = [(seq, f) for seq, f in found if f["direction"] == "worse"]
    assert {f["detector"] for _, f in worse} == {"adwin", "hddm_a"}
    first = min(worse, key=lambda sf: sf[1]["ts"])[1]
    assert first["window"] == 6 and first["ts"] > iso(start + 8_000 * 10)  # event 8,000 is window 6's first
    alerts = store.reads.alert_events()
    fired = {a["rule"] for a in alerts if a["status"] == "firing"}
    assert {"concept", "accuracy"} <= fired and not fired & {"feature_drift", "any_drift"}
    (page,) = [a for a in alerts if a["rule"] == "concept" and a["status"] == "firing"]
    assert "adwin on the loss" in page["subject"] and page["value"] == 2
    assert not [w for w in out if w["type"] == "window" and any(
        (f.get("drift") or {}).get("drifted") for f in w["features"].values())]
    keys = {k for (_, k, _) in store.state.load_states("driftline")}
    assert "labels/concept/0" in keys


def test_realized_performance_restored_between_label_batches_finds_what_one_process_finds():
    from driftline.config.settings import LabelsSpec
    from driftline.realized import RealizedPerformance

    rng = np.random.default_rng(2)
    n = 12_000
    s, y = _calibrated(rng, n, rate=0.4)
    y[6_000:] = 1 - y[6_000:]
    ids, wins = np.array([str(i) for i in range(n)], dtype=object), np.arange(n) // 1000
    spec = LabelsSpec(max_delay=86400)

    def fresh():
        r = RealizedPerformance("m", spec, count_windows=True)
        r.add("v1", ids, wins, s, np.arange(n) + 10**12, {w: (w, None, None) for w in range(12)})
        return r

    def findings(r):
        return {rev["window_key"]: rev["findings"] for rev in r.revisions() if rev["findings"]}

    whole = fresh()
    whole.join(ids, y.astype(float), np.arange(n) + 10**12 + 5)
    expected = findings(whole)
    assert expected and min(expected) == 6
    r, got, states = fresh(), {}, {}
    for a, b in ((0, 3_000), (3_000, 6_100), (6_100, 6_400), (6_400, n)):
        r.join(ids[a:b], y[a:b].astype(float), np.arange(a, b) + 10**12 + 5)
        got |= findings(r)
        states |= {k: st.decode(st.encode(v)) for k, v in r.dirty_state().items() if v is not None}
        r.clean()
        r = RealizedPerformance.from_state("m", spec, True, states)
    assert got == expected and "labels/concept/0" in states


def test_a_concept_drift_rule_needs_labels_and_is_one_condition():
    from driftline.config import parse_settings
    from driftline.errors import ConfigError
    from tests.helpers import config
    with pytest.raises(ConfigError, match="a 'concept_drift' rule needs 'labels'"):
        parse_settings(config(model={"rules": [{"name": "c", "concept_drift": True}]}), {})
    with pytest.raises(ConfigError, match="exactly one of"):
        parse_settings(config(model={"labels": {}, "rules": [{"name": "c", "concept_drift": True, "count": 1}]}), {})
