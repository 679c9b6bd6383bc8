"""Prediction-id hashes (driftline/labels/hashing.py): stored in the join buffer's state and used for
``labels.sample``, so they must stay BLAKE2b-64 of the UTF-8 id, whichever path computes them."""

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from driftline.labels.hashing import hash_ids


def _blake(value) -> int:
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


@given(hs.lists(hs.one_of(hs.text(), hs.binary(), hs.text(alphabet=hs.characters(codec=None))), max_size=50))
def test_every_id_hashes_to_its_blake2b_64_whatever_the_mix_of_types(ids):
    """All-``str`` batches take the fast path, mixed ones or lone surrogates the general one."""
    got = hash_ids(ids).tolist()
    assert got == [_blake(v) for v in ids]
    strs = [v for v in ids if isinstance(v, str)]
    assert hash_ids(np.array(strs, dtype=object)).tolist() == [_blake(v) for v in strs]
    assert hash_ids(iter(strs)).tolist() == [_blake(v) for v in strs]


def test_the_hash_is_stable_across_releases_and_a_lone_surrogate_is_hashed_as_before():
    # what main's hash_ids (before the fast path) gave for "7f1c2a": a stored value, so a change is a state-format change
    assert hash_ids(["7f1c2a"]).tolist() == [7155019458803342709]
    assert hash_ids(["ok", "\ud800x"]).tolist() == [_blake("ok"), _blake("\ud800x")]


def test_an_id_of_another_type_is_refused_by_name():
    with pytest.raises(TypeError, match="not int"):
        hash_ids(["a", 3])
