"""Prediction ids as 64-bit hashes, and deterministic sampling by that hash.

An id (a ``str``, encoded as UTF-8, or ``bytes``) is hashed with BLAKE2b with an
8-byte digest, read as a little-endian ``uint64``. The hash is standard, so any
other producer or language computes the same value; ``str`` and its UTF-8
``bytes`` hash alike. The buffer keeps only this hash, never the id, so two
distinct ids with one hash cannot be told apart: see ``docs/labels.md`` for the
rate (about ``n / 2**64`` per lookup against ``n`` held ids).

>>> hash_ids(["7f1c2a", b"7f1c2a"]).tolist() == [hash_ids(["7f1c2a"])[0]] * 2
True
>>> sampled_in(hash_ids(["a", "b", "c"]), 1.0).tolist()
[True, True, True]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import partial

import numpy as np

_FULL = 2**64
_BLAKE8 = partial(hashlib.blake2b, digest_size=8)


def _digest(value) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    elif not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"a prediction id is a str or bytes, not {type(value).__name__}")
    return hashlib.blake2b(value, digest_size=8).digest()


def hash_ids(ids: Iterable | np.ndarray) -> np.ndarray:
    """The ``uint64`` hash of every id; a ``uint64`` array is taken as hashes already."""
    if isinstance(ids, np.ndarray):
        if ids.dtype == np.uint64:
            return ids
        ids = ids.tolist()
    elif not isinstance(ids, list):
        ids = list(ids)
    return np.frombuffer(_digests(ids), dtype="<u8").astype(np.uint64)


def _digests(ids: list) -> bytes:
    """Every id's digest, joined: the ids that are all ``str`` (the decoder's) without a Python
    call of ours per id (``str.encode`` is UTF-8; a lone surrogate takes the general path)."""
    if set(map(type, ids)) <= {str}:
        try:
            return b"".join(map(hashlib.blake2b.digest, map(_BLAKE8, map(str.encode, ids))))
        except UnicodeEncodeError:
            pass
    return b"".join(map(_digest, ids))


def sampled_in(hashes: np.ndarray, sample: float) -> np.ndarray:
    """Which hashes fall below ``sample`` of the hash range (all of them when ``sample`` is 1)."""
    if sample >= 1.0:
        return np.ones(hashes.shape, dtype=bool)
    return hashes < np.uint64(int(sample * _FULL))
