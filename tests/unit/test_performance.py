"""Performance statistics with labels: every metric against scikit-learn on random data, the
histogram curves within their stated bounds, merge equals whole, state round trip through
the state codec, degenerate windows give None (JSON-safe), the standard errors match the
spread of repeated windows."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from driftline.detectors.performance import BinaryStats, DelayStats, MulticlassStats, RegressionStats, compare
from driftline.detectors.performance.delay import EDGES
from driftline.state import decode, encode


def close(a, b, rel=1e-9, abs_=1e-12):
    """Two metrics dicts agree: the same keys, the same Nones, numbers within float noise."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            close(a[k], b[k], rel, abs_)
        elif a[k] is None or b[k] is None or isinstance(a[k], (str, list)):
            assert a[k] == b[k], k
        else:
            assert a[k] == pytest.approx(b[k], rel=rel, abs=abs_), k


def json_safe(m):
    json.dumps(m, allow_nan=False)
    return m


def binary_data(n, seed, a=2.0, b=5.0):
    rng = np.random.default_rng(seed)
    s = rng.beta(a, b, size=n)
    return s, (rng.uniform(size=n) < s).astype(int)


# --- binary classifier ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_binary_metrics_agree_with_sklearn(seed, threshold):
    s, y = binary_data(5000, seed)
    stats = BinaryStats(threshold=threshold)
    stats.update(s, y)
    m = json_safe(stats.metrics())
    pred = (s >= threshold).astype(int)
    assert m["n"] == 5000 and m["positives"] == y.sum() and m["invalid"] == 0
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, s), rel=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s), rel=1e-12)
    assert m["base_rate"] == pytest.approx(y.mean()) and m["predicted_positive_rate"] == pytest.approx(pred.mean())
    assert m["mean_score"] == pytest.approx(s.mean())


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("shape", [(2.0, 5.0), (0.3, 8.0), (5.0, 0.5)])  # ordinary, crowded near 0, near 1
def test_histogram_auc_and_ap_are_within_their_stated_bounds_of_sklearn(seed, shape):
    s, y = binary_data(20_000, seed, *shape)
    stats = BinaryStats()
    stats.update(s, y)
    m = stats.metrics()
    auc, ap = skm.roc_auc_score(y, s), skm.average_precision_score(y, s)
    assert abs(m["roc_auc"] - auc) <= m["roc_auc_max_error"] + 1e-12
    assert abs(m["average_precision"] - ap) <= m["average_precision_max_error"] + 1e-12
    # what the bounds come to at 1000 bins (+ log tails) on these smooth score densities
    assert m["roc_auc_max_error"] < 2e-3 and m["average_precision_max_error"] < 5e-3
    assert abs(m["roc_auc"] - auc) < 5e-4 and abs(m["average_precision"] - ap) < 2e-3


def test_the_auc_bound_is_half_the_largest_class_share_in_one_bin():
    s, y = binary_data(20_000, 1)
    for bins in (10, 100, 1000):
        stats = BinaryStats(bins=bins)
        stats.update(s, y)
        m = stats.metrics()
        state = stats.to_state()
        share = max((state["pos"] / state["pos"].sum()).max(), (state["neg"] / state["neg"].sum()).max())
        assert m["roc_auc_max_error"] <= share / 2
        assert abs(m["roc_auc"] - skm.roc_auc_score(y, s)) <= m["roc_auc_max_error"]


def test_scores_on_the_bins_give_sklearns_auc_and_ap_exactly():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 11, size=3000) / 10  # every score on an edge: binning loses nothing
    y = (rng.uniform(size=s.size) < s).astype(int)
    stats = BinaryStats()
    stats.update(s, y)
    m = stats.metrics()
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_ece_is_the_weighted_gap_between_mean_score_and_positive_rate_per_bin():
    from sklearn.calibration import calibration_curve
    s, y = binary_data(10_000, 4)
    stats = BinaryStats(calibration_bins=10)
    stats.update(s, y)
    positive_rate, mean_score = calibration_curve(y, s, n_bins=10)  # over the bins that hold events
    counts = np.bincount(np.minimum((s * 10).astype(int), 9), minlength=10)
    weights = counts[counts > 0] / s.size
    assert stats.metrics()["ece"] == pytest.approx(np.sum(weights * np.abs(positive_rate - mean_score)))


def test_a_window_of_miscalibrated_scores_has_a_larger_ece():
    s, y = binary_data(10_000, 5)
    good, bad = BinaryStats(), BinaryStats()
    good.update(s, y)
    bad.update(s ** 2, y)
    assert good.metrics()["ece"] < 0.03 < bad.metrics()["ece"]


