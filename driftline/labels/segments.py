"""Code tables of segment features: a categorical value → a small int code, per feature.

A value gets a code the first time it is seen, until the feature has ``max_segments``
codes; every later new value, an invalid value (``types.INVALID``: not a string) and a
value spelled like one of the reserved names below and a value longer than :data:`MAX_VALUE`
characters is :data:`OTHER`, named ``(other)``.
A missing value (``None``) is :data:`MISSING`, its own segment ``(missing)``. A code is
never reassigned: the table is part of the state (codes of pending predictions point
into it) and only grows.

First seen, not the reference's top values: the labels part holds no reference (it may
be built from the stream later, or rebuilt), and codes must not move under predictions
that wait for their labels; first seen depends only on the order of the input, so a
replay from a checkpoint assigns the codes the live run did. Scale-out cannot agree on a first
seen across processes: there the table is filled from the reference at start-up and
``frozen`` (``driftline/scale/segments.py``).

Codes are computed per batch with pyarrow's hash kernels (``unique``, ``index_in``): no
Python loop over events, only over the batch's new distinct values.

>>> t = SegmentCodes(("country",), max_segments=2)
>>> t.codes({"country": np.array(["DE", None, "FR", "DE", "CZ"], dtype=object)})["country"].tolist()
[0, -2, 1, 0, -1]
>>> [t.value("country", c) for c in (0, 1, OTHER, MISSING)]
['DE', 'FR', '(other)', '(missing)']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftline import state as st
from driftline.types import INVALID

OTHER, MISSING = -1, -2
#: a longer value is never a segment of its own (it names versions, alerts, store rows): ``(other)``
MAX_VALUE = 64
OTHER_NAME, MISSING_NAME = "(other)", "(missing)"
_RESERVED = frozenset({OTHER_NAME, MISSING_NAME, INVALID})


class SegmentCodes:
    """One code table per segment feature; ``dirty`` once it grew since :meth:`stored`."""

    def __init__(self, features: tuple[str, ...], max_segments: int):
        if max_segments < 1:
            raise ValueError(f"max_segments: a positive integer, not {max_segments!r}")
        self.features, self.max_segments = tuple(features), max_segments
        self.names: dict[str, list[str]] = {f: [] for f in self.features}
        self._arrays: dict[str, pa.Array] = {f: pa.array([], pa.string()) for f in self.features}
        self.dirty = False
        self.frozen = False  # scale-out: the table is fixed at start-up, the same on every process

    def codes(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each feature's values (an object array of str, ``None`` or ``INVALID``) → int16 codes."""
        return {f: self._encode(f, values[f]) for f in self.features}

    def _encode(self, feature: str, values: np.ndarray) -> np.ndarray:
        arr = pa.array(values, type=pa.string(), from_pandas=False)
        self._grow(feature, arr)
        idx = pc.index_in(arr, value_set=self._arrays[feature])
        codes = idx.fill_null(OTHER).to_numpy(zero_copy_only=False).astype(np.int16)
        if arr.null_count:
            codes[arr.is_null().to_numpy(zero_copy_only=False)] = MISSING
        return codes

    def _grow(self, feature: str, arr: pa.Array) -> None:
        if not self.frozen and len(self.names[feature]) < self.max_segments:
            self.extend(feature, pc.unique(arr.drop_null()).to_pylist())

    def extend(self, feature: str, values: list[str]) -> None:
        """Give the new ``values`` (in their order) codes, while the feature has room."""
        names = self.names[feature]
        known = set(names)
        new = [v for v in dict.fromkeys(values) if v not in known and v not in _RESERVED and len(v) <= MAX_VALUE]
        if new and len(names) < self.max_segments:
            names.extend(new[:self.max_segments - len(names)])
            self._arrays[feature] = pa.array(names, pa.string())
            self.dirty = True

    def value(self, feature: str, code: int) -> str:
        """What a code stands for: the value, ``(other)`` or ``(missing)``."""
        return MISSING_NAME if code == MISSING else OTHER_NAME if code == OTHER else self.names[feature][code]

    def stored(self) -> None:
        self.dirty = False

    def to_state(self) -> dict:
        return {"format": st.FORMAT, "names": {f: list(v) for f, v in self.names.items()}}

    @classmethod
    def from_state(cls, state: dict, features: tuple[str, ...], max_segments: int, what: str,
                   common: bool = False) -> SegmentCodes:
        """The stored tables; ``features`` must be the stored ones (codes of pending predictions point
        into them), unless ``common``: then the tables of the stored features still in ``features``
        are kept, and the others start empty."""
        st.check_format(state, what)
        if common:
            out = cls(features, max_segments)
            for f in features:
                if f in state["names"]:
                    out.names[f] = [str(v) for v in state["names"][f]]
                    out._arrays[f] = pa.array(out.names[f], pa.string())
            return out
        if list(state["names"]) != list(features):
            raise st.StateError(f"{what}: labels.segments was {list(state['names'])} when the pending predictions "
                                f"were stored, now {list(features)}; it cannot change on restore")
        out = cls(features, max_segments)
        for f, names in state["names"].items():
            out.names[f] = [str(v) for v in names]
            out._arrays[f] = pa.array(out.names[f], pa.string())
        return out
