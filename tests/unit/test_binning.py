"""detectors/binning.py: the table lookup gives np.searchsorted(edges, x, side="left") exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from driftline.detectors.binning import MAX_STEPS, Bins, bins_for
from driftline.detectors.profile import NumericProfile

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@pytest.mark.parametrize("draw", [
    lambda r, n: r.normal(size=n),
    lambda r, n: r.lognormal(3, 2, size=n),
    lambda r, n: r.exponential(7, size=n),
    lambda r, n: r.integers(0, 5, size=n).astype(float),  # few distinct values: few edges
    lambda r, n: 1e12 + r.normal(size=n),  # a large offset: cells narrower than most floats' spacing there
])
def test_reference_edges_bin_like_searchsorted(draw):
    rng = np.random.default_rng(3)
    edges = NumericProfile.build(draw(rng, 50_000)).edges
    x = np.concatenate([draw(rng, 10_000), edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
                        [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e308, -1e308]])
    x = rng.permutation(x)
    assert Bins(edges).steps <= MAX_STEPS  # the table, not the fallback, is what is checked
    got = Bins(edges).index(x)
    assert got.dtype.kind == "i"
    assert (got == np.searchsorted(edges, x, side="left")).all()


def test_crowded_edges_fall_back_to_searchsorted():
    edges = np.concatenate([np.linspace(0, 1e-9, 300), [1.0, 1e6]])
    b = Bins(edges)
    assert b.steps > MAX_STEPS
    x = np.random.default_rng(0).uniform(-1, 2, size=1000)
    assert (b.index(x) == np.searchsorted(edges, x, side="left")).all()


def test_shared_per_edges():
    edges = np.array([0.0, 1.0, 2.0])
    assert bins_for(edges) is bins_for(edges.copy())


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e300, 1e300, width=64), unique=True),
       arrays(np.float64, st.integers(64, 300), elements=floats))
def test_any_edges_any_values(edges, x):
    edges = np.sort(edges)
    assert (Bins(edges).index(x) == np.searchsorted(edges, x, side="left")).all()
