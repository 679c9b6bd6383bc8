"""The contract every detector keeps: state round-trip (as data, no pickle), merge of
halves equals the whole, a seeded stationary stream raises nothing, a seeded change is
caught at a stated position. ``test_state_contract.py`` has the round trip of every
other stateful part."""

import numpy as np
import pytest

from driftline.config import parse_settings
from driftline.detectors.base import Context
from driftline.detectors.drift import METHODS, methods_for
from driftline.detectors.window import WindowStats
from driftline.monitor import ModelMonitor, reference_for
from driftline.state import decode, encode
from driftline.types import CategoricalColumn, Columns, NumericColumn

WINDOW, CHANGE = 500, 12
CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)
P = [.35, .25, .2, .15, .05]


def make_spec(numeric=None, categorical=None, **model):
    feats = {"x": "numeric", "y": "numeric", "z": "numeric", "c": "categorical"}
    drift = {k: v for k, v in (("numeric", numeric), ("categorical", categorical)) if v}
    cfg = {"name": "m", "features": feats, "window": {"size": WINDOW, "min_count": 100},
           "reference": {"first_n": 100}, "drift": drift, **model}
    return parse_settings({"models": [cfg]}, {}).models[0]


def stream(seed, n_windows, change=None, rho=0.0):
    """Reference of 5,000 events, then windows; ``change(cols, rng)`` alters windows from CHANGE on."""
    rng = np.random.default_rng(seed)
    n = 5000 + n_windows * WINDOW
    e = rng.normal(size=(n, 3))
    if rho:
        from scipy.signal import lfilter
        e = lfilter([np.sqrt(1 - rho * rho)], [1, -rho], e, axis=0)
    cols = {"x": e[:, 0], "y": 0.8 * e[:, 0] + 0.6 * e[:, 1], "z": np.exp(e[:, 2]),
            "c": CATS[rng.choice(5, n, p=P)]}
    ref = {k: v[:5000] for k, v in cols.items()}
    wins = []
    for i in range(n_windows):
        w = {k: v[5000 + i * WINDOW: 5000 + (i + 1) * WINDOW].copy() for k, v in cols.items()}
        if change is not None and i >= CHANGE:
            change(w, rng)
        wins.append(w)
    return ref, wins


def columns(raw):
    feats = {}
    for k, v in raw.items():
        if v.dtype == object:
            feats[k] = CategoricalColumn(v)
        else:
            feats[k] = NumericColumn(np.nan_to_num(v), np.isfinite(v), np.isnan(v))
    return Columns(np.arange(len(raw["x"]), dtype=np.int64), feats)


def run(spec, ref, wins):
    mon = ModelMonitor(spec, reference_for(spec, ref, "test"))
    out = []
    for w in wins:
        (closed,), _ = mon.ingest("v1", columns(w))
        out.append(mon.summarise(closed))
    return out


def first_alarm(summaries):
    return next((i for i, s in enumerate(summaries) if s["drifted"] or s["quality"]), None)


def mean_shift(w, rng):
    w["x"] = w["x"] + 0.5


def freq_shift(w, rng):
    w["c"] = CATS[rng.choice(5, w["c"].size, p=[.2, .4, .2, .15, .05])]


@pytest.mark.parametrize("method", methods_for("numeric"))
def test_each_numeric_method_is_quiet_on_stationary_and_catches_a_half_sd_shift(method):
    spec = make_spec(numeric=[method], categorical=["chisquare"])
    quiet = run(spec, *stream(1, 40))
    assert first_alarm(quiet) is None
    shifted = run(spec, *stream(1, 20, mean_shift))
    assert first_alarm(shifted) == CHANGE
    s = shifted[CHANGE]
    assert "x" in s["drifted"] and set(s["drifted"]) <= {"x", "multivariate"}  # a shift also leaves the PCA subspace
    assert s["features"]["x"]["drift"]["method"] == method
    assert s["features"]["x"]["drift"]["mode"] == "calibrated"


@pytest.mark.parametrize("method", methods_for("categorical"))
def test_each_categorical_method_is_quiet_on_stationary_and_catches_a_frequency_shift(method):
    spec = make_spec(categorical=[method])
    assert first_alarm(run(spec, *stream(2, 40))) is None
    shifted = run(spec, *stream(2, 20, freq_shift))
    assert first_alarm(shifted) == CHANGE and shifted[CHANGE]["drifted"] == ["c"]


def test_autocorrelated_stream_is_quiet_because_of_the_design_effect():
    summaries = run(make_spec(), *stream(3, 60, rho=0.6))
    assert first_alarm(summaries) is None
    uncorrected = make_spec(false_alarms=None, numeric=[{"method": "ks", "threshold": 1e-4}],
                            categorical=[{"method": "chisquare", "threshold": 1e-4}])
    assert first_alarm(run(uncorrected, *stream(3, 60, rho=0.6))) is not None


