"""The join's sorting shortcuts (driftline/labels/index.py, join.py): numpy's default sort when no key
repeats, its stable sort when some do, so a key given twice in one insert still finds the later value
and the first of an id in a batch is still the first."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as hs

from driftline.labels.index import Index
from driftline.labels.join import _first

_keys = hs.lists(hs.integers(0, 40), max_size=60)


@given(hs.lists(_keys, min_size=1, max_size=8))
def test_the_index_finds_the_newest_value_of_each_key_with_repeats_inside_one_insert(batches):
    ix, ref, v = Index(), {}, 0
    for keys in batches:
        vals = np.arange(v, v + len(keys))
        v += len(keys)
        ix.insert(np.array(keys, dtype=np.uint64), vals)
        ref.update(zip(keys, vals.tolist()))  # the later of two equal keys wins, as in a dict
    q = np.arange(45, dtype=np.uint64)
    assert ix.find(q).tolist() == [ref.get(k, -1) for k in range(45)]
    flat = [k for b in batches for k in b]
    rebuilt = Index()
    rebuilt.rebuild(np.array(flat, dtype=np.uint64), np.arange(len(flat)))
    assert rebuilt.find(q).tolist() == [ref.get(k, -1) for k in range(45)]


@given(_keys)
def test_first_marks_the_first_of_each_value_in_batch_order(keys):
    h = np.array(keys, dtype=np.uint64)
    seen, want = set(), []
    for k in keys:
        want.append(k not in seen)
        seen.add(k)
    assert _first(h).tolist() == want
