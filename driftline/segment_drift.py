"""Drift per segment: for each value of a model's ``segments`` features, a
:class:`~driftline.monitor.ModelMonitor` of its own over the events with that value — its
own reference, windows, drift and quality tests, sequence tests and rules — whose windows
are summarised as version ``<version>[<feature>=<value>]`` (docs/segments.md).

A value gets its segment the first time it is seen (:class:`~driftline.labels.segments.SegmentCodes`:
at most ``max_segments`` per feature, later ones in ``(other)``, a missing value in
``(missing)``). A segment's reference is its rows of the model's reference file when the file
has at least :data:`MIN_ROWS` of them, else its own first events (``reference.segment_first_n``,
default ``reference.first_n``, or :data:`FIRST_N` when the model's reference is a file); it is stored as the reference of
``<model>[<feature>=<value>]``. Each segment is compared with its own reference: a segment
whose inputs differ from the whole model's by nature (another country's incomes) raises
nothing, one whose inputs moved does.

A segment's time window closes when its version's watermark passes its end, not only its own
events' (a quiet segment does not hold its windows open). Its state is kept under the model's
keys ``segments/codes`` (the code tables) and ``segments/<feature index>/<code>/<key>`` (the
segment monitor's own keys: ``""`` while it collects its reference, else the version, which
the segment's windows are tagged with).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from driftline import state as st
from driftline.config.settings import ModelSpec, ReferenceSpec
from driftline.detectors.profile import ReferenceProfile, label
from driftline.labels.segments import SegmentCodes
from driftline.monitor import ModelMonitor, profile_fits, reference_for
from driftline.streams.windows import Window
from driftline.summary import segment_version
from driftline.types import Columns

log = logging.getLogger(__name__)

SEG = "segments/"
CODES = SEG + "codes"
#: a segment needs this many rows in the reference file to be profiled from it
MIN_ROWS = 100
#: events a segment collects for its own reference when the model's comes from a file
FIRST_N = 1000


def tag(version: str, feature: str, value: str) -> str:
    """A segment's windows' version: ``v3[country=DE]``."""
    return segment_version(version, f"{feature}={value}")


def reference_name(model: str, feature: str, value: str) -> str:
    """The name a segment's reference is stored under: ``fraud[country=DE]``."""
    return segment_version(model, f"{feature}={value}")


def is_segment_key(key: str) -> bool:
    return key.startswith(SEG)


