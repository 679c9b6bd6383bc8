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
from driftline.errors import DriftlineError
from driftline.labels.segments import MISSING, OTHER, SegmentCodes
from driftline.pipeline import reference_key
from driftline.realized import _Window
from driftline.segment_drift import CODES, MIN_ROWS, SegmentDrift, tag
from driftline.segmented import SegmentPerformance, _Segment
from driftline.types import iso

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
                            "watched", self.drift.spec.name, feature, value, MIN_ROWS)
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



class SegmentPerformanceMerge:
    """``labels.segments`` in the merger: every partition's share of a segment's window (rows of its
    tagged version in ``perf_partials``) → the segment's line, revised when a share asked for it."""

    def __init__(self, spec, secret: bytes | None):
        self.spec, self.labels, self.secret = spec, spec.labels, secret
        self.duration = int(spec.window.duration * 1000)

    def split(self, version: str) -> tuple[str, str, str] | None:
        """``v1[colour=red]`` → ``("v1", "colour", "red")`` for a ``labels.segments`` feature; else ``None``."""
        if not version.endswith("]"):
            return None
        at = [(i, f) for f in self.labels.segments if (i := version.find(f"[{f}=")) > 0]
        if not at:
            return None
        i, f = min(at)  # an event's version cannot hold ``[feature=``: the first one is the segment's
        return version[:i], f, version[i + len(f) + 2:-1]

    def run(self, m, realized, state: dict, rows: list[dict], merged: dict, gone, unit, route,
            now: float) -> tuple[list, list, bool]:
        """Revise the due segments; return the rows ``(id, stamp)`` revised and deleted, and whether
        ``state`` (``revisions``) changed. ``gone(version, window)``: whether its rows are deleted
        (its whole window's are, or it has none and its drift window is merged)."""
        groups: dict[tuple[str, int], list[dict]] = {}
        for row in rows:
            groups.setdefault((row["version"], row["window_key"]), []).append(row)
        lines = _Lines(self.spec.name, self.labels, realized)
        revised, deleted, changed = [], [], False
        for (tagged, win), parts in sorted(groups.items()):
            (base, feature, value), name = self.split(tagged), f"{tagged}/{win}"
            if gone(base, win):
                deleted += [(r["id"], r["stamp"]) for r in parts]
                changed = state["revisions"].pop(name, None) is not None or changed
                continue
            dirty = [r for r in parts if r["dirty"]]
            if dirty or ((base, win) in merged and name in state["revisions"]):
                line = self._line(m, lines, realized, parts, base, win, feature, value, merged)
                if line is not None:
                    line["revision"] = state["revisions"][name] = state["revisions"].get(name, 0) + 1
                    unit.performance.append(line)
                    unit.add(route(line, now))
                    changed = True
            revised += [(r["id"], r["stamp"]) for r in dirty]
        return revised, deleted, changed

    def _line(self, m, lines, realized, parts, base: str, win: int, feature: str, value: str, merged: dict):
        """The segment's line from its shares (an unreadable share is left out, loudly)."""
        data, count, acc = m.performance_data([r["id"] for r in parts]), 0, None
        for row in parts:
            where = f"model {self.spec.name}, {row['version']}, performance of window {win} from " \
                    f"{row['topic']}[{row['partition']}]"
            try:
                share = st.decode(data[row["id"]], where, self.secret)
                s = None if share["segment"] is None else _Segment.from_state(share["segment"], self.labels,
                                                                               realized.calibrator)
            except (DriftlineError, ValueError, KeyError) as exc:
                log.error("%s is unreadable, left out: %s", where, exc)
                continue
            count += int(share["count"])
            if s is not None and acc is None:
                acc = s
            elif s is not None:
                acc.merge(s)
        if acc is None:
            return None
        w = _Window(self.labels.task, self.labels.threshold, base, win)
        w.start, w.end = win, win + self.duration
        w.seq = merged[(base, win)] if (base, win) in merged else m.seqs(base, [iso(win)]).get(iso(win))
        return lines.of(w, feature, value, count, acc)


class _Lines(SegmentPerformance):
    """``SegmentPerformance._line`` (one process's segment line) of one merged segment at a time:
    its value and prediction count are given, not looked up in a code table (``table`` is itself)."""

    def __init__(self, model: str, spec, realized):
        super().__init__(model, spec, False)
        realized.share_reference(self)
        self.table = self
        self._value, self._n = "", 0

    def of(self, w, feature: str, value: str, count: int, s) -> dict:
        self._value, self._n = value, count
        return self._line(w, (0, 0, self.features.index(feature), 0), s)

    def value(self, feature: str, code: int) -> str:
        return self._value

    def _count(self, key) -> int:
        return self._n