def test_a_broken_correlation_is_caught_by_the_multivariate_test_alone():
    def decorrelate(w, rng):
        w["y"] = rng.permutation(w["y"])
    summaries = run(make_spec(), *stream(4, 20, decorrelate))
    assert first_alarm(summaries) == CHANGE
    assert summaries[CHANGE]["drifted"] == ["multivariate"]
    assert summaries[CHANGE]["multivariate"]["effect"]["error_ratio"] > 2


@pytest.mark.parametrize("change, check", [
    (lambda w, rng: w.__setitem__("c", np.where(w["c"] == "e", "a", w["c"])), "category_vanished"),
    (lambda w, rng: w.__setitem__("c", np.where(rng.random(WINDOW) < 0.05, "zz", w["c"])), "unseen_categories"),
    (lambda w, rng: w["z"].__setitem__(slice(0, 5), 1e6), "out_of_range"),
    (lambda w, rng: w["x"].__setitem__(rng.random(WINDOW) < 0.1, np.nan), "missing_rate"),
    (lambda w, rng: w["x"].__setitem__(slice(None), np.nan), "absent"),
    (lambda w, rng: w["z"].__setitem__(slice(None), 1.0), "constant"),
])
def test_each_quality_check_fires_at_the_change(change, check):
    summaries = run(make_spec(), *stream(5, 16, change))
    assert first_alarm(summaries[:CHANGE]) is None
    assert check in {f["check"] for f in summaries[CHANGE]["quality"]}


def round_trip(ws, prof, spec=None):
    return WindowStats.from_state(decode(encode(ws.to_state())), prof, spec)


def test_state_round_trip_and_merge_of_halves_equal_the_whole():
    spec = make_spec(numeric=["meanvar", "ks", "wasserstein", "hellinger"], categorical=["chisquare", "tvd", "z"])
    ref, (w,) = stream(7, 1)
    prof = reference_for(spec, ref, "test")
    whole, a, b = WindowStats(prof), WindowStats(prof), WindowStats(prof)
    whole.update(columns(w))
    a.update(columns({k: v[:200] for k, v in w.items()}))
    b.update(columns({k: v[200:] for k, v in w.items()}))
    a = round_trip(a, prof)
    a.merge(round_trip(b, prof))
    mon = ModelMonitor(spec, prof)
    got = a.summarise(prof, mon.plans, True)
    want = whole.summarise(prof, mon.plans, True)
    for name in want:
        for r1, r2 in zip(got[name]["tests"], want[name]["tests"]):
            assert r1["statistic"] == pytest.approx(r2["statistic"], rel=1e-9, abs=1e-12), (name, r1["method"])
    ctx = Context(prof, 1e-4, None)
    assert a.window_tests(ctx)["multivariate"]["statistic"] == pytest.approx(
        whole.window_tests(ctx)["multivariate"]["statistic"])
    assert a.findings(prof, 1e-4) == whole.findings(prof, 1e-4)


def test_the_catalogue_is_an_explicit_dict_with_a_reason_for_each_method():
    assert set(METHODS) == {"ks", "wasserstein", "psi", "jensenshannon", "hellinger", "meanvar", "chisquare",
                            "tvd", "linf", "z", "fisher"}
    assert all(m.why for m in METHODS.values())


def small_step(w, rng):
    w["x"] = w["x"] + 0.12  # window z about 2.5: below any single window's threshold


def test_a_small_step_is_caught_by_the_trend_test_before_any_window_test():
    ref, wins = stream(9, CHANGE + 30, small_step)
    out = run(make_spec(), ref, wins)
    assert first_alarm(out) is not None and first_alarm(out) >= CHANGE
    fired = [i for i, s in enumerate(out) if "x" in s["drifted"]]
    assert fired and fired[0] - CHANGE < 16
    results = {t["method"]: t for t in out[fired[0]]["features"]["x"]["tests"]}
    assert results["trend"]["level"] == "drift"
    assert {m for m, t in results.items() if t["level"] == "drift"} == {"trend"}
    assert results["trend"]["effect"]["mean_shift_sd"] == pytest.approx(0.12, abs=0.06)
    from driftline.alerts.messages import evidence_lines

    (line,) = evidence_lines({"x": results["trend"]})  # what on-call reads
    assert line.startswith("x: trend ") and f"over the last {results['trend']['effect']['windows']} windows" in line
    without = run(make_spec(trend_windows=[]), ref, wins)
    assert first_alarm(without) is None or first_alarm(without) > fired[0]


