"""Scale-out: every partition's performance accumulators of a window → one revision, once.

Inside the merger's locked transaction of a model (``driftline/scale/merge.py``), after its
drift windows: the model's rows of ``perf_partials`` (one per version, window and partition,
see ``driftline/scale/labels.py``) are listed without their data; the accumulators of each
window to revise, and of the previous version's windows its line is compared with (the same
window, the newest labelled ones), are read and merged (``_Window.merge``: confusion counts,
score histograms, sums, delays and estimates add up). A window is revised when one of its
rows asked for it, or when its drift window was merged in this pass while it is estimated or
already has a revision (so its ``seq``, the merged window's, is filled in). The revision is
the line a single process writes (``RealizedPerformance._line``; its clock the newest event
or label time of any row, the baseline of the previous version from the windows still
stored) and is routed to the metric, label_coverage and concept_drift rules. With
``labels.segments``, the rows of a segment's tagged version (``v1[colour=red]``) are each
partition's share of that segment's window, merged and revised by
:class:`~driftline.scale.segments.SegmentPerformanceMerge` after the whole windows' lines.

What is cross-window is the merge state (key ``labels/merge``, source ``"merge"``): the
versions in the order they were first merged (the baseline of a version is the one before
it) and each stored window's revision number. A window whose rows are all finished (no label
can reach it on any partition) is deleted, with its revision number, once its drift window is
merged (every partition has passed it: none can add predictions to it).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from driftline import state as st
from driftline.errors import DriftlineError
from driftline.realized import BASELINE_WINDOWS, RealizedPerformance, _Window
from driftline.scale.segments import SegmentPerformanceMerge
from driftline.types import iso

log = logging.getLogger(__name__)

KEY = "labels/merge"


class PerformanceMerge:
    """Revises the windows of one model whose performance changed on some partition."""

    def __init__(self, spec, secret: bytes | None):
        self.spec, self.secret = spec, secret
        self.ages = tuple(r.after for r in spec.rules if r.after is not None)
        self.segments = SegmentPerformanceMerge(spec, secret) if spec.labels.segments else None

    def run(self, m, profile, merged: dict[tuple[str, int], int], source: str, unit, route, now: float):
        """Revise what changed; return ``(revised, gone)``: the rows' ``(id, stamp)`` to mark clean
        and to delete. ``merged``: (version, start) → seq of the drift windows merged in this pass."""
        rows = m.performance()
        if not rows:
            return [], []
        shares = [r for r in rows if self.segments is not None and self.segments.split(r["version"])]
        rows = [r for r in rows if not shares or not self.segments.split(r["version"])]
        blob = m.state(KEY, source)
        state = (st.decode(blob, f"model {self.spec.name}, its performance merge", self.secret) if blob is not None
                 else {"format": st.FORMAT, "versions": [], "revisions": {}})
        groups = defaultdict(list)
        for row in rows:
            groups[(row["version"], row["window_key"])].append(row)
        realized = self._realized(profile, state, groups)
        realized.newest = max(int(r["newest"]) for r in rows or shares)
        candidates = [g for g, parts in groups.items() if g in merged or any(r["dirty"] for r in parts)]
        windows = self._windows(m, realized, groups, candidates)
        revised, gone, changed = [], [], False
        for g in candidates:
            (version, win), w, name = g, windows.get(g), f"{g[0]}/{g[1]}"
            dirty = [r for r in groups[g] if r["dirty"]]
            due = bool(dirty) or (w is not None and ((w.est is not None and w.est.n) or name in state["revisions"]))
            if w is not None and due:
                w.revision = state["revisions"].get(name, 0) + 1
                state["revisions"][name] = w.revision
                w.seq = merged.get(g, self._seq(m, version, w))
                line = realized._line(w)
                unit.performance.append(line)
                unit.add(route(line, now))
                changed = True
            revised += [(r["id"], r["stamp"]) for r in dirty]
        passed, done = self._passed(m, source, merged), set()
        for (version, win), parts in groups.items():
            if all(r["finished"] for r in parts) and passed(version, win):
                gone += [(r["id"], r["stamp"]) for r in parts]
                done.add((version, win))
                changed = state["revisions"].pop(f"{version}/{win}", None) is not None or changed
        if shares:  # a segment's rows go with its whole window's (or, without any, once it is merged)
            more, deleted, seg_changed = self.segments.run(
                m, realized, state, shares, merged,
                lambda v, w: (v, w) in done or ((v, w) not in groups and passed(v, w)), unit, route, now)
            revised, gone, changed = revised + more, gone + deleted, changed or seg_changed
        if changed or len(state["versions"]) != len(realized.versions):
            state["versions"] = list(realized.versions)
            unit.states[(self.spec.name, KEY, source)] = st.encode(state, self.secret)
        return revised, gone

    def _passed(self, m, source: str, merged: dict):
        """``passed(version, window)``: whether its drift window is merged, so every partition has passed
        it and none can add predictions to it (until then a partition behind the others could, and a
        window deleted when its other rows finished would come back with that partition's share only)."""
        duration, until = int(self.spec.window.duration * 1000), {}

        def passed(version: str, win: int) -> bool:
            if (version, win) in merged:
                return True
            if version not in until:
                blob = m.state(version, source)
                until[version] = None if blob is None else st.decode(
                    blob, f"model {self.spec.name}, version {version}, its merge", self.secret)["merged_until"]
            return until[version] is not None and win + duration <= until[version]
        return passed

    def _realized(self, profile, state: dict, groups: dict) -> RealizedPerformance:
        """A model's performance view: its versions in merge order, its reference's calibrator."""
        out = RealizedPerformance(self.spec.name, self.spec.labels, False,
                                  reference=profile.performance if profile is not None else None, ages=self.ages)
        first: dict[str, int] = {}
        for version, win in groups:
            first[version] = min(win, first.get(version, win))
        known = list(state["versions"])
        known += sorted((v for v in first if v not in known), key=lambda v: (first[v], v))
        out.versions, out._codes = known, {v: i for i, v in enumerate(known)}
        return out

    def _windows(self, m, realized: RealizedPerformance, groups: dict, candidates: list) -> dict:
        """The merged windows to revise, and what their lines compare with (``_versions``): the previous
        version's window of the same time and its newest labelled windows (only those are read)."""
        loaded: dict = {}

        def load(g) -> _Window | None:
            if g not in loaded:
                loaded[g] = self._merged(m, realized, g, groups[g])
            return loaded[g]

        for g in candidates:
            load(g)
        for version in {v for v, _ in candidates}:
            code = realized._codes[version]
            if code == 0:
                continue
            prev = realized.versions[code - 1]
            for _, win in [g for g in candidates if g[0] == version and (prev, g[1]) in groups]:
                load((prev, win))
            labelled = 0
            for g in sorted((g for g in groups if g[0] == prev), key=lambda g: g[1], reverse=True):
                w = load(g)
                labelled += w is not None and w.stats.n > 0
                if labelled >= BASELINE_WINDOWS:
                    break
        out = {g: w for g, w in loaded.items() if w is not None}
        realized.windows = {(realized._codes[v], win): w for (v, win), w in out.items()}
        return out

    def _merged(self, m, realized: RealizedPerformance, g: tuple[str, int], parts: list[dict]) -> _Window | None:
        """One window merged from its partitions' rows (an unreadable row is left out, loudly)."""
        (version, win), out = g, None
        data = m.performance_data([r["id"] for r in parts])
        for row in parts:
            where = (f"model {self.spec.name}, version {version}, performance of window {win} from "
                     f"{row['topic']}[{row['partition']}]")
            try:
                state = st.decode(data[row["id"]], where, self.secret)
                w = _Window.from_state(state["window"], self.spec.labels.task, self.spec.labels.threshold,
                                       realized.calibrator)
            except (DriftlineError, ValueError, KeyError) as exc:
                log.error("%s is unreadable, left out: %s", where, exc)
                continue
            if out is None:
                out = w
            else:
                out.merge(w)
        return out

    @staticmethod
    def _seq(m, version: str, w: _Window) -> int | None:
        """The merged drift window's ``seq`` (``None`` while it is not merged yet)."""
        if w.start is None:
            return None
        return m.seqs(version, [iso(w.start)]).get(iso(w.start))
