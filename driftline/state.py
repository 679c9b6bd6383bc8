"""State as data: what a stateful part must remember, encoded without pickle.

Every stateful part has ``to_state()`` returning plain values — numbers, strings,
lists, dicts, ``bytes`` (a sketch's own ``serialize()``) and numpy arrays of a
numeric or boolean dtype — and a ``from_state()`` that rebuilds it. :func:`encode`
turns such a value into bytes with MessagePack (arrays as an extension type:
dtype, shape, raw bytes); :func:`decode` reads them back. Decoding runs no code
from the data: an array of ``object`` dtype cannot be encoded, and an unknown
extension type is refused.

A stored blob is framed: a magic, an HMAC-SHA256 of the payload, the payload. The
HMAC is keyed with ``store.state_secret`` when it is set, so a row written by someone
without the secret (a shared database) is refused before any byte of it reaches a
parser — the sketches' and ADWIN's own deserialisers are native code that trusts its
input; without a secret it is a checksum, which catches corruption, not tampering.
Whatever still goes wrong while reading a state becomes a :class:`StateError`.

A stored state carries a format version (:data:`FORMAT`); :func:`check_format`
refuses one this release cannot read, saying what to do.

>>> import numpy as np
>>> blob = encode({"format": FORMAT, "hist": np.arange(3), "sketch": b"\\x01", "n": 2})
>>> back = decode(blob)
>>> back["hist"].tolist(), back["sketch"], back["n"]
([0, 1, 2], b'\\x01', 2)
"""

from __future__ import annotations

import hashlib
import hmac

import msgpack
import numpy as np

from driftline.errors import DriftlineError

#: the format of the state this release writes; it reads this one only
FORMAT = 1
_ARRAY = 1
_MAGIC = b"DLS1"
_UNKEYED = b"driftline state checksum"
#: a stored state larger than this is refused unread (an open window of 100 features is ~0.4 MB)
MAX_BYTES = 256 * 1024 * 1024


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


def _mac(payload: bytes, secret: bytes | None) -> bytes:
    return hmac.new(secret or _UNKEYED, payload, hashlib.sha256).digest()


def encode(state, secret: bytes | None = None) -> bytes:
    payload = msgpack.packb(state, default=_default, use_bin_type=True)
    return _MAGIC + _mac(payload, secret) + payload


def unreadable(what: str, why: str) -> StateError:
    return StateError(f"{what}: stored state cannot be read ({why}); discard it with "
                      "`driftline db reset-state -c FILE` (closed windows, alerts and offsets are kept)")


def decode(data: bytes, what: str = "stored state", secret: bytes | None = None):
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < len(_MAGIC) + 32:
        raise unreadable(what, "too short")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise unreadable(what, f"{len(data)} bytes, more than {MAX_BYTES}")
    if not data.startswith(_MAGIC):
        raise unreadable(what, "not a driftline state")
    mac, payload = data[len(_MAGIC):len(_MAGIC) + 32], data[len(_MAGIC) + 32:]
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        raise unreadable(what, "its signature does not match: written without this deployment's "
                               "store.state_secret, or corrupted")
    try:
        return msgpack.unpackb(payload, ext_hook=_ext, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure on stored bytes means the same thing
        raise unreadable(what, f"{type(exc).__name__}: {exc}") from exc


def check_format(state: dict, what: str) -> dict:
    """``state`` if this release reads its format, else a :class:`StateError` saying what to do."""
    found = state.get("format") if isinstance(state, dict) else None
    if found != FORMAT:
        raise StateError(
            f"{what}: stored state has format {found!r}, this driftline reads format {FORMAT}. "
            "Run the release that wrote it, or discard the open windows with "
            "`driftline db reset-state -c FILE` (closed windows, alerts and offsets are kept)")
    return state