def test_trend_z_is_the_two_sample_z_of_the_pooled_windows_and_its_state_round_trips():
    from driftline.detectors.trend import Trend

    rng = np.random.default_rng(3)
    ref = rng.normal(size=8000)
    wins = [rng.normal(0.02, 1, size=rng.integers(400, 900)) for _ in range(16)]
    t = Trend((4, 16))
    prof = {"n": ref.size, "mean": float(ref.mean()), "std": float(ref.std())}
    for w in wins[:10]:
        t.update("x", w.size, float(w.mean()), prof, alpha=1e-5)
    t = Trend.from_state(decode(encode(t.to_state())))
    for w in wins[10:]:
        r = t.update("x", w.size, float(w.mean()), prof, alpha=1e-5).to_dict()
    pooled = np.concatenate(wins) if r["effect"]["windows"] == 16 else np.concatenate(wins[-4:])
    z = (pooled.mean() - ref.mean()) / (ref.std() * np.sqrt(1 / ref.size + 1 / pooled.size))
    assert r["statistic"] == pytest.approx(abs(z), rel=1e-9)
    assert r["n_cur"] == pooled.size
    assert r["p_value"] == pytest.approx(min(1.0, 4 * float(__import__("scipy").stats.norm.sf(abs(z)))), rel=1e-6)


def test_a_field_added_to_the_records_is_a_finding_unless_the_reference_had_it():
    from driftline.types import Columns

    ref, wins = stream(5, CHANGE + 2)

    def with_extra(raw, names, share=1.0):
        cols = columns(raw)
        n = cols.n
        return Columns(cols.ts, cols.features, {k: np.arange(n) < share * n for k in names})

    mon = ModelMonitor(make_spec(reference={"first_n": 5000}))
    mon.ingest("v1", with_extra(ref, ["legacy_id"], share=0.3))  # the reference, collected from the stream
    assert mon.profile.fields_seen == {"legacy_id": pytest.approx(0.3)}
    found = []
    for i, w in enumerate(wins[:CHANGE + 2]):
        names = ["legacy_id"] + (["score_v2"] if i >= CHANGE else [])
        closed, _ = mon.ingest("v1", with_extra(w, names))
        found += [(i, q["feature"]) for c in closed for q in mon.summarise(c)["quality"] if q["check"] == "field_added"]
    assert found and found[0] == (CHANGE, "score_v2") and {f for _, f in found} == {"score_v2"}


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_domain_classifier_is_quiet_on_stationary_streams_and_catches_a_shift_by_itself(rho):
    spec = make_spec(domain_classifier={"enabled": True})
    ref, quiet = stream(21, 30, rho=rho)
    out = run(spec, ref, quiet)
    assert all(s["domain_classifier"]["level"] != "drift" for s in out)
    assert {s["domain_classifier"]["method"] for s in out} == {"domain_classifier"}
    ref, wins = stream(22, CHANGE + 3, lambda w, rng: w.update(x=w["x"] + 0.5, z=w["z"] * 1.5))
    out = run(spec, ref, wins)
    levels = [s["domain_classifier"]["level"] for s in out]
    assert "drift" not in levels[:CHANGE] and levels[CHANGE:] == ["drift"] * 3
    r = out[CHANGE]["domain_classifier"]
    assert r["statistic"] > 0.6 and r["n_cur"] > 0 and r["n_ref"] > 0 and r["threshold"] < r["statistic"]


def test_domain_classifier_sample_merges_and_its_state_round_trips():
    from driftline.detectors.classifier import DomainProfile, RowSample

    rng = np.random.default_rng(2)
    ref = {"a": rng.normal(size=3000), "c": rng.choice(["x", "y"], 3000).astype(object)}
    prof = DomainProfile.build(ref, {"a": "numeric", "c": "categorical"}, sample=300, window=600)
    prof = DomainProfile.from_dict(decode(encode(prof.to_dict())))
    halves = [RowSample(prof, seed=s) for s in (1, 2)]
    rows = {"a": rng.normal(size=1000), "c": rng.choice(["x", "y"], 1000).astype(object)}
    halves[0].update({k: v[:400] for k, v in rows.items()})
    halves[1].update({k: v[400:] for k, v in rows.items()})
    union = np.r_[halves[0].keys, halves[1].keys]
    whole = RowSample.from_state(decode(encode(halves[0].to_state())), prof)
    whole.merge(halves[1])
    assert whole.count == 1000 and whole.keys.size == 300
    assert sorted(whole.keys) == sorted(np.sort(union)[:300])  # the smallest keys of both halves
    assert set(whole.num[:, 0]) <= set(rows["a"])
    back = RowSample.from_state(decode(encode(whole.to_state())), prof)
    assert prof.test(whole, alpha=1e-4) == prof.test(back, alpha=1e-4)
    more = {"a": rng.normal(size=500), "c": rng.choice(["x", "y"], 500).astype(object)}
    whole.update(more)
    back.update(more)  # the restored generator draws the same keys: the same sample after
    assert (np.sort(whole.keys) == np.sort(back.keys)).all()