def _groups(codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(code, positions)`` for every distinct code, positions in arrival order."""
    order = np.argsort(codes, kind="stable")
    uniq, first = np.unique(codes[order], return_index=True)
    return zip(uniq.tolist(), np.split(order, first[1:]))


class SegmentDrift:
    """The segment monitors of one model.

    ``stored``: the stored references by name; ``rows``: the model's reference file's columns
    (called once, when a segment first needs its rows), ``None`` when it has no file."""

    def __init__(self, spec: ModelSpec, stored: Mapping[str, dict] | None = None,
                 rows: Callable[[], dict] | None = None):
        self.spec, self.features, ref = spec, tuple(spec.segments), spec.reference
        self.child_spec = spec.model_copy(update={
            "labels": None, "rules": [], "segments": [],
            "reference": ReferenceSpec(first_n=ref.segment_first_n or ref.first_n or FIRST_N, bins=ref.bins)})
        self.table = SegmentCodes(self.features, spec.max_segments)
        self.children: dict[tuple[int, int], ModelMonitor] = {}
        self.deleted: set[str] = set()  # keys of segments dropped on restore
        self._stored = dict(stored or {})
        self._rows, self._table_rows = rows, None
        self.built: list[ReferenceProfile] = []  # references built from the file since the last call

    # -- the segments --------------------------------------------------------------------

    def name(self, fi: int, code: int) -> tuple[str, str]:
        feature = self.features[fi]
        return feature, self.table.value(feature, code)

    def prefix(self, fi: int, code: int) -> str:
        return f"{SEG}{fi}/{code}/"

    def profile(self, fi: int, code: int) -> ReferenceProfile | None:
        """The segment's stored reference, or one built from its rows of the reference file."""
        feature, value = self.name(fi, code)
        ref = reference_name(self.spec.name, feature, value)
        if ref in self._stored:
            profile = ReferenceProfile.from_dict(self._stored[ref])
            if profile_fits(profile, self.spec):
                return profile
            log.warning("model %s: segment %s=%s: its features changed since its reference was built; "
                        "building a new one", self.spec.name, feature, value)
        if code < 0 or self._rows is None:
            return None
        return self._from_file(feature, value, ref)

    def _from_file(self, feature: str, value: str, ref: str) -> ReferenceProfile | None:
        if self._table_rows is None:
            self._table_rows = self._rows()
        cols = self._table_rows
        keep = np.fromiter((label(v) == value for v in cols[feature]), dtype=bool, count=len(cols[feature]))
        if int(keep.sum()) < MIN_ROWS:
            log.info("model %s: segment %s=%s has %d row(s) in the reference file (< %d); its reference is its "
                     "first %d events", self.spec.name, feature, value, int(keep.sum()), MIN_ROWS,
                     self.child_spec.reference.first_n)
            return None
        idx = np.flatnonzero(keep)
        rows = {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in cols.items()}
        profile = reference_for(self.child_spec, rows, f"{self.spec.reference.path} ({feature}={value})")
        profile.model = ref
        self.built.append(profile)
        return profile

    def child(self, fi: int, code: int, make: Callable[[ModelSpec, ReferenceProfile | None], ModelMonitor]
              = ModelMonitor) -> ModelMonitor | None:
        key = (fi, code)
        if key not in self.children:
            self.children[key] = make(self.child_spec, self.profile(fi, code))
        return self.children[key]

    def items(self) -> Iterator[tuple[str, ModelMonitor, Callable[[str], str]]]:
        """``(key prefix, segment monitor, its key's stored name)`` of every segment: a segment's
        tagged version is stored as its version (the prefix names the segment)."""
        for (fi, code), m in sorted(self.children.items()):
            cut = len(tag("", *self.name(fi, code)))
            yield self.prefix(fi, code), m, lambda key, cut=cut: key[:-cut] if key else key

    # -- events --------------------------------------------------------------------------

    def ingest(self, version: str, cols: Columns, now: float, watermark: int | None
               ) -> tuple[list[tuple[ModelMonitor, Window]], list[ReferenceProfile]]:
        """Each segment's events of ``cols`` into its monitor; return the closed windows (with their
        monitor) and the references built, and close what the version's ``watermark`` passed."""
        closed, built = [], []
        if cols.n:
            codes = self.table.codes({f: cols.features[f].values for f in self.features})
            for fi, feature in enumerate(self.features):
                for code, sel in _groups(codes[feature]):
                    m = self.child(fi, code)
                    if m is None:  # scale-out: a segment without a reference is not watched
                        continue
                    windows, new = m.ingest(tag(version, *self.name(fi, code)), cols.take(sel), now)
                    if new is not None:
                        new.model = reference_name(self.spec.name, *self.name(fi, code))
                        built.append(new)
                    closed += [(m, w) for w in windows]
        if watermark is not None:
            for (fi, code), m in self.children.items():
                closed += [(m, w) for w in m.advance(tag(version, *self.name(fi, code)), watermark)]
        built += self.built
        self.built = []
        return closed, built

    def closing(self, close: Callable[[ModelMonitor], list[Window]]) -> list[tuple[ModelMonitor, Window]]:
        return [(m, w) for _, m, _ in self.items() for w in close(m)]

    def segment_of(self, m: ModelMonitor, w: Window) -> dict:
        """``{"feature", "value", "version"}`` of a segment monitor's window (for its summary)."""
        (fi, code), = [k for k, c in self.children.items() if c is m]
        feature, value = self.name(fi, code)
        suffix = tag("", feature, value)
        return {"feature": feature, "value": value, "version": w.version[:-len(suffix)]}

    # -- state ---------------------------------------------------------------------------

    def load(self, states: Mapping[str, dict], restore: Callable[[ModelSpec, ReferenceProfile | None, dict],
                                                                 ModelMonitor]) -> None:
        """Rebuild from the model's stored ``segments/…`` keys; ``restore(spec, profile, states)``
        makes a segment's monitor from its own keys (the pipeline's, which checks they still fit)."""
        if not states:
            return
        what = f"model {self.spec.name}: segments"
        if CODES not in states:
            raise st.StateError(f"{what}: segment states without their code table")
        was = list(st.check_format(states[CODES], what)["names"])
        self.table = SegmentCodes.from_state(states[CODES], self.features, self.spec.max_segments, what, common=True)
        if was != list(self.features):
            gone = [f for f in was if f not in self.features]
            log.warning("model %s: segments were %s, now %s; %s", self.spec.name, was, list(self.features),
                        f"the open windows of {', '.join(gone)}'s segments are discarded" if gone
                        else "the segments kept their windows")
        own: dict[tuple[int, int], dict[str, dict]] = {}
        moved: set[tuple[int, int]] = set()
        for key, state in states.items():
            if key == CODES:
                continue
            try:
                fi, code, rest = key[len(SEG):].split("/", 2)
                fi, code = int(fi), int(code)
                feature = was[fi]
            except (ValueError, IndexError):
                raise st.StateError(f"{what}: unreadable state key {key!r}") from None
            if feature not in self.features:
                self.deleted.add(key)
                continue
            new = self.features.index(feature)
            if code >= len(self.table.names[feature]):
                raise st.StateError(f"{what}: state key {key!r} for a segment that the code table does not have")
            if new != fi:  # the feature moved in the list: its keys move with it
                self.deleted.add(key)
                moved.add((new, code))
            own.setdefault((new, code), {})[tag(rest, *self.name(new, code)) if rest else ""] = state
        for (fi, code), keyed in sorted(own.items()):
            m = self.children[(fi, code)] = restore(self.child_spec, self.profile(fi, code), keyed)
            if (fi, code) in moved:
                m.dirty.update(m.keys())
        self.table.stored()
        if was != list(self.features):
            self.table.dirty = True
