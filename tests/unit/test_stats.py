"""Window statistics: merge equals whole, state round-trip (no pickle), agreement with numpy."""

from collections import Counter

import numpy as np
import pytest

from driftline.detectors.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from driftline.detectors.stats import CategoricalStats, NumericStats
from driftline.state import decode, encode


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return NumericProfile.build(rng.normal(size=20_000)), rng.lognormal(size=7_000)


def test_numeric_moments_and_quantiles_agree_with_numpy(data):
    prof, x = data
    s = NumericStats(prof.edges)
    s.update(x, missing=4, invalid=2)
    assert s.count == x.size and (s.missing, s.invalid) == (4, 2)
    assert s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std())
    assert (s.min, s.max) == (x.min(), x.max())
    for q in (0.05, 0.5, 0.95):
        # a KLL sketch: the rank of the answer is within ~1.3% of q
        assert np.mean(x <= s.quantile(q)) == pytest.approx(q, abs=0.02)


def test_numeric_merge_of_halves_equals_whole(data):
    prof, x = data
    whole, a, b = NumericStats(prof.edges), NumericStats(prof.edges), NumericStats(prof.edges)
    whole.update(x, 3, 1)
    a.update(x[:2500], 1, 1)
    b.update(x[2500:], 2, 0)
    a.merge(b)
    got, want = a.get(), whole.get()
    for key in ("count", "missing", "invalid", "mean", "std", "min", "max"):
        assert got[key] == pytest.approx(want[key]), key
    assert (a.hist == whole.hist).all() and np.allclose(a.sums, whole.sums)
    for q, v in got["quantiles"].items():  # merged sketches answer within the sketch's error
        assert np.mean(x <= v) == pytest.approx(float(q), abs=0.02)


def test_numeric_state_round_trip(data):
    prof, x = data
    s = NumericStats(prof.edges)
    s.update(x[:500])
    t = NumericStats.from_state(decode(encode(s.to_state())), prof.edges)
    assert t.get() == s.get() and (t.hist == s.hist).all()
    s.update(x[500:])
    t.update(x[500:])  # and it goes on like the original: the same except for the sketch's
    got, want = t.get(), s.get()  # own coin flips when it compacts (within its rank error)
    assert {k: v for k, v in got.items() if k != "quantiles"} == {k: v for k, v in want.items() if k != "quantiles"}
    for q, v in got["quantiles"].items():
        assert np.mean(x <= v) == pytest.approx(float(q), abs=0.02)


def test_categorical_counts_other_bucket_merge_and_pickle():
    prof = CategoricalProfile.build(["a"] * 50 + ["b"] * 30 + ["c"] * 5, top_k=2)
    assert prof.categories == ["a", "b"] and prof.counts.tolist() == [50, 30, 5]
    whole, a, b = (CategoricalStats(prof.index) for _ in range(3))
    values = Counter({"a": 10, "b": 4, "z": 3, "c": 1})
    whole.update(values, missing=2)
    a.update(Counter({"a": 6, "z": 3}), missing=2)
    b.update(Counter({"a": 4, "b": 4, "c": 1}))
    a.merge(b)
    assert a.get() == whole.get()
    assert whole.get()["other"] == 4 and whole.get()["other_top"] == {"z": 3, "c": 1}
    back = CategoricalStats.from_state(decode(encode(whole.to_state())), prof.index)
    assert back.get() == whole.get()
    back.update(Counter({"z": 2}))
    whole.update(Counter({"z": 2}))
    assert back.get() == whole.get()


def test_reference_profile_round_trips_through_json_shape():
    rng = np.random.default_rng(2)
    ref = ReferenceProfile("m", {"x": NumericProfile.build(rng.normal(size=1000), bins=20),
                                 "c": CategoricalProfile.build(["u", "v", "u"])}, 1000, "test")
    back = ReferenceProfile.from_dict(ref.to_dict())
    assert back.to_dict() == ref.to_dict()


def test_categorical_other_values_are_a_bounded_frequent_items_sketch():
    prof = CategoricalProfile.build(["a"] * 50 + ["b"] * 30, top_k=2)
    rng = np.random.default_rng(1)
    heavy = Counter({"new_1": 4000, "new_2": 2500})
    noise = Counter({f"rare_{i}": int(k) for i, k in enumerate(rng.integers(1, 5, 5000))})
    halves = [CategoricalStats(prof.index) for _ in range(2)]
    halves[0].update(heavy)
    halves[1].update(noise)
    halves[0].merge(halves[1])
    top = halves[0].other_top(2)
    total = heavy.total() + noise.total()
    eps = halves[0].unseen.epsilon * total  # the sketch's stated bound on over-counting
    assert list(top) == ["new_1", "new_2"]
    assert all(heavy[k] <= v <= heavy[k] + eps for k, v in top.items())
    assert halves[0].unseen.num_active_items <= 128  # bounded, whatever the number of values
    restored = CategoricalStats.from_state(decode(encode(halves[0].to_state())), prof.index)
    assert restored.other_top(2) == top
