"""Drift statistics checked against scipy and independent formulas on random data."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from driftline.detectors import distances, drift
from driftline.detectors.drift import Plan
from driftline.detectors.profile import CategoricalProfile, NumericProfile
from driftline.detectors.stats import CategoricalStats, NumericStats


def _hist(seed, k=8):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 500, k).astype(float), rng.integers(1, 500, k).astype(float)


@pytest.mark.parametrize("seed", range(5))
def test_chisquare_matches_scipy_contingency(seed):
    a, b = _hist(seed)
    a[a == 0] = 1
    stat, p, dof = distances.chisquare(a, b)
    ref = stats.chi2_contingency(np.vstack([a, b]), correction=False)
    assert stat == pytest.approx(ref.statistic, rel=1e-9) and dof == ref.dof
    assert p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize("seed", range(5))
def test_jensenshannon_matches_scipy(seed):
    a, b = _hist(seed)
    assert distances.jensenshannon(a, b) == pytest.approx(scipy_js(a, b, base=2), abs=1e-9)


def test_psi_matches_its_formula_and_is_zero_for_equal_histograms():
    a = np.array([10.0, 20, 30, 40])
    b = np.array([40.0, 30, 20, 10])
    p, q = a / a.sum(), b / b.sum()
    assert distances.psi(a, b) == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert distances.psi(a, a) == 0.0
    assert distances.psi(a, np.array([10.0, 20, 30, 0])) > 0  # an empty bin is smoothed, not infinite


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_binned_ks_is_close_to_scipy_two_sample_ks(shift):
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=50_000), rng.normal(shift, 1, size=10_000)
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    d = distances.ks_binned(prof.counts, win.hist)
    exact = stats.ks_2samp(ref, cur)
    assert d == pytest.approx(exact.statistic, abs=0.01)  # 100 bins: D is read at the bin edges
    assert d <= exact.statistic + 1e-12
    r = drift.run_test(Plan("ks"), prof, win)
    assert r.p_value == pytest.approx(exact.pvalue, abs=0.02)


@pytest.mark.parametrize("dist", ["shift", "scale", "exponential", "same"])
def test_binned_wasserstein_is_close_to_scipy(dist):
    rng = np.random.default_rng(3)
    ref = rng.normal(size=50_000)
    cur = {"shift": rng.normal(0.5, 1, 10_000), "scale": rng.normal(0, 2, 10_000),
           "exponential": rng.exponential(size=10_000), "same": rng.normal(size=10_000)}[dist]
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    got = distances.wasserstein_binned(prof.counts, prof.sums, win.hist, win.sums)
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), abs=0.005)


def test_run_test_names_method_threshold_and_sizes():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=20_000), rng.normal(size=5_000)
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    r = drift.run_test(Plan("ks", threshold=0.05, reason="configured"), prof, win)
    assert (r.method, r.threshold, r.n_ref, r.n_cur, r.mode) == ("ks", 0.05, 20_000, 5_000, "fixed")
    assert "fixed threshold" in r.reason
    # this seed is one of the 5% of stationary samples that a p < 0.05 test flags; scipy agrees
    assert r.p_value == pytest.approx(stats.ks_2samp(ref, cur).pvalue, abs=0.01)
    assert r.drifted == (r.p_value < 0.05)


def test_unknown_method_lists_the_valid_ones():
    prof = CategoricalProfile.build(["a", "b", "a"])
    with pytest.raises(ValueError, match="expected psi, jensenshannon, hellinger, chisquare, tvd, linf, z, fisher"):
        drift.run_test(Plan("wasserstein", threshold=0.1), prof, CategoricalStats(prof.index))


def test_categorical_shift_is_detected_and_stationary_is_not():
    rng = np.random.default_rng(9)
    cats = ["a", "b", "c", "d"]
    prof = CategoricalProfile.build(rng.choice(cats, 50_000, p=[.4, .3, .2, .1]).tolist())
    same, moved = CategoricalStats(prof.index), CategoricalStats(prof.index)
    same.update(dict(zip(*np.unique(rng.choice(cats, 10_000, p=[.4, .3, .2, .1]), return_counts=True))))
    moved.update(dict(zip(*np.unique(rng.choice(cats, 10_000, p=[.1, .2, .3, .4]), return_counts=True))))
    for method, threshold in (("chisquare", 0.01), ("psi", 0.2), ("jensenshannon", 0.1), ("hellinger", 0.1),
                              ("tvd", 0.1), ("linf", 0.1), ("z", 0.01), ("fisher", 0.01)):
        assert not drift.run_test(Plan(method, threshold), prof, same).drifted, method
        assert drift.run_test(Plan(method, threshold), prof, moved).drifted, method
        assert not drift.run_test(Plan(method, alpha=1e-4), prof, same).drifted, method
        assert drift.run_test(Plan(method, alpha=1e-4), prof, moved).drifted or method in ("tvd", "linf"), method


@pytest.mark.parametrize("seed", range(3))
def test_hellinger_tvd_linf_match_their_definitions(seed):
    a, b = _hist(seed)
    p, q = a / a.sum(), b / b.sum()
    assert distances.hellinger(a, b) == pytest.approx(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2))
    assert distances.tvd(a, b) == pytest.approx(0.5 * np.abs(p - q).sum())
    assert distances.linf(a, b) == pytest.approx(np.abs(p - q).max())


def _binary(seed, shift=0.0):
    rng = np.random.default_rng(seed)
    prof = CategoricalProfile.build(np.where(rng.random(20_000) < 0.3, "yes", "no").tolist())
    win = CategoricalStats(prof.index)
    x = np.where(rng.random(2_000) < 0.3 + shift, "yes", "no")
    win.update(dict(zip(*np.unique(x, return_counts=True))))
    return prof, win


@pytest.mark.parametrize("seed", range(3))
def test_z_squared_is_the_2x2_chi_square_and_fisher_is_scipys(seed):
    prof, win = _binary(seed, 0.02)
    z = drift.run_test(Plan("z", threshold=0.05), prof, win)
    chi = stats.chi2_contingency(np.vstack([prof.counts[:2], win.hist[:2]]), correction=False)
    assert z.statistic ** 2 == pytest.approx(chi.statistic, rel=1e-9)
    assert z.p_value == pytest.approx(chi.pvalue, rel=1e-6)
    f = drift.run_test(Plan("fisher", threshold=0.05), prof, win)
    assert f.p_value == pytest.approx(stats.fisher_exact([prof.counts[:2], win.hist[:2]]).pvalue, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_meanvar_parts_are_two_sample_z_tests(seed):
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=20_000), rng.normal(0.03, 1.0, size=5_000)
    prof = NumericProfile.build(ref)
    win = NumericStats(prof.edges)
    win.update(cur)
    r = drift.run_test(Plan("meanvar", threshold=0.05), prof, win)
    z = (cur.mean() - ref.mean()) / (ref.std() * np.sqrt(1 / ref.size + 1 / cur.size))
    assert r.effect["z_mean"] == pytest.approx(z, rel=1e-9)
    # the spread part: a 2x2 chi-square on the shares outside the reference's 10th and 90th
    # percentiles (the edges of its first and last ten quantile bins), whose z squared it is
    lo, hi = prof.edges[9], prof.edges[89]
    table = [[int(((x <= lo) | (x > hi)).sum()), int(((x > lo) & (x <= hi)).sum())] for x in (ref, cur)]
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    assert r.effect["z_spread"] ** 2 == pytest.approx(chi2, rel=1e-9)


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "hellinger", "chisquare"])
def test_chi2_null_p_values_are_about_uniform(method):
    rng = np.random.default_rng(4)
    p = np.array([.3, .25, .2, .15, .1])
    prof = CategoricalProfile(list("abcde"), np.append(rng.multinomial(50_000, p), 0).astype(np.int64), 50_000)
    ps = []
    for _ in range(2000):
        win = CategoricalStats(prof.index)
        win.update(dict(zip("abcde", rng.multinomial(2_000, p))))
        ps.append(drift.run_test(Plan(method, alpha=0.01), prof, win).p_value)
    ps = np.asarray(ps)
    assert 0.005 <= np.mean(ps < 0.01) <= 0.02 and 0.04 <= np.mean(ps < 0.05) <= 0.065


def test_calibrated_threshold_is_the_statistic_alpha_maps_to():
    rng = np.random.default_rng(2)
    prof = NumericProfile.build(rng.normal(size=50_000))
    for m in (500, 5_000):
        win = NumericStats(prof.edges)
        win.update(rng.normal(size=m))
        for method in ("ks", "psi", "jensenshannon", "hellinger"):
            r = drift.run_test(Plan(method, alpha=1e-3), prof, win)
            assert r.mode == "calibrated" and (r.statistic >= r.threshold) == (r.p_value <= 1e-3), method
    small = drift.run_test(Plan("ks", alpha=1e-3), prof, _numeric_window(prof, rng, 500))
    large = drift.run_test(Plan("ks", alpha=1e-3), prof, _numeric_window(prof, rng, 5000))
    assert small.threshold > 2.5 * large.threshold  # a threshold for each window's own count


def _numeric_window(prof, rng, m):
    win = NumericStats(prof.edges)
    win.update(rng.normal(size=m))
    return win