def test_labels_may_be_bool_or_float_and_bad_events_are_counted_and_left_out():
    stats = BinaryStats()
    stats.update([0.9, 0.2, np.nan, 1.5, -0.1, 0.7, 0.4], [True, False, True, 1, 0, 2, 1.0])
    m = stats.metrics()
    assert (m["n"], m["invalid"], m["tp"], m["tn"], m["fn"]) == (3, 4, 1, 1, 1)
    with pytest.raises(ValueError, match="differ in length"):
        stats.update([0.1, 0.2], [1])


@pytest.mark.parametrize("case", ["empty", "positives only", "negatives only", "all equal scores",
                                  "nothing predicted positive", "one event"])
def test_degenerate_binary_windows_give_none_not_nan(case):
    s, y = {"empty": ([], []), "positives only": ([0.2, 0.9, 0.7], [1, 1, 1]),
            "negatives only": ([0.2, 0.9], [0, 0]), "all equal scores": ([0.5] * 4, [0, 1, 0, 1]),
            "nothing predicted positive": ([0.1, 0.2, 0.3], [0, 1, 0]), "one event": ([0.6], [1])}[case]
    stats = BinaryStats()
    stats.update(np.array(s, dtype=float), np.array(y))
    m = json_safe(stats.metrics())
    if case == "empty":
        assert m["n"] == 0 and all(v is None for k, v in m.items() if k not in ("n", "invalid", "positives",
                                   "negatives", "threshold", "tp", "fp", "tn", "fn", "se"))
        assert all(v is None for v in m["se"].values())
    if case in ("positives only", "negatives only", "one event"):
        assert m["roc_auc"] is None and m["se"]["roc_auc"] is None
    if case == "negatives only":
        assert m["recall"] is None and m["average_precision"] is None and m["f1"] == 0.0
    if case == "all equal scores":
        assert m["roc_auc"] == 0.5 and m["roc_auc_max_error"] == 0.5
    if case == "nothing predicted positive":
        assert m["precision"] is None and m["recall"] == 0.0 and m["f1"] == 0.0


binary_events = st.lists(st.tuples(st.floats(0, 1), st.booleans()), max_size=60)


@given(binary_events, binary_events, st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_binary_merge_equals_the_whole(a, b, threshold):
    parts = [BinaryStats(threshold=threshold) for _ in range(3)]
    for stats, events in zip(parts, (a, b, a + b)):
        if events:
            s, y = map(np.array, zip(*events))
            stats.update(s, y)
    parts[0].merge(parts[1])
    close(parts[0].metrics(), parts[2].metrics())
    merged, whole = parts[0].to_state(), parts[2].to_state()
    assert np.array_equal(merged["pos"], whole["pos"]) and np.array_equal(merged["neg"], whole["neg"])


def test_binary_state_round_trips_through_the_codec_and_goes_on_alike():
    s, y = binary_data(3000, 6)
    a = BinaryStats(threshold=0.3, bins=500, calibration_bins=10)
    a.update(s[:2000], y[:2000])
    b = BinaryStats.from_state(decode(encode(a.to_state())))
    assert (b.threshold, b.bins, b.calibration_bins) == (0.3, 500, 10)
    for stats in (a, b):
        stats.update(s[2000:], y[2000:])
    assert a.metrics() == b.metrics()


def test_binary_merge_and_restore_refuse_what_does_not_fit():
    with pytest.raises(ValueError, match="threshold"):
        BinaryStats(0.5).merge(BinaryStats(0.6))
    with pytest.raises(ValueError, match="bins"):
        BinaryStats(bins=100).merge(BinaryStats(bins=200))
    with pytest.raises(ValueError, match="regression"):
        RegressionStats.from_state(BinaryStats().to_state())
    with pytest.raises(ValueError, match="format"):
        BinaryStats.from_state(BinaryStats().to_state() | {"format": 99})
    with pytest.raises(ValueError, match="threshold must"):
        BinaryStats(threshold=2)


def test_the_binary_state_of_a_window_is_about_17_kb():
    stats = BinaryStats()
    stats.update(*binary_data(10_000, 7))
    assert 16_000 < len(encode(stats.to_state())) < 18_000


def test_standard_errors_match_the_spread_of_repeated_windows():
    rng = np.random.default_rng(8)
    values = {k: [] for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")}
    ses = {k: [] for k in values}
    for _ in range(400):
        s = rng.beta(2, 5, size=1000)
        stats = BinaryStats(threshold=0.3)
        stats.update(s, rng.uniform(size=s.size) < s)
        m = stats.metrics()
        for k in values:
            values[k].append(m[k])
            ses[k].append(m["se"][k])
    for k in values:  # the mean stated se within 15% of the observed standard deviation
        assert np.mean(ses[k]) == pytest.approx(np.std(values[k]), rel=0.15), k


# --- regression ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_regression_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.lognormal(3, 1, size=4000)
    p = y * rng.normal(1.05, 0.2, size=y.size) + rng.normal(size=y.size)
    r = RegressionStats()
    r.update(y, p)
    m = json_safe(r.metrics())
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert m["r2"] == pytest.approx(skm.r2_score(y, p))
    assert m["bias"] == pytest.approx(np.mean(p - y))
    assert m["mape_excluded"] == 0


def test_mape_leaves_zero_targets_out_and_counts_them():
    y, p = np.array([0.0, 2.0, 0.0, 4.0]), np.array([1.0, 1.0, 0.0, 5.0])
    r = RegressionStats()
    r.update(y, p)
    m = r.metrics()
    assert m["mape_excluded"] == 2
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[y != 0], p[y != 0]))


