"""The hot path's shortcuts give what the plain code they replace gave: the decoder's
dictionary-coded categories count like ``Counter`` (the same order, so the same sketch
updates), and the one-object-per-line check agrees with the two ``bytes.count`` it replaced."""

from collections import Counter

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config.settings import FeatureSpec
from driftline.detectors.window import value_counts
from driftline.streams.arrow_decode import _column, _one_object_per_line

values = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", ""]), st.text(max_size=3)),
                  min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(values, st.integers(0, 200), st.integers(0, 200))
def test_coded_categories_count_like_counter(raw, a, b):
    col = _column(pa.array(raw, pa.string()), FeatureSpec(kind="categorical"))
    assert col.codes is not None and col.values.tolist() == raw
    part = col.take(slice(min(a, b), max(a, b)))
    for c in (col, part):
        want = Counter(c.values.tolist())
        assert list(value_counts(c).items()) == list(want.items())


def test_uncoded_column_counts_with_counter():
    from driftline.types import CategoricalColumn
    col = CategoricalColumn(np.array(["x", None, "x", "y"], dtype=object))
    assert list(value_counts(col).items()) == [("x", 2), (None, 1), ("y", 1)]


def test_boolean_columns_are_coded_as_text():
    col = _column(pa.array([True, None, False, True]), FeatureSpec(kind="boolean"))
    assert col.values.tolist() == ["true", None, "false", "true"]
    assert dict(value_counts(col)) == {"true": 2, None: 1, "false": 1}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40).map(lambda b: bytes(b"{\n}a"[x % 4] for x in b)), st.integers(0, 12))
def test_one_object_per_line_as_the_two_counts(buf, n):
    assert _one_object_per_line(buf, n) == (buf.count(b"\n") == n and buf.count(b"\n{") == n)


iso = st.builds(lambda y, mo, d, h, mi, s, ms, tail: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{ms}{tail}",
                st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 60),
                st.integers(0, 61), st.sampled_from(["", ".1", ".123", ".123456", ".9999999"]),
                st.sampled_from(["Z", "Z", "Z", "+01:00", "z", ""]))
stamps = st.lists(st.one_of(iso, st.text(max_size=12), st.text(max_size=6).map(lambda t: "2" + t + "Z"),
                            st.sampled_from(["1970-01-01Z", "9999-12-31T23:59:59.999Z", "1969-12-31T23:59:59Z",
                                             "nowZ", "todayZ", "2026Z", "2026-11Z", "١٩٧٠-01-01Z"])),
                  min_size=1, max_size=20)


@settings(max_examples=500, deadline=None)
@given(stamps)
def test_arrow_timestamps_as_parse_ts(raw):
    from driftline.streams.arrow_decode import _iso_ms
    from driftline.streams.decode import parse_ts
    got = _iso_ms(pa.chunked_array([pa.array(raw, pa.string())]))
    if got is not None:
        want = parse_ts(raw)
        assert got[0].tolist() == want[0].tolist() and got[1] == want[1]


def test_arrow_timestamps_take_the_bench_shape():
    from driftline.streams.arrow_decode import _iso_ms
    got = _iso_ms(pa.chunked_array([pa.array(["2026-11-24T12:00:00.123Z", "1970-01-01T00:00:00Z"])]))
    assert got is not None and got[0].tolist() == [1795521600123, 0] and got[1] == []


def test_prediction_adwin_as_rivers_public_update():
    from river.drift import ADWIN

    from driftline.detectors.online import PredictionADWIN
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.random(20_000), 0.5 + 0.5 * rng.random(20_000), rng.random(20_000) * 0.2])
    ours, theirs, found = PredictionADWIN(), ADWIN(), 0
    for part in np.array_split(x, 7):
        ours.update(part)
    for v in x.tolist():
        theirs.update(v)
        found += theirs.drift_detected
    assert found >= 2 and ours.detections == found
    assert (ours.width, ours.mean) == (int(theirs.width), float(theirs.estimation))
    assert ours.to_state()["window"] == theirs._helper.__getstate__()
