"""Drift statistics checked against scipy on random data."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from driftline.detectors import drift
from driftline.detectors.profile import CategoricalProfile, NumericProfile
from driftline.detectors.stats import CategoricalStats, NumericStats


def _hist(seed, k=8):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 500, k).astype(float), rng.integers(1, 500, k).astype(float)


@pytest.mark.parametrize("seed", range(5))
def test_chisquare_matches_scipy_contingency(seed):
    a, b = _hist(seed)
    a[a == 0] = 1
    stat, p = drift.chisquare(a, b)
    ref = stats.chi2_contingency(np.vstack([a, b]), correction=False)
    assert stat == pytest.approx(ref.statistic, rel=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize("seed", range(5))
def test_jensenshannon_matches_scipy(seed):
    a, b = _hist(seed)
    assert drift.jensenshannon(a, b) == pytest.approx(scipy_js(a, b, base=2), abs=1e-9)


def test_psi_matches_its_formula_and_is_zero_for_equal_histograms():
    a = np.array([10.0, 20, 30, 40])
    b = np.array([40.0, 30, 20, 10])
    p, q = a / a.sum(), b / b.sum()
    assert drift.psi(a, b) == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert drift.psi(a, a) == 0.0
    assert drift.psi(a, np.array([10.0, 20, 30, 0])) > 0  # an empty bin is smoothed, not infinite


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_binned_ks_is_close_to_scipy_two_sample_ks(shift):
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=50_000), rng.normal(shift, 1, size=10_000)
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    d, p = drift.ks_binned(prof.counts, win.hist)
    exact = stats.ks_2samp(ref, cur)
    assert d == pytest.approx(exact.statistic, abs=0.01)  # 100 bins: D is read at the bin edges
    assert d <= exact.statistic + 1e-12
    assert (p < 0.05) == (exact.pvalue < 0.05)


@pytest.mark.parametrize("dist", ["shift", "scale", "exponential", "same"])
def test_binned_wasserstein_is_close_to_scipy(dist):
    rng = np.random.default_rng(3)
    ref = rng.normal(size=50_000)
    cur = {"shift": rng.normal(0.5, 1, 10_000), "scale": rng.normal(0, 2, 10_000),
           "exponential": rng.exponential(size=10_000), "same": rng.normal(size=10_000)}[dist]
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    got = drift.wasserstein_binned(prof.counts, prof.sums, win.hist, win.sums)
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), abs=0.005)


def test_run_test_names_method_threshold_and_sizes():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=20_000), rng.normal(size=5_000)
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    r = drift.run_test("ks", 0.05, prof, win)
    assert (r.method, r.threshold, r.n_ref, r.n_cur) == ("ks", 0.05, 20_000, 5_000)
    # this seed is one of the 5% of stationary samples that a p < 0.05 test flags; scipy agrees
    assert r.p_value == pytest.approx(stats.ks_2samp(ref, cur).pvalue, abs=0.01)
    assert r.drifted == (r.p_value < 0.05)


def test_unknown_method_lists_the_valid_ones():
    prof = CategoricalProfile.build(["a", "b", "a"])
    with pytest.raises(ValueError, match="expected chisquare, psi, jensenshannon"):
        drift.run_test("wasserstein", 0.1, prof, CategoricalStats(prof.index))


def test_categorical_shift_is_detected_and_stationary_is_not():
    rng = np.random.default_rng(9)
    cats = ["a", "b", "c", "d"]
    prof = CategoricalProfile.build(rng.choice(cats, 50_000, p=[.4, .3, .2, .1]).tolist())
    same, moved = CategoricalStats(prof.index), CategoricalStats(prof.index)
    same.update(dict(zip(*np.unique(rng.choice(cats, 10_000, p=[.4, .3, .2, .1]), return_counts=True))))
    moved.update(dict(zip(*np.unique(rng.choice(cats, 10_000, p=[.1, .2, .3, .4]), return_counts=True))))
    for method, threshold in (("chisquare", 0.01), ("psi", 0.2), ("jensenshannon", 0.1)):
        assert not drift.run_test(method, threshold, prof, same).drifted, method
        assert drift.run_test(method, threshold, prof, moved).drifted, method
