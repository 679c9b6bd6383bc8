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
