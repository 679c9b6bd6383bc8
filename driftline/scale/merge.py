"""The merge: partial windows of every partition → one window summary, exactly once.

A window of a model version is ready when every partition of the event topics has passed
its end: the partition's watermark minus the model's lateness is at or past it (so its
partial, if it had events, is stored), or the partition is idle (its windows are closed),
or it has events but never of this model (keyed traffic: a model on one partition waits
for no other). A partition with no mark yet (never read by anyone) holds every window, and
so does an idle (or empty) one whose broker holds records past its stored offset (asked of
the broker: its owner has not read them yet).

Per model, in a transaction holding the model's lock (``store/partials.py``), the ready
windows of each version are merged in order of their start (``WindowStats.merge``: every
statistic is mergeable), summarised and tested by the model's :class:`MergeMonitor`
(``ModelMonitor.summarise``), routed with the alert state as committed (the router is
restored from the store under the lock), and written with the merge state (the next
``seq``, the end of the last merged window, the sequence tests' state) while their
partials are deleted. A segment's windows (``segments``) are merged as their tagged version's
(``v1[colour=red]``, ``driftline/scale/segments.py``) by the segment's own monitor; the merged
windows of a pass are routed in the order of their ends, a segment's before its version's of
the same end (as one process routes them: a segment's alert joins the incident). A partial that
arrives for a window already merged (its partition
was idle or carried no such events when the window was merged) is late: logged, counted
and deleted. A model with ``no_data`` rules is also looked at in a pass whose silence would
change one of its alerts; its rules are evaluated under the lock from every partition's mark
and the merged windows (``driftline/scale/silence.py``).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from driftline import state as st
from driftline.errors import StoreError, StoreUnavailable
from driftline.monitor import ModelMonitor, WindowFactory
from driftline.pipeline import reference_key, window_key
from driftline.scale.performance import PerformanceMerge
from driftline.scale.segments import SegmentCatalogue
from driftline.scale.silence import NoData
from driftline.streams.windows import Window
from driftline.types import CommitUnit

log = logging.getLogger(__name__)

#: the ``source`` of the merger's per-version state rows
MERGE_SOURCE = "merge"
#: sequence tests that need one ordered stream of events, which no merger sees
UNMERGEABLE_SEQUENCE = ("prediction_adwin",)


class MergeMonitor(ModelMonitor):
    """Summarises merged windows; its sequence tests follow the merged windows in order."""

    def _sequence(self, version: str) -> dict:
        tests = super()._sequence(version)
        for name in UNMERGEABLE_SEQUENCE:
            tests.pop(name, None)
        return tests


def passed(mark: dict | None, model: str, end: int, lateness: int) -> bool:
    """Whether a partition (its mark) can no longer add to a window of ``model`` ending at ``end``:
    idle, or its watermark passed the window, or it never carried the model and its owner has
    read all it holds (``caught_up``: a partition read only in part may bring the model next)."""
    if mark is None:
        return False
    wm = mark["watermark"]
    return mark["idle"] or (wm is not None and (
        wm - lateness >= end or (model not in mark["models"] and mark.get("caught_up", True))))


class Merger:
    """Merges ready windows of every model whose lock it gets; see the module docstring."""

    def __init__(self, settings, store, router, group: str, secret: bytes | None, topology,
                 metrics, output, wall, ends=None):
        self.settings, self.store, self.router, self.group = settings, store, router, group
        self.secret, self.topology, self.metrics, self.output, self.wall = secret, topology, metrics, output, wall
        #: ``ends(partitions) -> {partition: (low, high)}`` from the broker; ``None``: idle marks are trusted
        self.ends = ends
        self._ends: dict = {}
        self._merged_now: dict = {}
        self.monitors = {s.name: MergeMonitor(s, None) for s in settings.models}
        self.performance = {s.name: PerformanceMerge(s, secret) for s in settings.models if s.labels is not None}
        self.no_data = {s.name: NoData(s, secret) for s in settings.models if any(r.no_data is not None for r in s.rules)}
        self.late = 0  # events in partials that came after their window was merged
        self._catalogues: dict[str, SegmentCatalogue] = {}
        self._routes: list[tuple[int, bool, dict]] = []
        self._repeats_at = 0.0

    def expected(self, marks: dict) -> list[tuple[str, int]]:
        """Every partition of the event topics (from the broker's metadata; else the marks)."""
        counts = self.topology() or {}
        known = [(topic, p) for topic in self.settings.kafka.topics for p in range(counts.get(topic, 0))]
        return known or sorted(tp for tp in marks if tp[0] in self.settings.kafka.topics)

    def run(self, now: float, repeat_every: float = 60.0) -> list[dict]:
        """One pass over the models: merge what is ready; return the stored summaries."""
        pending = self.store.partials.pending(self.group)
        if self.performance:
            for model, n in self.store.partials.pending_performance(self.group).items():
                pending[model] = pending.get(model, 0) + n
        repeats = now - self._repeats_at >= repeat_every
        if repeats:
            self._repeats_at = now
        out, self._ends = [], {}
        marks = self.store.partials.marks(self.group) if self.no_data else {}
        for name, monitor in self.monitors.items():
            silence = name in self.no_data and self.no_data[name].changes(marks, now, self.router.alerts)
            if monitor.profile is None or not (pending.get(name) or repeats or silence):
                continue
            try:
                out += self._model(name, now)
            except StoreUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - one model's merge must not stop the stream
                log.error("model %s: merging its partial windows failed (they are kept, and merged again "
                          "next time): %s: %s", name, type(exc).__name__, exc, exc_info=exc)
        return out

    def _model(self, name: str, now: float) -> list[dict]:
        unit, done = CommitUnit(), []
        self._merged_now: dict[tuple[str, int], int] = {}  # (version, start ms) → seq merged in this pass
        with self.store.partials.merging(self.group, name, lambda c, u: self.store.write(c, self.group, u)) as m:
            if m is None:
                return []  # another process merges this model now
            self.router.restore()  # the alert state as committed, read under the lock
            marks = self._checked(m.marks(), m, name)
            expected = self.expected(marks)
            by_version = defaultdict(list)
            for row in m.partials():
                by_version[row["version"]].append(row)
            self._routes = []
            for version, rows in by_version.items():
                self._version(m, name, version, rows, marks, expected, unit, done, now)
            for _, _, summary in sorted(self._routes, key=lambda r: r[:2]):  # a segment's first, as one process
                unit.add(self.router.route(summary, now))
            if (c := self._catalogues.get(name)) is not None and c.built:
                unit.references, c.built = unit.references + c.built, []  # segment references built from the file
            revised, gone = self._performance(m, name, unit, now)
            silent = self.no_data[name].observe(m, marks, now, self.router.alerts, unit) if name in self.no_data else {}
            unit.add(self.router.tick(silent, now, models={name}))
            if unit.windows or done or unit.notifications or unit.incidents or unit.performance or revised or gone \
                    or unit.alert_states or unit.states:
                m.commit(unit, done, revised, gone)
        for summary in unit.windows:
            self.metrics.observe_window(summary)
            self.output(summary)
        for revision in unit.performance:
            self.output(revision)
        if unit.performance:
            self.metrics.observe_labels({}, unit.performance)
        for state in unit.alert_states:
            self.metrics.observe_alert(state)
        return unit.windows

    def _performance(self, m, name: str, unit: CommitUnit, now: float) -> tuple[list, list]:
        """Revise the model's windows whose performance changed (``driftline/scale/performance.py``)."""
        perf = self.performance.get(name)
        if perf is None:
            return [], []
        return perf.run(m, self.monitors[name].profile, self._merged_now, MERGE_SOURCE, unit, self.router.route_performance,
                        now)

    def bounds(self, tps: list) -> dict:
        """The broker's ``(low, high)`` of ``tps`` (``None``: no answer), each asked at most once per
        pass (one request per partition, slow on some brokers)."""
        if missing := [tp for tp in tps if tp not in self._ends]:
            self._ends.update(dict.fromkeys(missing, None) | self.ends(missing))
        return {tp: self._ends[tp] for tp in tps}

    def _checked(self, marks: dict, m, model: str) -> dict:
        """A partition is idle and ``caught_up`` only if its owner reported its end at the stored
        offset (the mark's ``read_to``) and its broker holds no record past that: else its owner
        has not read them yet (the ends are asked at most once per pass). The broker's high
        watermark alone is not enough: Tansu under-reports it (the first offset of the last record
        batch, plus one), and a partition read halfway through that batch would look read."""
        # asked only where the answer matters (one request each, slow on some brokers): idle
        # partitions, and those that never carried this model
        ask = [tp for tp, mark in marks.items() if mark["idle"] or model not in (mark["models"] or ())]
        if not ask or self.ends is None:
            return marks
        self.bounds(ask)
        stored, out = m.offsets(), dict(marks)
        for tp in ask:
            mark, bounds = marks[tp], self._ends[tp]
            offset = stored.get(tp, bounds[0] if bounds else None)
            behind = bounds is None or bounds[1] > offset or mark.get("read_to") is None \
                or mark["read_to"] != offset
            out[tp] = mark | {"caught_up": not behind} | ({"idle": False} if behind else {})
        return out

    def catalogue(self, name: str) -> SegmentCatalogue | None:
        """The segments of a model with ``segments`` (rebuilt when its reference changed)."""
        monitor = self.monitors[name]
        if not monitor.spec.segments or monitor.profile is None:
            return None
        c = self._catalogues.get(name)
        if c is None or c.key != reference_key(monitor.profile):
            rows = None
            if monitor.spec.reference.path is not None:
                from driftline.streams.files import read_table
                rows = lambda: read_table(monitor.spec.reference.path)  # noqa: E731 - read once, when needed
            c = self._catalogues[name] = SegmentCatalogue(monitor.spec, monitor.profile,
                                                          self.store.state.load_references(), rows)
        return c

    def _monitor(self, name: str, version: str) -> tuple[MergeMonitor, dict | None]:
        """The monitor merging ``version``'s windows: the model's, or a segment's (with its ``segment``)."""
        c = self.catalogue(name)
        found = c.split(version) if c is not None else None
        if found is None:
            return self.monitors[name], None
        base, fi, code = found
        if (fi, code) not in c.monitors:
            c.monitors[(fi, code)] = MergeMonitor(c.drift.child_spec, c.profile(fi, code))
        feature, value = c.drift.name(fi, code)
        return c.monitors[(fi, code)], {"feature": feature, "value": value, "version": base}

    def _version(self, m, name, version, rows, marks, expected, unit, done, now) -> None:
        monitor, segment = self._monitor(name, version)
        if monitor.profile is None:  # a segment without a reference: its partials are not written
            done += [r["id"] for r in rows]
            return
        lateness = int(monitor.spec.window.allowed_lateness * 1000)
        state = self._state(m, monitor, version)
        by_start = defaultdict(list)
        for row in rows:
            by_start[row["start_ms"]].append(row)
        merged = False
        for start in sorted(by_start):
            parts = by_start[start]
            end = parts[0]["end_ms"]
            if state["merged_until"] is not None and end <= state["merged_until"]:
                n = sum(r["count"] for r in parts)
                self.late += n
                if n:  # an empty share (a partition filling a model's pause with empty windows) is not news
                    log.warning("model %s %s: %d event(s) of window %d came from %s after it was merged; counted "
                                "as late, not in it", name, version, n, start,
                                ", ".join(f"{r['topic']}[{r['partition']}]" for r in parts))
                done += [r["id"] for r in parts]
                continue
            if not all(passed(marks.get(tp), name, end, lateness) for tp in expected):
                break
            w = self._merged(monitor, version, parts, m.partial_data([r["id"] for r in parts]))
            done += [r["id"] for r in parts]
            if w is None:
                continue
            if name in self.no_data and segment is None:  # a version's silence (one process: its windows only)
                self.no_data[name].merged(version, w)
            w.seq, state["seq"], state["merged_until"] = state["seq"], state["seq"] + 1, end
            self._merged_now[(version, start)] = w.seq
            summary = monitor.summarise(w)
            if segment is not None:
                summary["segment"] = segment
            unit.windows.append(summary)
            self._routes.append((end, segment is None, summary))
            merged = True
        if merged or done:
            state["sequence"] = {k: t.to_state() for k, t in monitor.sequence.get(version, {}).items()}
            unit.states[(name, version, MERGE_SOURCE)] = st.encode(state, self.secret)

    def _state(self, m, monitor: MergeMonitor, version: str) -> dict:
        """The version's merge state as stored (its sequence tests loaded into the monitor)."""
        blob = m.state(version, MERGE_SOURCE)
        state = (st.decode(blob, f"model {monitor.spec.name}, version {version}, its merge", self.secret)
                 if blob is not None else {"format": st.FORMAT, "seq": 0, "merged_until": None, "sequence": {}})
        monitor.sequence.pop(version, None)
        monitor.load(version, {"format": st.FORMAT, "windows": None, "sequence": state["sequence"],
                               "last_event": None})
        return state

    def _merged(self, monitor: MergeMonitor, version: str, parts: list[dict], data: dict[int, bytes]) -> Window | None:
        """One window from its partials, ``data`` their encoded windows by id (those binned on
        another configuration or reference are left out)."""
        new = WindowFactory(monitor.spec.name, version, monitor.profile, monitor.spec)
        out = None
        for row in parts:
            where = f"model {monitor.spec.name}, version {version}, partial of {row['topic']}[{row['partition']}]"
            try:
                state = st.decode(data[row["id"]], where, self.secret)
            except StoreError as exc:
                log.error("%s is unreadable, left out: %s", where, exc)
                continue
            if state["spec"] != window_key(monitor.spec) or state["reference"] != reference_key(monitor.profile):
                log.warning("%s was binned on another configuration or reference; left out", where)
                continue
            w = Window.from_state(state["window"], new)
            w.closed_by = state["window"]["closed_by"]
            out = w if out is None else _combine(out, w)
        return out


def _combine(a: Window, b: Window) -> Window:
    a.stats.merge(b.stats)
    a.count += b.count
    a.invalid += b.invalid
    a.late += b.late
    firsts = [t for t in (a.first_ts, b.first_ts) if t is not None]
    lasts = [t for t in (a.last_ts, b.last_ts) if t is not None]
    a.first_ts, a.last_ts = min(firsts, default=None), max(lasts, default=None)
    if b.closed_by == "watermark":
        a.closed_by = "watermark"
    return a
