"""Estimated performance without labels: the isotonic fit against scikit-learn, the calibrator's
choice (isotonic only where it helps out of sample), the estimate against the realised
metrics on calibrated data and its failure under concept drift, merge, state, degenerate
windows."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression, isotonic_regression
from sklearn.metrics import brier_score_loss

from driftline.detectors.performance import BinaryStats, Calibrator, EstimatedStats, compare
from driftline.detectors.performance.isotonic import isotonic_knots, pav
from driftline.state import decode, encode


def close(a, b):
    """Two metrics dicts agree: the same keys, the same Nones and strings, numbers within float noise."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            close(a[k], b[k])
        elif a[k] is None or isinstance(a[k], str):
            assert a[k] == b[k], k
        else:
            assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9), k


HEADLINE = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "brier", "log_loss")


def calibrated(n, seed, a=2.0, b=5.0):
    """Scores and labels drawn as Bernoulli(score)."""
    rng = np.random.default_rng(seed)
    s = rng.beta(a, b, size=n)
    return s, (rng.uniform(size=n) < s).astype(int)


def overconfident(n, seed):
    """True probability q, score sigmoid(3·logit(q)): too close to 0 and 1."""
    rng = np.random.default_rng(seed)
    q = rng.beta(2, 3, size=n)
    logit = np.log(q / (1 - q))
    return 1 / (1 + np.exp(-3 * logit)), (rng.uniform(size=n) < q).astype(int)


def realised_and_estimated(s, y, calibrator, threshold=0.3):
    real, est = BinaryStats(threshold=threshold), EstimatedStats(calibrator, threshold=threshold)
    real.update(s, y)
    est.update(s)
    return real.metrics(), json.loads(json.dumps(est.metrics(), allow_nan=False))


# --- isotonic regression ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_pav_matches_sklearns_isotonic_regression(seed):
    rng = np.random.default_rng(seed)
    y, w = rng.normal(size=500) + np.linspace(0, 2, 500), rng.uniform(0.1, 3, size=500)
    assert np.allclose(pav(y, w), isotonic_regression(y, sample_weight=w), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_the_isotonic_fit_predicts_like_sklearns_isotonic_regression(seed, ties):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=3000)
    if ties:
        x = np.round(x, 2)
    y = (rng.uniform(size=x.size) < x ** 2).astype(float)
    kx, ky = isotonic_knots(x, y)
    sk = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.concatenate([rng.uniform(-0.2, 1.2, size=2000), x])
    assert np.allclose(np.interp(grid, kx, ky), sk.predict(grid), atol=1e-12)
    assert np.all(np.diff(ky) >= 0) and kx.size <= np.unique(x).size


@given(st.lists(st.tuples(st.integers(0, 1000), st.floats(-10, 10)), min_size=1, max_size=50))
def test_the_isotonic_fit_is_monotone_and_matches_sklearn_on_any_input(points):
    # scores on a grid: scikit-learn also pools x values closer than 1e-15, we pool only equal ones
    x, y = map(np.array, zip(*points))
    x = x / 1000
    kx, ky = isotonic_knots(x, y)
    assert np.all(np.diff(kx) > 0) and np.all(np.diff(ky) >= -1e-12)
    expected = IsotonicRegression(out_of_bounds="clip").fit(x, y).predict(x)
    assert np.allclose(np.interp(x, kx, ky), expected, atol=1e-9)


# --- the calibrator --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_isotonic_calibration_improves_brier_on_miscalibrated_data(seed):
    s, y = overconfident(10_000, seed)
    cal = Calibrator.fit(s, y)
    assert cal.method == "isotonic" and cal.evidence["improvement_z"] > 2
    fresh_s, fresh_y = overconfident(10_000, seed + 100)  # out of sample
    assert brier_score_loss(fresh_y, cal(fresh_s)) < brier_score_loss(fresh_y, fresh_s) - 0.005


