"""Estimated performance before labels, the labelled reference's performance, and the rules
on them, through the pipeline over a SQLite store (docs/performance.md, "In the pipeline")."""

import numpy as np
import orjson
import pytest

from driftline.app import load_references
from driftline.config import parse_settings
from driftline.errors import ConfigError
from driftline.store import SqlStore
from driftline.types import Batch, SourcePosition
from tests.helpers import config, make_pipeline

START = 1_795_000_000_000


def _rows(n, seed, squeeze=1.0):
    """Calibrated scores: x ~ N(0, 1), score = sigmoid(1.5 x), label ~ Bernoulli(score);
    ``squeeze`` pulls the scores towards 0.5 (the same labels' relation to x)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    s = 1 / (1 + np.exp(-1.5 * x))
    y = (rng.uniform(size=n) < s).astype(int)
    return x, 0.5 + (s - 0.5) * squeeze, y


def _reference(path, n=6000):
    x, s, y = _rows(n, 1)
    with path.open("wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps({"features": {"x": float(x[i]), "colour": "red"}, "prediction": float(s[i]),
                                   "label": int(y[i])}) + b"\n")
    return path


def _settings(ref, rules=(), **labels):
    return parse_settings(config(model={"features": {"x": "numeric", "colour": "categorical"},
                                        "window": {"size": 2000, "min_count": 200},
                                        "reference": {"path": str(ref)},
                                        "labels": {"max_delay": "30d"} | labels, "rules": list(rules)}), {})


def _events(x, s, first):
    return [orjson.dumps({"model": "m", "version": "v1", "id": str(first + i), "ts": START + (first + i) * 10,
                          "features": {"x": float(x[i]), "colour": "red"}, "prediction": float(s[i])})
            for i in range(len(x))]


def _labels(y, first, delay_ms=60_000):
    return [orjson.dumps({"model": "m", "id": str(first + i), "ts": START + (first + i) * 10 + delay_ms,
                          "label": int(y[i])}) for i in range(len(y))]


def _run(p, values, size=500):
    for k in range(0, len(values), size):
        chunk = values[k:k + size]
        p.process(Batch(chunk, lambda i, k=k: SourcePosition("t", 0, k + i), {("t", 0): k + len(chunk)}), force=True)


def _pipeline(tmp_path, settings, routes=None):
    store, out = SqlStore(f"sqlite:///{tmp_path / 'd.db'}"), []
    p = make_pipeline(settings, store, out.append, routes=routes, checkpoint_every=0.0)
    load_references(settings, p, store)
    return p, store, out


def _perf(out, seq):
    return [r for r in out if r["type"] == "performance" and r["window"]["seq"] == seq]


def test_a_window_is_estimated_when_it_closes_and_the_estimate_meets_the_realized_auc(tmp_path):
    settings = _settings(_reference(tmp_path / "ref.jsonl"))
    p, store, out = _pipeline(tmp_path, settings)
    assert p.monitors["m"].profile.performance["calibrator"]["method"] == "identity"
    x, s, y = _rows(6000, 2)
    _run(p, _events(x, s, 0))  # three windows of 2000 close; no label yet
    first = _perf(out, 0)
    assert len(first) == 1 and first[0]["labelled"] == 0 and not first[0]["enough"]
    est = first[0]["estimated"]
    assert est["n"] == 2000 and est["calibration"] == "identity"
    ref = first[0]["reference"]
    assert ref["n"] == 6000 and 0.75 < ref["metrics"]["roc_auc"] < 0.85
    assert not ref["estimated"]["roc_auc"]["significant"]  # the same model on the same inputs
    _run(p, _labels(y, 0))
    for seq in (0, 1, 2):
        last = _perf(out, seq)[-1]
        real, e = last["metrics"], last["estimated"]
        assert last["labelled"] == 2000 and e == _perf(out, seq)[0]["estimated"]  # the estimate stays
        band = 3 * np.hypot(real["se"]["roc_auc"], e["se"]["roc_auc"])
        assert abs(e["roc_auc"] - real["roc_auc"]) < min(band, 0.04), seq
        assert abs(e["accuracy"] - real["accuracy"]) < 3 * np.hypot(real["se"]["accuracy"], e["se"]["accuracy"])
    rows = store.results.performance("m")
    assert [r["estimated"]["n"] for r in rows] == [2000, 2000, 2000] and rows[0]["reference"]["n"] == 6000
    from driftline.performance_view import columns, from_row, text_row
    lines = [from_row(r, 0.3) for r in rows]
    assert "est_roc_auc" in columns(lines, False)
    assert text_row(lines[0])["est_roc_auc"] == rows[0]["estimated"]["roc_auc"]


def test_under_concept_drift_the_estimate_stays_put_while_the_realized_auc_falls_and_the_rule_fires(tmp_path):
    rules = [{"name": "auc_drop", "metric": "roc_auc", "drop_from_reference": "significant"},
             {"name": "est_drop", "metric": "estimated_roc_auc", "drop": 0.05}]
    settings = _settings(_reference(tmp_path / "ref.jsonl"), rules)
    p, store, out = _pipeline(tmp_path, settings)
    x, s, y = _rows(4000, 3)
    flipped = np.where(np.arange(4000) >= 2000, 1 - y, y)  # window 1: the relation turned around
    _run(p, _events(x, s, 0) + _labels(flipped, 0))
    good, bad = _perf(out, 0)[-1], _perf(out, 1)[-1]
    assert abs(good["estimated"]["roc_auc"] - bad["estimated"]["roc_auc"]) < 0.03  # the scores look alike
    assert good["metrics"]["roc_auc"] > 0.75 and bad["metrics"]["roc_auc"] < 0.3
    assert bad["reference"]["realized"]["roc_auc"]["significant"]
    assert not good["reference"]["realized"]["roc_auc"]["significant"]
    states = {s.rule: s for s in store.results.load_alert_states().values()}
    assert states["auc_drop"].status == "firing" and "est_drop" not in states or states["est_drop"].status == "ok"
    ev = states["auc_drop"].last_event
    assert ev["features"]["roc_auc"]["reference"] == pytest.approx(bad["reference"]["metrics"]["roc_auc"])
    (trigger,) = store.reads.triggers()
    assert trigger["data"]["performance"]["auc_drop"]["roc_auc"]["value"] < 0.3
    assert trigger["data"]["reason"] == "auc_drop" and trigger["data"]["drifted"] == {}


def test_an_estimated_rule_fires_before_any_label_when_the_scores_lose_their_spread(tmp_path):
    rules = [{"name": "est_drop", "metric": "estimated_roc_auc", "drop": 0.05}]
    settings = _settings(_reference(tmp_path / "ref.jsonl"), rules)
    p, store, out = _pipeline(tmp_path, settings)
    x, s, _ = _rows(2000, 4, squeeze=0.05)  # every score near 0.5: a calibrated model would rank poorly
    _run(p, _events(x, s, 0))
    (rev,) = _perf(out, 0)
    assert rev["labelled"] == 0 and rev["estimated"]["roc_auc"] < 0.6
    (state,) = store.results.load_alert_states().values()
    assert state.status == "firing" and "worse than the reference" in state.last_event["subject"]


def test_performance_alerts_request_retraining_with_their_numbers(tmp_path):
    rules = [{"name": "auc", "metric": "roc_auc", "below": 0.6}]
    settings = _settings(_reference(tmp_path / "ref.jsonl"), rules)
    p, store, out = _pipeline(tmp_path, settings)
    x, s, y = _rows(2000, 5)
    _run(p, _events(x, s, 0) + _labels(1 - y, 0))
    (trigger,) = store.reads.triggers()
    evidence = trigger["data"]["performance"]["auc"]["roc_auc"]
    assert evidence["value"] < 0.6 and 600 <= evidence["labelled"] <= 2000 and evidence["se"] > 0  # when it fired


def test_label_coverage_after_judges_a_window_once_it_is_that_old_labelled_or_not(tmp_path):
    rules = [{"name": "coverage", "metric": "label_coverage", "below": 0.5, "after": "30s"},
             {"name": "slow", "metric": "label_delay_p90", "above": "1m"}]
    settings = _settings(_reference(tmp_path / "ref.jsonl"), rules)
    p, store, out = _pipeline(tmp_path, settings)
    x, s, y = _rows(6000, 6)
    _run(p, _events(x[:2000], s[:2000], 0) + _labels(y[:200], 0, delay_ms=5_000))  # 10% labelled
    assert {st.rule: st.status for st in store.results.load_alert_states().values()}.get("coverage") != "firing"
    _run(p, _events(x[2000:], s[2000:], 2000))  # event time moves 40 s on: window 0 is now 30 s old
    aged = [r for r in _perf(out, 0) if r["age"] is not None and r["age"] >= 30]
    assert aged and aged[0]["labelled_share"] == 0.1
    states = {st.rule: st for st in store.results.load_alert_states().values()}
    assert states["coverage"].status == "firing"
    assert "slow" not in states or states["slow"].status != "firing"  # 10% labelled is not enough to judge


def test_performance_rule_conditions_are_checked_with_their_paths(tmp_path):
    ref = tmp_path / "ref.jsonl"
    cases = [({"name": "a", "metric": "roc_auc", "below": 0.7, "drop": 0.1}, "'below'/'above', or one of"),
             ({"name": "a", "metric": "roc_auc", "after": "1d", "below": 0.7}, "'after' goes with"),
             ({"name": "a", "metric": "label_coverage", "drop": 0.1}, "has no reference value"),
             ({"name": "a", "metric": "label_coverage", "below": 0.5, "after": "60d"}, "past labels.max_delay"),
             ({"name": "a", "metric": "roc_auc", "drop_from_reference": "yes"}, "drop_from_reference"),
             ({"name": "a", "metric": "label_delay_p90", "above": "three days"}, "expected a duration")]
    for rule, message in cases:
        with pytest.raises(ConfigError) as info:
            _settings(ref, [rule])
        assert message in str(info.value) and "rules" in str(info.value), (rule, str(info.value))
    with pytest.raises(ConfigError, match="unknown metric 'estimated_mae'"):
        _settings(ref, [{"name": "a", "metric": "estimated_mae", "above": 1}], task="regression")
    assert _settings(ref, [{"name": "a", "metric": "label_delay_p90", "above": "3d"}]).models[0].rules[0].above \
        == 3 * 86400


def test_the_estimate_of_an_open_window_survives_a_restart(tmp_path):
    settings = _settings(_reference(tmp_path / "ref.jsonl"))
    p, store, out = _pipeline(tmp_path, settings)
    x, s, _ = _rows(2000, 7)
    values = _events(x, s, 0)
    _run(p, values[:1200])  # checkpointed: window 0 open with 1,200 scores
    again, out2 = make_pipeline(settings, SqlStore(f"sqlite:///{tmp_path / 'd.db'}"), [].append), []
    again.output = out2.append
    _run(again, values[1200:])
    (rev,) = [r for r in out2 if r["type"] == "performance"]
    (tmp_path / "w").mkdir()
    whole, _, out3 = _pipeline(tmp_path / "w", settings)
    _run(whole, values)
    (expected,) = [r for r in out3 if r["type"] == "performance"]
    got, want = rev["estimated"], expected["estimated"]
    assert got["n"] == 2000 and got.keys() == want.keys()
    for k in ("accuracy", "f1", "roc_auc", "brier", "log_loss"):  # sums in another order: equal to rounding
        assert got[k] == pytest.approx(want[k], rel=1e-9) and got["se"][k] == pytest.approx(want["se"][k], rel=1e-9)


def _two_versions(x, s, first, versions=("v1", "v2")):
    return [orjson.dumps({"model": "m", "version": versions[i % 2], "id": str(first + i),
                          "ts": START + (first + i) * 10, "features": {"x": float(x[i]), "colour": "red"},
                          "prediction": float(s[i])}) for i in range(len(x))]


def test_a_challenger_worse_than_the_champion_beside_it_is_a_rollback_alert(tmp_path):
    rules = [{"name": "rollback", "metric": "roc_auc", "drop_from_previous": "significant", "severity": "critical"}]
    cfg = config(model={"features": {"x": "numeric", "colour": "categorical"},
                        "window": {"duration": "20s", "min_count": 200},
                        "reference": {"path": str(_reference(tmp_path / "ref.jsonl"))},
                        "labels": {"max_delay": "30d"}, "rules": rules})
    settings = parse_settings(cfg, {})
    p, store, out = _pipeline(tmp_path, settings)
    x, s, y = _rows(8000, 8)
    y = np.where(np.arange(8000) % 2 == 1, 1 - y, y)  # v2 (odd ids): its scores mean the opposite
    _run(p, _two_versions(x, s, 0) + _labels(y, 0))
    p.end_of_input()
    last = {}
    for r in out:
        if r["type"] == "performance":
            last[(r["version"], r["window_key"])] = r
    v1 = [r for (v, _), r in last.items() if v == "v1"]
    v2 = [r for (v, _), r in last.items() if v == "v2"]
    assert all(r["versions"] is None for r in v1)  # the first version has none before it
    for r in v2:
        assert r["versions"]["baseline"] == "v1" and r["versions"]["same_window"]
        assert r["versions"]["realized"]["roc_auc"]["significant"] and r["metrics"]["roc_auc"] < 0.3
        assert r["versions"]["metrics"]["roc_auc"] == last[("v1", r["window_key"])]["metrics"]["roc_auc"]
    states = {(st.version, st.rule): st for st in store.results.load_alert_states().values()}
    assert states[("v2", "rollback")].status == "firing" and states[("v1", "rollback")].status == "ok"
    assert "worse than version v1" in states[("v2", "rollback")].last_event["subject"]
    stored = {(r["version"], r["window_key"]): r["versions"] for r in store.results.performance("m")}
    assert all(stored[k] == r["versions"] for k, r in last.items())


def test_a_new_version_is_compared_with_the_newest_windows_of_the_one_it_replaced(tmp_path):
    settings = _settings(_reference(tmp_path / "ref.jsonl"))
    p, store, out = _pipeline(tmp_path, settings)
    x, s, y = _rows(8000, 9)
    old = _events(x[:6000], s[:6000], 0)
    new = [e.replace(b'"version":"v1"', b'"version":"v2"') for e in _events(x[6000:], s[6000:], 6000)]
    _run(p, old + _labels(y[:6000], 0) + new + _labels(y[6000:], 6000))
    (v2,) = {r["window_key"]: r for r in out if r["type"] == "performance" and r["version"] == "v2"}.values()
    v = v2["versions"]
    assert v["baseline"] == "v1" and not v["same_window"] and v["windows"] == 3 and v["n"] == 6000
    assert not v["realized"]["roc_auc"]["significant"] and not v["estimated"]["roc_auc"]["significant"]


def test_late_labels_of_an_older_window_do_not_resolve_what_a_newer_one_fired():
    from driftline.alerts.rules import performance
    from driftline.config.settings import RuleSpec
    rule = RuleSpec(name="auc", metric="roc_auc", below=0.6, resolve_after=1)

    def rev(key, auc):
        return {"model": "m", "version": "v1", "window": {"seq": key, "start": "S", "end": "E"}, "window_key": key,
                "labelled": 900, "labelled_share": 0.9, "revision": 2, "enough": True,
                "metrics": {"roc_auc": auc, "se": {"roc_auc": 0.02}}}
    state, event = performance(rule, rev(5, 0.52), None)
    assert event["status"] == "firing" and state.judged == 5
    state, event = performance(rule, rev(4, 0.81), state)  # window 4's late labels: healthy, older
    assert event is None and state.status == "firing"
    state, event = performance(rule, rev(5, 0.55), state)  # more labels of the newest: still low
    assert event is None and state.status == "firing"
    state, event = performance(rule, rev(6, 0.80), state)
    assert event["status"] == "resolved" and state.judged == 6


def test_every_window_a_batch_closes_gets_its_estimate(tmp_path):
    settings = _settings(_reference(tmp_path / "ref.jsonl"))
    p, store, out = _pipeline(tmp_path, settings)
    x, s, _ = _rows(10_000, 10)
    _run(p, _events(x, s, 0), size=10_000)  # one batch closes five windows
    assert sorted(r["window"]["seq"] for r in out if r["type"] == "performance") == [0, 1, 2, 3, 4]
    assert all(r["estimated"]["n"] == 2000 for r in out if r["type"] == "performance")


def test_a_concept_drift_finding_counts_once_however_often_its_window_is_revised():
    from driftline.alerts.rules import performance
    from driftline.config.settings import RuleSpec
    rule = RuleSpec(name="concept", concept_drift=True, resolve_after=2)
    finding = {"kind": "concept_drift", "detector": "adwin", "signal": "loss", "window": 10, "ts": "T",
               "before": 0.16, "after": 0.34, "direction": "worse", "labels_seen": 400, "at": 500,
               "informational": False}

    def rev(key, *found):
        return {"model": "m", "version": "v1", "window": {"seq": key, "start": "S", "end": f"E{key}"},
                "window_key": key, "labelled": 900, "labelled_share": 0.9, "revision": 2, "enough": True,
                "metrics": {}, "findings": list(found)}
    seen = []
    state = None
    for r in (rev(10, finding), rev(11), rev(10, finding), rev(12), rev(10, finding), rev(13), rev(13),
              rev(13, finding | {"at": 900, "window": 13})):
        state, event = performance(rule, r, state)
        seen.append(None if event is None else event["status"])
    assert seen == ["firing", None, None, "resolved", None, None, None, "firing"]


def _colour_rows(n, seed, blue_flipped=False):
    """As :func:`_rows`, half red and half blue; ``blue_flipped``: the blue labels no longer follow
    the scores (concept drift in one segment)."""
    x, s, y = _rows(n, seed)
    colour = np.where(np.arange(n) % 2 == 0, "red", "blue")
    if blue_flipped:
        rng = np.random.default_rng(seed + 100)
        y = np.where(colour == "blue", (rng.uniform(size=n) < 0.5).astype(int), y)
    return x, s, y, colour


def _colour_events(x, s, colour, first):
    return [orjson.dumps({"model": "m", "version": "v1", "id": str(first + i), "ts": START + (first + i) * 10,
                          "features": {"x": float(x[i]), "colour": str(colour[i])}, "prediction": float(s[i])})
            for i in range(len(x))]


def test_a_segment_is_estimated_and_compared_with_its_own_rows_of_the_reference(tmp_path):
    ref = tmp_path / "ref.jsonl"
    x, s, y, colour = _colour_rows(6000, 1)
    ref.write_bytes(b"".join(orjson.dumps({"features": {"x": float(x[i]), "colour": str(colour[i])},
                                           "prediction": float(s[i]), "label": int(y[i])}) + b"\n"
                             for i in range(6000)))
    rule = {"name": "auc_vs_reference", "metric": "roc_auc", "drop_from_reference": "significant"}
    settings = _settings(ref, [rule], segments=["colour"])
    p, store, out = _pipeline(tmp_path, settings)
    segs = p.monitors["m"].profile.performance["segments"]["colour"]
    assert set(segs) == {"red", "blue"} and segs["blue"]["n"] == 3000
    x, s, y, colour = _colour_rows(6000, 2, blue_flipped=True)
    _run(p, _colour_events(x, s, colour, 0))  # three windows close: whole and segment estimates, no label
    blue = [r for r in out if r["type"] == "performance" and (r["segment"] or {}).get("value") == "blue"]
    assert [r["window"]["seq"] for r in blue] == [0, 1, 2]
    assert blue[0]["labelled"] == 0 and blue[0]["estimated"]["n"] == blue[0]["count"] == 1000
    assert blue[0]["reference"]["n"] == 3000
    assert not blue[0]["reference"]["estimated"]["roc_auc"]["significant"]  # the same scores as its reference
    _run(p, _labels(y, 0))
    last = {(r["segment"] or {}).get("value"): r for r in out if r["type"] == "performance" and r["window"]["seq"] == 0}
    assert last["blue"]["reference"]["realized"]["roc_auc"]["significant"]  # its labels stopped following the scores
    assert not last["red"]["reference"]["realized"]["roc_auc"]["significant"]
    assert last["blue"]["estimated"] == blue[0]["estimated"]  # the estimate stays put: it cannot see concept drift
    fired = [s for s in p.router.alerts.values() if s.status == "firing"]
    assert fired and all(s.rule == "auc_vs_reference" for s in fired)
    assert "colour=blue" in {a.last_event.get("segment") for a in fired} <= {"colour=blue", None}
    rows = [r for r in store.results.performance("m") if r["segment"] == "colour=blue"]
    assert rows and rows[0]["estimated"]["n"] == 1000 and rows[0]["reference"]["n"] == 3000
