"""One source partition in scale-out mode: its open partial windows and its watermark.

Each assigned partition keeps, per model, a :class:`PartitionMonitor` (the open windows of
that partition's events only). A partial window closes by the partition's own watermark,
the newest event time read from it (any model's) minus the model's ``allowed_lateness``.
A partition that gave nothing for ``kafka.partition_idle`` seconds is *quiet*: its open
windows then close by the other partitions' watermarks (``close_to``: the newest of them,
as one process's windows close by the events of any partition), and
once it holds no open window it is marked idle, so it holds no merge back. Closed
partials go to the store with the partition's offsets, state and mark, in one transaction
(``driftline/scale/pipeline.py``); the merger (``driftline/scale/merge.py``) merges them.

Its state is stored per key ``(model, version, "topic:partition")``; a model with ``labels``
keeps its label join and performance accumulators there too (``driftline/scale/labels.py``),
one with ``segments`` its segments' open windows (``driftline/scale/segments.py``: a segment's
windows close with its version's, and its partials are stored as its tagged version's).

Its mark also carries ``read_to``, the offset at which its consumer reported the end, when that
is the offset read up to (the merger trusts a partition read to its end only with it).

For the models with a ``no_data`` rule its mark also carries ``seen``: per model version the
newest event time read from the partition and the wall-clock time of its last arrival, and
when its owner took it (``claimed``); the merger computes each version's silence from every
partition's (``driftline/scale/silence.py``). A new owner keeps the versions its predecessor
saw, so a version does not vanish from the silence with a rebalance.
"""

from __future__ import annotations

from driftline import state as st
from driftline.monitor import ModelMonitor
from driftline.pipeline import reference_key, window_key
from driftline.scale.labels import PartitionLabels, label_keys
from driftline.scale.segments import PartitionSegments
from driftline.segment_drift import CODES, is_segment_key
from driftline.streams.windows import Window


def source_of(tp: tuple[str, int]) -> str:
    """The ``source`` column of a partition's state rows."""
    return f"{tp[0]}:{tp[1]}"


class PartitionMonitor(ModelMonitor):
    """A model on one partition: open windows only; its sequence tests run in the merger."""

    def __init__(self, spec, profile=None):
        super().__init__(spec, profile)
        self._gaps = False  # a partition's gaps are not the stream's: the merger finds them between windows

    def _sequence(self, version: str) -> dict:
        return {}


