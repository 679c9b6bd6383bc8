"""Scale-out: the label join of one partition, and its share of each window's performance.

A label joins its prediction by id, so it is read where its prediction was: labels go on the
event topics with their prediction's key (README "Scaling out"), and each partition keeps,
per model with ``labels``, a :class:`~driftline.realized.RealizedPerformance` of its own
records only (its join buffer, early labels, per-window accumulators and concept-drift
detectors), stored with the partition's other state (source ``topic:partition``). A label
whose prediction went to another partition is an orphan there (counted as one).

At each checkpoint the partition's changed window accumulators go to the store
(``perf_partials``, upserted in the checkpoint's transaction) with whether the merged line
must be revised (labels credited, its estimate complete, a label_coverage age passed); the
merger (``driftline/scale/performance.py``) merges every partition's accumulator of such a
window and revises it once.

With ``labels.segments``, the partition's segments are coded on the table fixed from the
reference (``driftline/scale/segments.py``), and each segment's share of a window (its
prediction count and accumulator) goes to ``perf_partials`` too, as a row of its tagged
version (``v1[colour=red]``: the value, never a code) whenever the window's counts or the
segment's labels changed; the merger merges them into the segment's line.
"""

from __future__ import annotations

import logging

from driftline import state as st
from driftline.realized import _PERF, RealizedPerformance, is_label_key
from driftline.scale.segments import fixed_table
from driftline.segment_drift import tag

log = logging.getLogger(__name__)


class PartitionLabels:
    """Every labelled model's join and performance on one partition."""

    def __init__(self, specs, profiles: dict):
        from driftline.pipeline import Pipeline
        self._build = Pipeline._labels
        self.specs = {s.name: s for s in specs if s.labels is not None}
        self.profiles = profiles
        self.models: dict[str, RealizedPerformance] = {
            name: self._fixed(name, self._build(spec, {}, profiles.get(name))) for name, spec in self.specs.items()}

    def _fixed(self, name: str, realized: RealizedPerformance) -> RealizedPerformance:
        """Code ``labels.segments`` on the table fixed from the reference, unless the stored one (whose
        codes the pending predictions carry) differs: then it is kept, frozen."""
        seg = realized.segments
        if not seg.features:
            return realized
        fixed = fixed_table(seg.features, self.specs[name].labels.max_segments, self.profiles.get(name))
        if any(seg.table.names.values()) and seg.table.names != fixed.names:
            log.warning("model %s: a partition's pending predictions were coded on other segments (the reference "
                        "changed since); they keep theirs", name)
            seg.table.frozen = True
        else:
            seg.table, fixed.dirty = fixed, not any(seg.table.names.values())
        return realized

    def predictions(self, model: str, version: str, monitor) -> None:
        """Hold the windowed predictions the monitor's last ``ingest`` assigned (as ``Pipeline._predictions``)."""
        realized, assigned = self.models.get(model), monitor.assigned
        if realized is None or assigned is None or not assigned[0].n:
            return
        cols, windows, bounds = assigned
        segments = {s: cols.features[s].values for s in realized.spec.segments}
        realized.add(version, cols.ids, windows, cols.features["prediction"].values, cols.ts, bounds, segments)

    def closed(self, windows) -> None:
        """Drift windows of this partition closed: their estimates are complete."""
        for w in windows:
            if w.model in self.models:
                self.models[w.model].closed(w.version, w.start_ms)

    def join(self, decoded) -> None:
        """The label events of one partition's decoded records, then expiry by the newest time seen."""
        for model, labels in decoded.labels.items():
            self.models[model].join(labels.ids, labels.label, labels.ts)
        if decoded.labels or decoded.groups:
            for realized in self.models.values():
                realized.expire()

    def take(self, unit, tp: tuple[str, int], source: str, secret: bytes | None) -> None:
        """The changed label states (``source``) and performance accumulators into ``unit``."""
        topic, partition = tp
        for name, realized in self.models.items():
            revise = {(w.version, w.window): w.to_state() for w in realized.changed()}
            due, touched = realized.segments.changes()
            states = realized.dirty_state()
            newest = int(realized.newest)
            for key, state in states.items():
                unit.states[(name, key, source)] = None if state is None else st.encode(state, secret)
                if not key.startswith(_PERF):
                    continue
                code, win = (int(x) for x in key[len(_PERF):].split("/"))
                version = realized.versions[code]
                row = {"model": name, "version": version, "window_key": win, "topic": topic, "partition": partition}
                data = state if state is not None else revise.get((version, win))
                if data is not None:
                    unit.perf_partials.append(row | {"revise": (version, win) in revise, "newest": newest,
                                                     "data": st.encode({"format": st.FORMAT, "window": data}, secret)})
                if state is None:
                    unit.perf_partials.append(row | {"data": None})
            rows = _segment_rows(realized, due, touched, secret)
            unit.perf_partials += [r | {"model": name, "topic": topic, "partition": partition, "newest": newest}
                                   for r in rows]
            realized.clean()

    def load(self, states: dict[tuple[str, str], dict]) -> None:
        """Restore each model's ``labels/…`` keys (the others are the windows')."""
        for name, spec in self.specs.items():
            mine = {k: v for (m, k), v in states.items() if m == name and is_label_key(k)}
            if mine:
                self.models[name] = self._fixed(name, self._build(spec, mine, self.profiles.get(name)))


