"""State as data: what a stateful part must remember, encoded without pickle.

Every stateful part has ``to_state()`` returning plain values — numbers, strings,
lists, dicts, ``bytes`` (a sketch's own ``serialize()``) and numpy arrays of a
numeric or boolean dtype — and a ``from_state()`` that rebuilds it. :func:`encode`
turns such a value into bytes with MessagePack (arrays as an extension type:
dtype, shape, raw bytes); :func:`decode` reads them back. Decoding runs no code
from the data: an array of ``object`` dtype cannot be encoded, and an unknown
extension type is refused.

A stored state carries a format version (:data:`FORMAT`); :func:`check_format`
refuses one this release cannot read, saying what to do.

>>> import numpy as np
>>> blob = encode({"format": FORMAT, "hist": np.arange(3), "sketch": b"\\x01", "n": 2})
>>> back = decode(blob)
>>> back["hist"].tolist(), back["sketch"], back["n"]
([0, 1, 2], b'\\x01', 2)
"""

from __future__ import annotations

import msgpack
import numpy as np

from driftline.errors import DriftlineError

#: the format of the state this release writes; it reads this one only
FORMAT = 1
_ARRAY = 1


class StateError(DriftlineError):
    """Stored state that this release cannot read."""


def _default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot encode an array of dtype {obj.dtype} as state (only numbers and booleans)")
        arr = np.ascontiguousarray(obj)
        return msgpack.ExtType(_ARRAY, msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as state")


def _ext(code: int, data: bytes):
    if code != _ARRAY:
        raise StateError(f"unknown extension type {code} in stored state")
    dtype, shape, raw = msgpack.unpackb(data)
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise StateError(f"stored state holds an array of dtype {dtype}; only numbers and booleans are read")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def encode(state) -> bytes:
    return msgpack.packb(state, default=_default, use_bin_type=True)


def decode(data: bytes):
    try:
        return msgpack.unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StateError(f"stored state cannot be read: {exc}") from exc


def check_format(state: dict, what: str) -> dict:
    """``state`` if this release reads its format, else a :class:`StateError` saying what to do."""
    found = state.get("format") if isinstance(state, dict) else None
    if found != FORMAT:
        raise StateError(
            f"{what}: stored state has format {found!r}, this driftline reads format {FORMAT}. "
            "Run the release that wrote it, or discard the open windows with "
            "`driftline db reset-state -c FILE` (closed windows, alerts and offsets are kept)")
    return state