def test_r2_keeps_its_precision_on_large_targets():
    rng = np.random.default_rng(9)
    y = 1e9 + rng.normal(size=5000)
    p = y + rng.normal(scale=0.5, size=y.size)
    a, b = RegressionStats(), RegressionStats()
    a.update(y[:1000], p[:1000])
    b.update(y[1000:], p[1000:])
    a.merge(b)
    assert a.metrics()["r2"] == pytest.approx(skm.r2_score(y, p), abs=1e-6)


def test_regression_standard_errors_match_the_spread_of_repeated_windows():
    rng = np.random.default_rng(10)
    runs = []
    for _ in range(400):
        y = rng.uniform(1, 10, size=500)
        r = RegressionStats()
        r.update(y, y + rng.standard_t(5, size=y.size))
        runs.append(r.metrics())
    for k in ("mae", "rmse", "mse", "bias", "mape"):
        assert np.mean([m["se"][k] for m in runs]) == pytest.approx(np.std([m[k] for m in runs]), rel=0.15), k


@pytest.mark.parametrize("case", ["empty", "one event", "constant target", "all invalid"])
def test_degenerate_regression_windows_give_none_not_nan(case):
    y, p = {"empty": ([], []), "one event": ([2.0], [3.0]), "constant target": ([1.0] * 3, [1.0, 2.0, 0.0]),
            "all invalid": ([np.nan, np.inf], [1.0, 2.0])}[case]
    r = RegressionStats()
    r.update(y, p)
    m = json_safe(r.metrics())
    assert m["r2"] is None
    if case in ("empty", "all invalid"):
        assert m["mae"] is None and m["rmse"] is None and m["mape"] is None and m["n"] == 0
        assert m["invalid"] == (2 if case == "all invalid" else 0)
    if case == "one event":
        assert m["mae"] == 1.0 and m["se"]["mae"] is None


regression_events = st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), max_size=40)


@given(regression_events, regression_events)
def test_regression_merge_equals_the_whole(a, b):
    parts = [RegressionStats() for _ in range(3)]
    for stats, events in zip(parts, (a, b, a + b)):
        if events:
            stats.update(*map(np.array, zip(*events)))
    parts[0].merge(parts[1])
    close(parts[0].metrics(), parts[2].metrics(), rel=1e-6, abs_=1e-6)


def test_regression_state_round_trips_through_the_codec():
    r = RegressionStats()
    r.update([1.0, 2.0, 0.0], [1.5, 1.0, 0.1])
    back = RegressionStats.from_state(decode(encode(r.to_state())))
    for stats in (r, back):
        stats.update([3.0], [2.0])
    assert back.metrics() == r.metrics()


# --- multiclass ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_multiclass_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, size=3000)
    p = np.where(rng.uniform(size=y.size) < 0.6, y, rng.integers(0, 5, size=y.size))  # class 5 never predicted
    a, b = MulticlassStats(8), MulticlassStats(8)  # classes 6, 7 never seen
    a.update(y[:1000], p[:1000])
    b.update(y[1000:], p[1000:])
    a.merge(b)
    m = json_safe(a.metrics())
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert np.array_equal(a.confusion[:6, :6], skm.confusion_matrix(y, p))
    back = MulticlassStats.from_state(decode(encode(a.to_state())))
    assert back.metrics() == m


