"""Scale-out: every partition's performance accumulators of a window → one revision, once.

Inside the merger's locked transaction of a model (``driftline/scale/merge.py``), after its
drift windows: the model's rows of ``perf_partials`` (one per version, window and
partition, see ``driftline/scale/labels.py``) are read; the accumulators of each window are
merged (``_Window.merge``: confusion counts, score histograms, sums, delays and estimates add
up) and a window is revised when one of its rows asked for it, or when its drift window was
merged in this pass while it is estimated or already has a revision (so its ``seq``, the
merged window's, is filled in). The revision is the line a single process writes
(``RealizedPerformance._line``, with the baseline of the previous version from the windows
still stored) and is routed to the metric, label_coverage and concept_drift rules.

What is cross-window is the merge state (key ``labels/merge``, source ``"merge"``): the
versions in the order they were first merged (the baseline of a version is the one before
it) and each stored window's revision number. A window whose rows are all finished (no label
can reach it on any partition) is deleted, with its revision number.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from driftline import state as st
from driftline.errors import DriftlineError
from driftline.realized import RealizedPerformance, _Window
from driftline.types import iso

log = logging.getLogger(__name__)

KEY = "labels/merge"


class PerformanceMerge:
    """Revises the windows of one model whose performance changed on some partition."""

    def __init__(self, spec, secret: bytes | None):
        self.spec, self.secret = spec, secret
        self.ages = tuple(r.after for r in spec.rules if r.after is not None)

    def run(self, m, profile, merged: dict[tuple[str, int], int], source: str, unit, route, now: float):
        """Revise what changed; return ``(revised, gone)``: the rows' ``(id, stamp)`` to mark clean
        and to delete. ``merged``: (version, start) → seq of the drift windows merged in this pass."""
        rows = m.performance()
        if not rows:
            return [], []
        blob = m.state(KEY, source)
        state = (st.decode(blob, f"model {self.spec.name}, its performance merge", self.secret) if blob is not None
                 else {"format": st.FORMAT, "versions": [], "revisions": {}})
        groups = defaultdict(list)
        for row in rows:
            groups[(row["version"], row["window_key"])].append(row)
        realized = self._realized(profile, state, groups)
        windows = self._merged(realized, groups)
        revised, gone, changed = [], [], False
        for (version, win), parts in groups.items():
            w, name = windows.get((version, win)), f"{version}/{win}"
            dirty = [r for r in parts if r["dirty"]]
            due = bool(dirty) or ((version, win) in merged and w is not None and (
                (w.est is not None and w.est.n) or name in state["revisions"]))
            if w is not None and due:
                w.revision = state["revisions"].get(name, 0) + 1
                state["revisions"][name] = w.revision
                w.seq = merged.get((version, win), self._seq(m, version, w))
                line = realized._line(w)
                unit.performance.append(line)
                unit.add(route(line, now))
                changed = True
            revised += [(r["id"], r["stamp"]) for r in dirty]
            if all(r["finished"] for r in parts):
                gone += [(r["id"], r["stamp"]) for r in parts]
                changed = changed or state["revisions"].pop(name, None) is not None
        if changed or len(state["versions"]) != len(realized.versions):
            state["versions"] = list(realized.versions)
            unit.states[(self.spec.name, KEY, source)] = st.encode(state, self.secret)
        return revised, gone

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

    def _merged(self, realized: RealizedPerformance, groups: dict) -> dict[tuple[str, int], _Window]:
        """Each window merged from its partitions' rows (an unreadable row is left out, loudly)."""
        out, newest = {}, np.iinfo(np.int64).min
        for (version, win), parts in groups.items():
            for row in parts:
                where = (f"model {self.spec.name}, version {version}, performance of window {win} from "
                         f"{row['topic']}[{row['partition']}]")
                try:
                    data = st.decode(row["data"], where, self.secret)
                    w = _Window.from_state(data["window"], self.spec.labels.task, self.spec.labels.threshold,
                                           realized.calibrator)
                except (DriftlineError, ValueError, KeyError) as exc:
                    log.error("%s is unreadable, left out: %s", where, exc)
                    continue
                newest = max(newest, int(data["newest"]))
                if (version, win) in out:
                    out[(version, win)].merge(w)
                else:
                    out[(version, win)] = w
        realized.newest = newest
        realized.windows = {(realized._codes[v], win): w for (v, win), w in out.items()}
        return out

    @staticmethod
    def _seq(m, version: str, w: _Window) -> int | None:
        """The merged drift window's ``seq`` (``None`` while it is not merged yet)."""
        if w.start is None:
            return None
        return m.seqs(version, [iso(w.start)]).get(iso(w.start))