class Partition:
    """The open partial windows of every model on one partition, its watermark and its mark."""

    def __init__(self, tp: tuple[str, int], specs, profiles: dict, owner: str, now: float,
                 catalogues: dict | None = None):
        self.tp, self.owner = tp, owner
        self.monitors = {s.name: PartitionMonitor(s, profiles.get(s.name)) for s in specs}
        self.segments = {name: PartitionSegments(c.drift.spec, c, PartitionMonitor)
                         for name, c in (catalogues or {}).items()}
        self.labels = PartitionLabels(specs, profiles)
        self.watermark: int | None = None
        self.models: set[str] = set()
        self.idle = False
        self.last_record = now
        self.claim = True  # the first checkpoint after the assignment takes ownership of its mark
        self.offset: int | None = None  # the next offset to read (None: nothing read or stored yet)
        self.end: int | None = None  # the offset at which its consumer last reported the partition's end
        self.closed: list[tuple[ModelMonitor, Window]] = []  # closed since the last checkpoint
        self.dirty = True
        self.no_data = {s.name for s in specs if any(r.no_data is not None for r in s.rules)}
        #: (model, version) → [newest event time (ms), wall-clock seconds of its last arrival], models with no_data
        self.seen: dict[tuple[str, str], list] = {}
        self.claimed = now  # a silence counts from when this owner took the partition at the earliest

    # -- events ---------------------------------------------------------------------

    def ingest(self, decoded, now: float) -> None:
        """Add one decoded sub-batch of this partition, then close what its watermark passed."""
        for (model, version), n in decoded.invalid.items():
            self.monitors[model].add_invalid(version, n)
        for (model, version), cols in decoded.groups.items():
            monitor = self.monitors[model]
            closed, _ = monitor.ingest(version, cols, now)
            self.labels.predictions(model, version, monitor)
            self._closed([(monitor, w) for w in closed])
            if model in self.segments:
                closed, _ = self.segments[model].ingest(version, cols, now, monitor.watermark(version))
                self._closed(closed)
            self.models.add(model)
            if cols.n:
                newest = int(cols.ts.max())
                self.watermark = newest if self.watermark is None else max(self.watermark, newest)
                if model in self.no_data:
                    before = self.seen.get((model, version))
                    self.seen[(model, version)] = [newest if before is None else max(before[0], newest), now]
        if decoded.groups or decoded.invalid or decoded.bad or decoded.labels:
            self.last_record, self.idle, self.dirty = now, False, True
        if self.watermark is not None:
            self._close(lambda m: m._closing(lambda ws: ws.advance(self.watermark)))

    def join(self, decoded) -> None:
        """The label events of one decoded sub-batch of this partition (after :meth:`ingest`)."""
        self.labels.join(decoded)

    def _every(self) -> list[ModelMonitor]:
        """Every monitor of the partition: each model's, then each segment's."""
        return [*self.monitors.values(), *(m for seg in self.segments.values() for _, m, _ in seg.items())]

    def _close(self, close) -> None:
        self._closed([(m, w) for m in self._every() for w in close(m)])

    def _closed(self, closed: list[tuple[ModelMonitor, Window]]) -> None:
        self.closed += closed
        self.labels.closed([w for m, w in closed if m is self.monitors[w.model]])  # a version's, not a segment's

    def reached_end(self, offset: int | None) -> None:
        """The consumer fetched at ``offset`` and found nothing: a partition that never gave an
        event holds nothing open."""
        was, self.end = self.at_end, offset
        if not was and self.at_end:
            self.dirty = True  # its mark says so (``read_to``): the merger counts it read to its end only then

    @property
    def at_end(self) -> bool:
        """Whether the consumer reported the end at the offset read up to, and nothing came since.

        The consumer's own end-of-partition report, not the broker's high watermark: a broker
        may under-report that (Tansu answers the first offset of its last record batch, plus one),
        and then a partition read halfway through a batch would look read to its end."""
        return self.end is not None and (self.offset is None or self.offset == self.end)

    @property
    def holds_open(self) -> bool:
        """Whether some window of the partition is open."""
        return any(ws.open for m in self._every() for ws in m.versions.values())

    @property
    def holds_nothing(self) -> bool:
        """Quiet with no open window, or at its end without ever having given an event (stored as
        the mark's ``idle``: the merge does not wait for it)."""
        return (self.idle and not self.holds_open) or (self.at_end and self.watermark is None)

    def tick(self, now: float, idle_after: float) -> None:
        """Close what ``window.idle_close`` closes; mark the partition quiet after ``idle_after``."""
        self._close(lambda m: m.close_idle(now))
        if not self.idle and now - self.last_record >= idle_after:
            self.idle, self.dirty = True, True

    def close_to(self, watermark: int) -> None:
        """A quiet partition's windows that the other partitions' ``watermark`` (minus each
        model's lateness) has passed: its events for them would be late in one process too."""
        self._close(lambda m: m._closing(lambda ws: ws.advance(watermark)))

    # -- checkpoint -----------------------------------------------------------------

    def take(self, unit, secret: bytes | None) -> None:
        """Put the closed partials, the changed states and the mark into ``unit``."""
        topic, partition = self.tp
        closed = bool(self.closed)
        for monitor, w in self.closed:
            state = {"format": st.FORMAT, "window": w.to_state() | {"closed_by": w.closed_by},
                     "spec": window_key(monitor.spec), "reference": reference_key(monitor.profile)}
            unit.partials.append({"model": w.model, "version": w.version, "start_ms": w.start_ms,
                                  "end_ms": w.end_ms, "topic": topic, "partition": partition,
                                  "closed_by": w.closed_by, "count": w.count,
                                  "data": st.encode(state, secret)})
        self.closed = []
        source = source_of(self.tp)
        for name, monitor in self.monitors.items():
            _states(unit, name, "", monitor, str, source, secret)
        for name, seg in self.segments.items():
            for key in sorted(seg.deleted):
                unit.states[(name, key, source)] = None
            seg.deleted = set()
            for prefix, monitor, stored in seg.items():
                _states(unit, name, prefix, monitor, stored, source, secret)
            if seg.children and (codes := seg.codes_state(secret)) is not None:
                unit.states[(name, CODES, source)] = codes
        self.labels.take(unit, self.tp, source, secret)
        if self.dirty or closed:
            unit.marks[self.tp] = {"watermark": self.watermark, "models": sorted(self.models), "idle": self.holds_nothing,
                                   "owner": self.owner, "claim": self.claim, "seen": self._seen(),
                                   "read_to": self.end if self.at_end else None}
        self.dirty = False

    def _seen(self) -> dict:
        versions: dict[str, dict[str, list]] = {}
        for (model, version), pair in sorted(self.seen.items()):
            versions.setdefault(model, {})[version] = pair
        return {"claimed": self.claimed, "versions": versions}

    def checkpointed(self) -> None:
        self.claim = False

    def load(self, states: dict[tuple[str, str], dict], mark: dict | None) -> None:
        """Restore from the store: each model version's open windows, and the partition's mark."""
        from driftline.pipeline import _load
        labels = label_keys(states)
        self.labels.load({k: states[k] for k in labels})
        for name, seg in self.segments.items():
            seg.load({k: v for (m, k), v in states.items() if m == name and is_segment_key(k)}, _restore)
        for (model, key), state in states.items():
            if (model, key) in labels or is_segment_key(key):
                continue
            monitor = self.monitors.get(model)
            if monitor is None or monitor.profile is None:
                continue
            if state.get("window") != window_key(monitor.spec) or state.get("reference") != reference_key(
                    monitor.profile):
                monitor.dirty.add(key)  # configuration or reference changed: replaced at the next checkpoint
                continue
            _load(monitor, key, state)
        if mark is not None:
            self.watermark, self.models = mark["watermark"], set(mark["models"] or ())
            seen = mark.get("seen") or {}
            self.seen = {(model, version): list(pair) for model, versions in (seen.get("versions") or {}).items()
                         if model in self.no_data for version, pair in versions.items()}
            if mark["owner"] == self.owner and seen.get("claimed") is not None:
                self.claimed = seen["claimed"]  # reloaded by its own owner (a store outage): not a new claim


def _states(unit, name: str, prefix: str, monitor: ModelMonitor, stored, source: str, secret: bytes | None) -> None:
    """The changed keys of one monitor (a segment's under its ``prefix``, named ``stored(key)``)."""
    for key in sorted(monitor.dirty):
        state = monitor.to_state(key)
        if state is not None:
            state |= {"window": window_key(monitor.spec), "reference": reference_key(monitor.profile)}
        unit.states[(name, prefix + stored(key), source)] = None if state is None else st.encode(state, secret)
    monitor.clean()


def _restore(spec, profile, states: dict[str, dict]) -> PartitionMonitor:
    """A segment's monitor with its stored open windows, those binned on its configuration and reference."""
    from driftline.pipeline import _load
    m = PartitionMonitor(spec, profile)
    for key, state in states.items():
        if profile is not None and state.get("window") == window_key(spec) \
                and state.get("reference") == reference_key(profile):
            _load(m, key, state)
        else:
            m.dirty.add(key)  # replaced at the next checkpoint
    return m