def test_multiclass_bad_indexes_are_counted_and_an_empty_window_gives_none():
    m = MulticlassStats(3)
    assert json_safe(m.metrics())["accuracy"] is None and m.metrics()["macro_f1"] is None
    m.update([0, 3, -1, 1.5, 2], [0, 0, 1, 1, 2])
    assert (m.metrics()["n"], m.metrics()["invalid"]) == (2, 3)


# --- label delay -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_delay_quantiles_are_within_one_bin_of_the_exact_ones(seed):
    rng = np.random.default_rng(seed)
    d = rng.lognormal(np.log(3600), 2.0, size=5000)  # an hour, give or take days
    a, b = DelayStats(), DelayStats()
    a.update(d[:2000])
    b.update(d[2000:])
    a.merge(b)
    m = json_safe(a.metrics())
    factor = 10 ** (1 / 20)
    for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        exact = np.quantile(d, q, method="inverted_cdf")
        assert exact / factor <= m[key] <= exact * factor, key
    assert (m["count"], m["max"], m["min"]) == (5000, d.max(), d.min())
    assert m["mean"] == pytest.approx(d.mean())


def test_delays_negative_zero_huge_and_invalid():
    d = DelayStats()
    d.update([-5.0, 0.0, 0.0, 1e10, np.nan])
    m = json_safe(d.metrics())
    assert (m["count"], m["negative"], m["invalid"], m["min"], m["max"]) == (4, 1, 1, 0.0, 1e10)
    assert 0.0 <= m["p50"] < 1e-3 and EDGES[-1] <= m["p99"] <= 1e10
    empty = json_safe(DelayStats().metrics())
    assert empty["p50"] is None and empty["max"] is None and empty["mean"] is None


def test_delay_state_round_trips_through_the_codec():
    d = DelayStats()
    assert DelayStats.from_state(decode(encode(d.to_state()))).metrics() == d.metrics()
    d.update([1.0, 60.0, 3600.0])
    assert DelayStats.from_state(decode(encode(d.to_state()))).metrics() == d.metrics()
    assert len(encode(d.to_state())) < 2500
    with pytest.raises(TypeError):
        d.merge(RegressionStats())


delays = st.lists(st.floats(-10, 1e9), max_size=40)


@given(delays, delays)
def test_delay_merge_equals_the_whole(a, b):
    parts = [DelayStats() for _ in range(3)]
    for stats, d in zip(parts, (a, b, a + b)):
        stats.update(d)
    parts[0].merge(parts[1])
    close(parts[0].metrics(), parts[2].metrics())


# --- compare ---------------------------------------------------------------------------------

def test_compare_flags_a_real_drop_and_not_noise():
    rng = np.random.default_rng(11)
    ref, same, worse = BinaryStats(), BinaryStats(), BinaryStats()
    s = rng.beta(2, 5, size=(3, 5000))
    ref.update(s[0], rng.uniform(size=5000) < s[0])
    same.update(s[1], rng.uniform(size=5000) < s[1])
    worse.update(s[2], rng.uniform(size=5000) < 0.1 + 0.6 * s[2])
    r = ref.metrics()
    for metric in ("roc_auc", "accuracy", "log_loss", "brier", "recall"):
        assert not compare(same.metrics(), r, metric)["significant"], metric
    c = compare(worse.metrics(), r, "roc_auc")
    assert c["significant"] and c["z"] < -3 and c["delta"] < 0 and c["se"] > 0
    assert compare(worse.metrics(), r, "log_loss")["significant"]  # larger log loss is worse
    assert not compare(r, worse.metrics(), "roc_auc")["significant"]  # better is not flagged
    assert compare(r, worse.metrics(), "roc_auc", side="either")["significant"]


def test_compare_with_undefined_values_is_not_significant_and_json_safe():
    empty = BinaryStats().metrics()
    full = BinaryStats()
    full.update([0.1, 0.9, 0.8], [0, 1, 1])
    c = json_safe(compare(empty, full.metrics(), "roc_auc"))
    assert c == {"metric": "roc_auc", "delta": None, "se": None, "z": None, "significant": False}
    perfect = full.metrics()  # roc_auc 1.0 with se 0 on both sides
    assert json_safe(compare(perfect, perfect, "roc_auc"))["significant"] is False
    with pytest.raises(ValueError, match="side"):
        compare(perfect, perfect, "roc_auc", side="up")
