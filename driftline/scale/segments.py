"""Scale-out: drift per segment (``segments``), the same on every process.

One process gives a value its segment when it first sees it (at most ``max_segments`` per
feature, ``driftline/labels/segments.py``); several processes see the values in different
orders, so in scale-out **a feature's segments are fixed at start-up from the model's
reference**: its values there (the profile's top ``top_k`` categories), the most frequent
first (ties by value), at most ``max_segments``; any other value is ``(other)``
(:func:`fixed_table`). Every process builds the same table, so the codes agree, but nothing
stored across processes depends on them: a segment's partial window is stored as a window of
its tagged version (``v1[colour=red]``), which names the value (:meth:`SegmentCatalogue.split`).

A segment's reference is its stored reference (``<model>[<feature>=<value>]``) or its rows of
the model's reference file (at least ``MIN_ROWS``), as in one process; one that would be
collected from the stream (too few rows, ``(other)``, ``(missing)``, no file) cannot be, each
process seeing some partitions: that segment is not watched (logged once per process; its
events still count in their version's windows). :class:`SegmentCatalogue` holds the table and
the references of one model for every partition of a process and its merger;
:class:`PartitionSegments` keeps one partition's open segment windows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from driftline import state as st
from driftline.labels.segments import MISSING, OTHER, SegmentCodes
from driftline.pipeline import reference_key
from driftline.segment_drift import CODES, SegmentDrift, tag

log = logging.getLogger(__name__)


def fixed_table(features, max_segments: int, profile) -> SegmentCodes:
    """The frozen code table of ``features``: each one's values in the reference ``profile``,
    the most frequent first (ties by value), at most ``max_segments`` (see the module docstring)."""
    table = SegmentCodes(tuple(features), max_segments)
    for f in table.features:
        prof = profile.features.get(f) if profile is not None else None
        cats = list(getattr(prof, "categories", None) or [])
        counts = [int(c) for c in prof.counts[:len(cats)]] if cats else []
        ranked = [v for _, v in sorted(zip((-c for c in counts), cats))]
        table.extend(f, ranked)
    table.frozen, table.dirty = True, False
    return table


class SegmentCatalogue:
    """One model's segments in scale-out: the fixed table and each segment's reference (or ``None``)."""

    def __init__(self, spec, profile, stored: dict, rows: Callable[[], dict] | None):
        self.drift = SegmentDrift(spec, stored, rows)
        self.drift.table = fixed_table(spec.segments, spec.max_segments, profile)
        self.key = reference_key(profile)
        self.monitors: dict[tuple[int, int], object] = {}  # the merger's segment monitors
        self.built: list = []  # references built from the file, not yet stored
        self._profiles: dict[tuple[int, int], object] = {}
        self._suffixes = {tag("", f, self.drift.table.value(f, c)): (fi, c)
                          for fi, f in enumerate(self.drift.features)
                          for c in [*range(len(self.drift.table.names[f])), OTHER, MISSING]}

    @property
    def table(self) -> SegmentCodes:
        return self.drift.table

    def profile(self, fi: int, code: int):
        """The segment's reference: stored, or from its rows of the reference file; ``None``: not watched."""
        key = (fi, code)
        if key not in self._profiles:
            p = self._profiles[key] = self.drift.profile(fi, code)
            self.built += self.drift.built
            self.drift.built = []
            if p is None:
                feature, value = self.drift.name(fi, code)
                log.warning("model %s: segment %s=%s has no reference of its own (stored, or %d rows of the "
                            "reference file) and kafka.scale_out cannot collect one from the stream: it is not "
                            "watched", self.drift.spec.name, feature, value, self.drift.child_spec.reference.first_n)
        return self._profiles[key]

    def split(self, version: str) -> tuple[str, int, int] | None:
        """``v1[colour=red]`` → ``("v1", feature index, code)``; ``None``: not a segment's version."""
        if not version.endswith("]"):
            return None
        for suffix, (fi, code) in self._suffixes.items():
            if version.endswith(suffix) and len(version) > len(suffix):
                return version[:-len(suffix)], fi, code
        return None


class PartitionSegments(SegmentDrift):
    """One partition's segment monitors of a model (``make``: the partition's monitor class)."""

    def __init__(self, spec, catalogue: SegmentCatalogue, make):
        super().__init__(spec)
        self.table, self.catalogue, self._make = catalogue.table, catalogue, make
        self.codes_stored = False  # the table is in this partition's state

    def profile(self, fi: int, code: int):
        return self.catalogue.profile(fi, code)

    def child(self, fi: int, code: int, make=None):
        """The segment's monitor; ``None`` for a segment without a reference (not watched)."""
        if (fi, code) not in self.children and self.profile(fi, code) is None:
            return None
        return super().child(fi, code, self._make)

    def load(self, states: dict, restore) -> None:
        """The partition's stored segment windows, unless they were coded on another table (the
        reference changed since): then they are discarded."""
        if not states:
            return
        stored = states.get(CODES)
        if stored is None or dict(stored.get("names") or {}) != self.table.to_state()["names"]:
            log.warning("model %s: the segments changed with its reference; a partition's open segment "
                        "windows are discarded", self.spec.name)
            self.deleted |= set(states)
            return
        super().load(states, restore)
        self.table, self.codes_stored = self.catalogue.table, True

    def codes_state(self, secret: bytes | None) -> bytes | None:
        """The table, once per partition (its state keys' codes point into it)."""
        if self.codes_stored:
            return None
        self.codes_stored = True
        return st.encode(self.table.to_state(), secret)