@pytest.mark.parametrize("seed", range(10))
def test_isotonic_calibration_is_refused_on_calibrated_data(seed):
    s, y = calibrated(10_000, seed)
    cal = Calibrator.fit(s, y)
    assert cal.method == "identity"
    assert cal.evidence["brier_isotonic"] > cal.evidence["brier_identity"] - 0.001
    assert np.array_equal(cal(s), s)


@pytest.mark.parametrize("labels", [[1] * 50, [0] * 50, [0, 1] * 2])
def test_one_class_or_too_few_events_keep_the_identity(labels):
    cal = Calibrator.fit(np.linspace(0, 1, len(labels)), np.array(labels))
    assert cal.method == "identity" and "reason" in cal.evidence


def test_the_calibrator_round_trips_through_the_codec_and_bad_arguments_are_named():
    s, y = overconfident(5000, 1)
    cal = Calibrator.fit(s, y)
    back = Calibrator.from_state(decode(encode(cal.to_state())))
    assert back.method == "isotonic" and back.fingerprint() == cal.fingerprint()
    assert back.evidence == cal.evidence and np.array_equal(back(s), cal(s))
    assert len(encode(cal.to_state())) < 20_000
    with pytest.raises(ValueError, match="method must be"):
        Calibrator("platt")
    with pytest.raises(ValueError, match="knots"):
        Calibrator("isotonic")
    with pytest.raises(ValueError, match="differ in length"):
        Calibrator.fit([0.1, 0.2], [1])


# --- the estimate ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(2.0, 5.0), (0.5, 0.5)])
def test_on_calibrated_data_the_estimate_is_within_its_band_of_the_realised_metrics(seed, shape):
    s, y = calibrated(20_000, seed, *shape)
    real, est = realised_and_estimated(s, y, Calibrator())
    for k in HEADLINE:
        assert abs(est[k] - real[k]) < 4 * est["se"][k], k
    # the stated tolerance of the estimated AUC at 20,000 events (se about 0.004)
    assert abs(est["roc_auc"] - real["roc_auc"]) < 0.015
    assert est["base_rate"] == pytest.approx(real["base_rate"], abs=4 * est["se"]["base_rate"])
    assert est["predicted_positive_rate"] == real["predicted_positive_rate"]


def test_the_estimate_s_standard_errors_match_the_spread_of_the_realised_metrics():
    rng = np.random.default_rng(0)
    gaps, ses = {k: [] for k in HEADLINE}, {k: [] for k in HEADLINE}
    for _ in range(300):
        s = rng.beta(2, 5, size=2000)
        real, est = realised_and_estimated(s, (rng.uniform(size=s.size) < s).astype(int), Calibrator())
        for k in HEADLINE:
            gaps[k].append(real[k] - est[k])
            ses[k].append(est["se"][k])
    for k in HEADLINE:
        assert abs(np.mean(gaps[k])) < 2 * np.mean(ses[k]) / np.sqrt(300), k  # no bias
        # the se is the spread of the realised value around the estimate; Hanley-McNeil for
        # the AUC is a little wide here (it also counts the spread of the scores)
        assert np.mean(ses[k]) == pytest.approx(np.std(gaps[k]), rel=0.3 if k == "roc_auc" else 0.15), k


@pytest.mark.parametrize("seed", range(3))
def test_a_calibrator_fitted_on_the_reference_corrects_the_estimate_of_a_miscalibrated_model(seed):
    cal = Calibrator.fit(*overconfident(20_000, seed))
    s, y = overconfident(20_000, seed + 50)
    real, est = realised_and_estimated(s, y, cal, threshold=0.5)
    _, raw = realised_and_estimated(s, y, Calibrator(), threshold=0.5)
    for k in ("accuracy", "recall", "f1", "roc_auc"):
        assert abs(est[k] - real[k]) < 4 * est["se"][k] + 0.005, k
    assert abs(raw["accuracy"] - real["accuracy"]) > 0.05  # the uncalibrated estimate is far off
    assert est["calibration"] == "isotonic"