def _segment_rows(realized: RealizedPerformance, due: set, touched: set, secret: bytes | None) -> list[dict]:
    """Each segment's share of the windows ``touched`` (``SegmentPerformance.changes``), as rows of
    its tagged version; ``revise`` where its line is ``due``. A forgotten window's rows go with its
    whole window's (the merger deletes them together)."""
    seg, out = realized.segments, []
    for vw in sorted(touched):
        if vw not in realized.windows:
            continue
        version = realized.versions[vw[0]]
        for fi, code, count, acc in seg.shares(vw):
            feature = seg.features[fi]
            data = {"format": st.FORMAT, "count": count, "segment": None if acc is None else acc.to_state()}
            out.append({"version": tag(version, feature, seg.table.value(feature, code)), "window_key": vw[1],
                        "revise": (*vw, fi, code) in due, "data": st.encode(data, secret)})
    return out


def label_keys(states: dict[tuple[str, str], dict]) -> set[tuple[str, str]]:
    return {mk for mk in states if is_label_key(mk[1])}


class LabelTotals:
    """One process's label counts per model, over the partitions it owns and has owned (the
    ``observe_labels`` view of a :class:`RealizedPerformance`: ``counts`` since the process
    started, ``buffer`` the pending predictions of the partitions it owns now)."""

    def __init__(self):
        self.retired: dict[str, dict[str, int]] = {}

    def retire(self, labels: PartitionLabels) -> None:
        """A partition leaves this process: its counts since it came stay counted."""
        for model, r in labels.models.items():
            mine = self.retired.setdefault(model, {})
            for k, v in r.counts.items():
                mine[k] = mine.get(k, 0) + int(v)

    def view(self, parts) -> dict:
        out: dict[str, _Totals] = {}
        for model, counts in self.retired.items():
            out.setdefault(model, _Totals()).add_counts(counts)
        for part in parts:
            for model, r in part.labels.models.items():
                t = out.setdefault(model, _Totals())
                t.add_counts(r.counts)
                t.buffer.add(r.buffer)
        return out


class _Buffer:
    def __init__(self):
        self.pending, self.nbytes, self.counts = 0, 0, {}

    def add(self, buffer) -> None:
        self.pending += int(buffer.pending)
        self.nbytes += int(buffer.nbytes)
        for k in ("evicted", "expired"):
            self.counts[k] = self.counts.get(k, 0) + int(buffer.counts.get(k, 0))


class _Totals:
    def __init__(self):
        self.counts: dict[str, int] = {}
        self.buffer = _Buffer()

    def add_counts(self, counts: dict) -> None:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + int(v)