@pytest.mark.parametrize("seed", range(3))
def test_under_concept_drift_the_estimate_is_visibly_wrong(seed):
    """The same scores, but labels from a changed relation: the estimate stays where the
    calibration says, the realised performance falls, and compare() sees the gap."""
    rng = np.random.default_rng(seed)
    s = rng.beta(2, 5, size=20_000)
    y = (rng.uniform(size=s.size) < 0.15 + 0.3 * (1 - s)).astype(int)  # higher score, fewer positives
    real, est = realised_and_estimated(s, y, Calibrator())
    assert est["roc_auc"] > 0.7 and real["roc_auc"] < 0.5
    assert est["roc_auc"] - real["roc_auc"] > 0.2 and abs(est["roc_auc"] - real["roc_auc"]) > 10 * est["se"]["roc_auc"]
    assert abs(est["accuracy"] - real["accuracy"]) > 10 * est["se"]["accuracy"]
    assert compare(real, est, "roc_auc")["significant"]


@pytest.mark.parametrize("case", ["empty", "all equal scores", "all zero", "all one", "all invalid"])
def test_degenerate_windows_give_none_not_nan(case):
    s = {"empty": [], "all equal scores": [0.4] * 5, "all zero": [0.0] * 5, "all one": [1.0] * 5,
         "all invalid": [np.nan, 2.0, -1.0]}[case]
    est = EstimatedStats(Calibrator())
    est.update(np.array(s, dtype=float))
    m = est.metrics()
    json.dumps(m, allow_nan=False)
    if case in ("empty", "all invalid"):
        assert m["n"] == 0 and m["accuracy"] is None and m["roc_auc"] is None and m["f1"] is None
        assert all(v is None for v in m["se"].values())
        assert m["invalid"] == (3 if case == "all invalid" else 0)
    if case == "all equal scores":
        assert m["roc_auc"] == pytest.approx(0.5) and m["precision"] is None and m["accuracy"] == pytest.approx(0.6)
    if case == "all zero":
        assert m["roc_auc"] is None and m["recall"] is None and m["accuracy"] == 1.0
    if case == "all one":
        assert m["roc_auc"] is None and m["specificity"] is None and m["precision"] == 1.0


scores = st.lists(st.floats(0, 1), max_size=60)


@given(scores, scores, st.sampled_from([0.0, 0.3, 1.0]), st.booleans())
def test_estimated_merge_equals_the_whole(a, b, threshold, isotonic):
    cal = Calibrator("isotonic", [0.1, 0.6, 0.9], [0.0, 0.5, 0.95]) if isotonic else Calibrator()
    parts = [EstimatedStats(cal, threshold=threshold) for _ in range(3)]
    for stats, s in zip(parts, (a, b, a + b)):
        stats.update(np.array(s))
    parts[0].merge(parts[1])
    close(parts[0].metrics(), parts[2].metrics())


def test_estimated_state_round_trips_and_refuses_another_calibrator():
    cal = Calibrator.fit(*overconfident(5000, 2))
    s, _ = overconfident(3000, 3)
    a = EstimatedStats(cal, threshold=0.4, bins=200)
    a.update(s[:2000])
    blob = encode(a.to_state())
    b = EstimatedStats.from_state(decode(blob), cal)
    for stats in (a, b):
        stats.update(s[2000:])
    assert a.metrics() == b.metrics()
    with pytest.raises(ValueError, match="another calibrator"):
        EstimatedStats.from_state(decode(blob), Calibrator())
    with pytest.raises(ValueError, match="calibration"):
        a.merge(EstimatedStats(Calibrator(), threshold=0.4, bins=200))
    full = EstimatedStats(cal)
    full.update(s)
    assert 16_000 < len(encode(full.to_state())) < 18_000  # two float masses on 1060 bins
