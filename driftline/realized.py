"""Realized performance of one model: its predictions wait in a label-join buffer, each
label that joins is credited to its prediction's window, and every window whose
performance changed is revised at the next checkpoint (docs/labels.md, "In the pipeline").

Pure: no Kafka, no store, no clock of its own. Time is event time, the newest event or
label time seen (``newest``). Its state is keyed (all under ``labels/``): the join
buffer's own keys under ``labels/buf/``, the version table and clock as
``labels/versions``, one key per window accumulator, ``labels/perf/<code>/<window>``,
one per version's concept-drift detectors, ``labels/concept/<code>``, and the segments'
keys under ``labels/seg/`` (``driftline/segmented.py``).

>>> import numpy as np
>>> from driftline.config.settings import LabelsSpec
>>> r = RealizedPerformance("m", LabelsSpec(min_labelled=0.5, early_for=0), count_windows=True)
>>> r.add("v1", np.array(["a", "b", "c", "d"], dtype=object), np.zeros(4, dtype=np.int64),
...       np.array([0.9, 0.8, 0.2, 0.1]), np.arange(4) + 1000, {0: (0, 1000, 1004)})
>>> r.join(np.array(["a", "c", "zz"], dtype=object), np.array([1.0, 0.0, 1.0]), np.array([5000, 6000, 7000]))
>>> (rev,) = r.revisions()
>>> rev["labelled"], rev["labelled_share"], rev["enough"], rev["metrics"]["accuracy"], r.counts["orphan"]
(2, 0.5, True, 1.0, 1)
"""

from __future__ import annotations

import numpy as np

from driftline import state as st
from driftline.config.settings import LabelsSpec
from driftline.detectors.performance import BinaryStats, Calibrator, DelayStats, EstimatedStats, RegressionStats
from driftline.detectors.performance.concept import ConceptDrift
from driftline.detectors.performance.reference import against
from driftline.labels.early import EarlyLabels
from driftline.labels.hashing import hash_ids
from driftline.labels.join import JoinBuffer
from driftline.segmented import SegmentPerformance, merge_shares
from driftline.types import iso

PREFIX = "labels/"
_BUF, _PERF, _VERSIONS = "labels/buf/", "labels/perf/", "labels/versions"
_EARLY = "labels/early"  # labels read before their prediction, held for it (labels.early_for)
MAX_VERSIONS = 32767  # codes are int16
LABEL_COUNTS = ("joined", "orphan", "expired", "duplicate", "sampled_out")
BASELINE_WINDOWS = 10  # the previous version's newest labelled windows a new version is compared with
#: the metrics compared with the reference, per task (the line's ``reference``)
HEADLINE = {"binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"),
            "regression": ("mae", "rmse", "mape", "bias")}
_CONCEPT = "labels/concept/"
MAX_FINDINGS = 8  # concept-drift findings kept per window (the first ones)


def is_label_key(key: str) -> bool:
    return key.startswith(PREFIX)


def _by_window(versions: np.ndarray, windows: np.ndarray):
    """``(version code, window, selection)`` for each (version, window) pair present, in sorted
    order; the selection is a slice of all when there is one pair (the usual case)."""
    for code in np.unique(versions).tolist():
        vsel = versions == code
        wins = windows[vsel]
        uniq = np.unique(wins)
        if uniq.size == 1 and wins.size == windows.size:
            yield code, int(uniq[0]), slice(None)
            continue
        for win in uniq.tolist():
            yield code, win, vsel & (windows == win)


class _Window:
    """One (version, window)'s accumulated performance."""

    def __init__(self, task: str, threshold: float, version: str, window: int, calibrator: Calibrator | None = None):
        self.version, self.window = version, window
        self.stats = BinaryStats(threshold) if task == "binary" else RegressionStats()
        #: the estimate from every windowed prediction's score (binary, with a labelled reference)
        self.est = EstimatedStats(calibrator, threshold) if calibrator is not None else None
        self.aged = 0  # how many of the label_coverage rules' ``after`` ages the window has passed
        self.delay = DelayStats()
        self.seq: int | None = None
        self.start: int | None = None
        self.end: int | None = None
        self.count = 0
        self.last_ts = np.iinfo(np.int64).min
        self.revision = 0
        self.changed = False  # labels credited since the last revision
        self.findings: list[dict] = []

    def to_state(self) -> dict:
        return {"format": st.FORMAT, "version": self.version, "window": self.window, "seq": self.seq,
                "start": self.start, "end": self.end, "count": self.count, "last_ts": int(self.last_ts),
                "revision": self.revision, "stats": self.stats.to_state(), "delay": self.delay.to_state(),
                "est": None if self.est is None else self.est.to_state(), "aged": self.aged,
                "findings": self.findings}

    def merge(self, other: _Window) -> None:
        """Add another partition's accumulator of the same (version, window) (scale-out's merge):
        counts and statistics add up, findings are kept in label-time order (the first
        ``MAX_FINDINGS``); the estimate is kept only when both have one."""
        merge_shares(self, other)
        self.count += other.count
        self.last_ts = max(self.last_ts, other.last_ts)
        self.aged = max(self.aged, other.aged)
        for f in ("seq", "start", "end"):
            if getattr(self, f) is None:
                setattr(self, f, getattr(other, f))
        self.findings = sorted(self.findings + other.findings, key=lambda f: f["ts"])[:MAX_FINDINGS]

    @classmethod
    def from_state(cls, state: dict, task: str, threshold: float, calibrator: Calibrator | None = None) -> _Window:
        st.check_format(state, "labels: window performance")
        w = cls(task, threshold, state["version"], int(state["window"]))
        w.aged = int(state.get("aged", 0))
        if state.get("est") is not None and calibrator is not None:
            try:
                w.est = EstimatedStats.from_state(state["est"], calibrator)
            except ValueError:  # made with another reference's calibrator: this window has no estimate
                w.est = None
        w.seq, w.start, w.end = state["seq"], state["start"], state["end"]
        w.count, w.last_ts, w.revision = int(state["count"]), int(state["last_ts"]), int(state["revision"])
        w.stats = (BinaryStats if task == "binary" else RegressionStats).from_state(state["stats"])
        w.delay = DelayStats.from_state(state["delay"])
        w.findings = [dict(f) for f in state.get("findings", ())]
        return w


class RealizedPerformance:
    """Predictions in, labels in, per-window performance revisions out, for one model."""

    def __init__(self, model: str, spec: LabelsSpec, count_windows: bool, buffer: JoinBuffer | None = None,
                 reference: dict | None = None, ages: tuple[float, ...] = ()):
        self.model, self.spec, self.count_windows = model, spec, count_windows
        self.set_reference(reference)
        self.ages = tuple(sorted(set(ages)))  # seconds: a window is revised once it is that old
        self.early = EarlyLabels(int(spec.early_for * 1000), spec.max_early)
        self.buffer = buffer or JoinBuffer(segments=tuple(spec.segments), pred_dtype="float32",
                                           max_delay_ms=self._max_delay_ms, max_pending=spec.max_pending,
                                           sample=spec.sample)
        self.segments = SegmentPerformance(model, spec, count_windows)
        self.share_reference(self.segments)
        self.versions: list[str] = []
        self._codes: dict[str, int] = {}
        self.windows: dict[tuple[int, int], _Window] = {}
        self.newest = np.iinfo(np.int64).min
        self.counts = dict.fromkeys(LABEL_COUNTS, 0)  # labels since start (not stored: the buffer's are)
        self._dirty: set[tuple[int, int]] = set()
        self._deleted: set[tuple[int, int]] = set()
        self._versions_dirty = False
        self.concept: dict[int, ConceptDrift] = {}  # per version code
        self._concept_dirty: set[int] = set()

    def set_reference(self, reference: dict | None) -> None:
        """The labelled reference's performance (``ReferenceProfile.performance``): windows are
        compared with it, and a binary model's windows created from now on are estimated."""
        self.reference = reference
        cal = (reference or {}).get("calibrator")
        self.calibrator = Calibrator.from_state(cal) if cal is not None and self.spec.task == "binary" else None
        if hasattr(self, "segments"):
            self.share_reference(self.segments)

    def share_reference(self, segments: SegmentPerformance) -> None:
        """Give the per-segment accumulators the calibrator, the reference per segment and the comparison."""
        segments.set_reference(self.calibrator, (self.reference or {}).get("segments"), self._compared)

    @property
    def _max_delay_ms(self) -> int:
        return max(1, int(self.spec.max_delay * 1000))

    def _code(self, version: str) -> int | None:
        if version not in self._codes:
            if len(self.versions) >= MAX_VERSIONS:
                return None
            self._codes[version] = len(self.versions)
            self.versions.append(version)
            self._versions_dirty = True
        return self._codes[version]

    def _clock(self, ts: np.ndarray) -> None:
        if ts.size:
            self.newest = max(self.newest, int(ts.max()))
            self._versions_dirty = True

    # -- predictions ------------------------------------------------------------------------

    def add(self, version: str, ids: np.ndarray, windows: np.ndarray, preds: np.ndarray, ts: np.ndarray,
            bounds: dict[int, tuple[int, int | None, int | None]], segments: dict | None = None) -> None:
        """Hold a version's windowed predictions: ``windows`` per event (a time window's start,
        or a count window's seq), ``bounds``: window → (seq, start ms, end ms); ``segments``:
        each ``labels.segments`` feature's values per event (a categorical column's ``values``)."""
        code = self._code(version)
        if code is None or not ids.size:
            return
        seg = self.segments.codes(segments, ids.size)
        self._clock(ts)
        preds = np.asarray(preds, dtype=np.float32)
        for win in np.unique(windows).tolist():
            sel = windows == win
            before = self.buffer.counts["added"]
            self.buffer.add(ids[sel], np.full(int(sel.sum()), code, dtype=np.int16), windows[sel], preds[sel],
                            {k: c[sel] for k, c in seg.items()}, ts[sel])
            self._count_segments(code, int(win), seg, sel, preds)
            w = self._window(code, version, int(win))
            w.count += self.buffer.counts["added"] - before
            if w.est is not None:
                w.est.update(preds[sel])
            w.last_ts = max(w.last_ts, int(ts[sel].max()))
            self._dirty.add((code, int(win)))
        for win, (seq, start, end) in bounds.items():
            w = self.windows.get((code, int(win)))
            if w is not None:
                w.seq, w.start, w.end = seq, start, end

    def _count_segments(self, code: int, win: int, seg: dict[str, np.ndarray], sel: np.ndarray,
                        preds: np.ndarray) -> None:
        """Count (and estimate) by segment the predictions of ``sel`` that the buffer's last ``add`` took."""
        if seg:
            taken = self.buffer.last_added
            self.segments.count(code, win, {k: c[sel][taken] for k, c in seg.items()}, preds[sel][taken])

    def _window(self, code: int, version: str, win: int) -> _Window:
        key = (code, win)
        if key not in self.windows:
            self.windows[key] = _Window(self.spec.task, self.spec.threshold, version, win, self.calibrator)
            self._deleted.discard(key)
        return self.windows[key]

    # -- labels -----------------------------------------------------------------------------

    def join(self, ids: np.ndarray, labels: np.ndarray, ts: np.ndarray) -> None:
        """Credit a batch of labels to their predictions' windows (call :meth:`expire` after the batch)."""
        if ids.size:
            self._clock(ts)
            self._join(ids, np.asarray(labels), np.asarray(ts, dtype=np.int64))

    def _join(self, ids, labels: np.ndarray, ts: np.ndarray) -> None:
        j = self.buffer.join(ids, labels, ts)
        held = 0
        if self.spec.early_for > 0 and j.orphans.size:  # perhaps read before their prediction: held
            pos = j.orphans
            h = ids[pos] if isinstance(ids, np.ndarray) and ids.dtype == np.uint64 else hash_ids(ids[pos])
            held = pos.size
            self._orphaned(self.early.hold(h, labels[pos], ts[pos]))
        for k, v in j.counts.items():
            self.counts[k] += v - (held if k == "orphan" else 0)
        self.buffer.counts["orphan_labels"] -= held  # counted when they are given up
        self._credit(j)
        self.segments.credit(j)
        self._drift(j)

    def _orphaned(self, n: int) -> None:
        """``n`` held early labels given up: orphans after all."""
        if n:
            self.counts["orphan"] += n
            self.buffer.counts["orphan_labels"] += n

    def expire(self) -> None:
        """After a batch: join the early labels held again (their predictions may have come),
        give up those held longer than ``early_for``, and expire predictions older than
        ``max_delay`` before the newest event or label time."""
        if self.newest == np.iinfo(np.int64).min:
            return
        if self.early.n:
            self._join(*self.early.take())
            self._orphaned(self.early.expire(self.newest))
        self.buffer.expire(self.newest)

    def _credit(self, j) -> None:
        if not j.n:
            return
        delay = j.delay / 1000.0
        for code, win, sel in _by_window(j.version, j.window):
            w = self.windows.get((code, win))
            if w is None:  # its accumulator is done (all its predictions expired): cannot happen
                w = self._window(code, self.versions[code], win)
            pred, label = j.pred[sel].astype(np.float64), j.label[sel]
            if self.spec.task == "binary":
                w.stats.update(pred, label)
            else:
                w.stats.update(label, pred)
            w.delay.update(delay[sel])
            w.changed = True
            self._dirty.add((code, win))

    def _drift(self, j) -> None:
        """The joined labels, in batch order, through their version's concept-drift detectors;
        each detection becomes a finding of the window holding the prediction it fired at."""
        for code in np.unique(j.version).tolist():
            sel = j.version == code
            c = self.concept.get(code) or self.concept.setdefault(code, self._detectors())
            c.update(j.pred[sel], j.label[sel], j.window[sel], j.label_ts[sel])
            self._concept_dirty.add(code)
            for found in c.drain():
                self._finding(code, found)

    def _detectors(self) -> ConceptDrift:
        return ConceptDrift(self.spec.task, self.spec.threshold)

    def _finding(self, code: int, found: dict) -> None:
        w = self.windows.get((code, found["window"]))
        if w is None or len(w.findings) >= MAX_FINDINGS:
            return
        ts = found.pop("label_ts")
        w.findings.append(found | {"version": self.versions[code], "ts": iso(ts), "informational": False})
        w.changed = True
        self._dirty.add((code, found["window"]))

    # -- output and state -------------------------------------------------------------------

    def closed(self, version: str, window: int) -> None:
        """The drift window closed: its estimate is complete, and is revised (before any label)."""
        code = self._codes.get(version)
        w = self.windows.get((code, window))
        if w is not None and w.est is not None and w.est.n:
            w.changed = True
            self._dirty.add((code, window))
        if code is not None:
            self.segments.closed(code, window)

    def _age(self) -> None:
        """Revise each window that just became as old as an ``after`` of a label_coverage rule."""
        for key, w in self.windows.items():
            while w.aged < len(self.ages) and w.end is not None and \
                    self.newest - w.end >= self.ages[w.aged] * 1000:
                w.aged += 1
                w.changed = True
                self._dirty.add(key)

    def revisions(self) -> list[dict]:
        """A revision of every window whose labels changed since the last call (``revision`` + 1),
        closed since (its estimate), or became old enough for a label_coverage rule."""
        out = []
        for w in self.changed():
            w.revision += 1
            out.append(self._line(w))
        return out + self.segments.revisions(self.windows)

    def changed(self) -> list[_Window]:
        """The windows to revise (see :meth:`revisions`), in key order; their ``changed`` is reset."""
        if self.ages:
            self._age()
        out = []
        for key in sorted(self._dirty):
            w = self.windows.get(key)
            if w is not None and w.changed:
                w.changed = False
                out.append(w)
        return out

    def _line(self, w: _Window) -> dict:
        labelled = w.stats.n
        share = labelled / w.count if w.count else None
        delay = w.delay.metrics()
        metrics = w.stats.metrics()
        estimated = w.est.metrics() if w.est is not None and w.est.n else None
        return {"type": "performance", "model": self.model, "version": w.version,
                "window": {"start": None if w.start is None else iso(w.start),
                           "end": None if w.end is None else iso(w.end), "seq": w.seq},
                "window_kind": "count" if self.count_windows else "time", "window_key": w.window,
                "task": self.spec.task, "count": w.count, "labelled": labelled, "labelled_share": share,
                "delay": {k: delay[k] for k in ("p50", "p90", "max", "mean")},
                "segment": None, "metrics": metrics, "estimated": estimated,
                "reference": self._against(metrics, estimated), "versions": self._versions(w, metrics, estimated),
                "findings": list(w.findings),
                "enough": share is not None and share >= self.spec.min_labelled,
                "age": None if w.end is None or self.newest == np.iinfo(np.int64).min
                else max(0.0, (self.newest - w.end) / 1000.0), "revision": w.revision}

    def _versions(self, w: _Window, metrics: dict, estimated: dict | None) -> dict | None:
        """The window against the version first seen before its own (the one it replaced, or
        the champion beside a challenger): that version's window of the same time if it has
        labels (time windows), else its newest labelled windows still held (at most
        ``BASELINE_WINDOWS``), merged."""
        code = self._codes.get(w.version, 0)
        if code == 0:
            return None
        prev = code - 1
        same = None if self.count_windows else self.windows.get((prev, w.window))
        pool = [same] if same is not None and same.stats.n else \
            sorted((x for (c, _), x in self.windows.items() if c == prev and x.stats.n),
                   key=lambda x: x.window)[-BASELINE_WINDOWS:]
        if not pool:
            return None
        stats = type(pool[0].stats).from_state(pool[0].stats.to_state())
        for x in pool[1:]:
            stats.merge(x.stats)
        est = None
        if estimated is not None and all(x.est is not None and x.est.calibration == w.est.calibration for x in pool):
            try:
                est = EstimatedStats.from_state(pool[0].est.to_state(), self.calibrator)
                for x in pool[1:]:
                    est.merge(x.est)
            except ValueError:  # estimated with a calibrator of an earlier reference
                est = None
        return {"baseline": self.versions[prev], "same_window": pool[0] is same, "windows": len(pool),
                "n": stats.n} | self._compared(metrics, estimated, stats.metrics(),
                                               est.metrics() if est is not None else None)

    def _against(self, metrics: dict, estimated: dict | None) -> dict | None:
        """The reference's headline metrics, and the window's realized and estimated ones against them."""
        ref = self.reference
        if ref is None:
            return None
        return {"n": ref["n"]} | self._compared(metrics, estimated, ref["metrics"], ref.get("estimated"))

    def _compared(self, metrics: dict, estimated: dict | None, base: dict, base_estimated: dict | None) -> dict:
        """A baseline's headline metrics (with se), and the window's realized and estimated metrics
        against the baseline's realized and estimated ones (the ``reference`` and ``versions`` blocks)."""
        head = HEADLINE[self.spec.task]
        se = base.get("se") or {}

        def headline(c: dict) -> dict:
            return {k: v for k, v in c.items() if k in head}
        return {"metrics": {k: base.get(k) for k in head} | {"se": {k: se.get(k) for k in head}},
                "realized": headline(against(metrics, base, self.spec.z)) if metrics.get("n") else {},
                "estimated": headline(against(estimated, base_estimated, self.spec.z))
                if estimated is not None and base_estimated else {}}

    def _finished(self) -> None:
        """Forget windows whose every prediction is past ``max_delay``: no label can reach them."""
        cutoff = self.newest - self._max_delay_ms
        for key in [k for k, w in self.windows.items() if w.last_ts < cutoff and not w.changed]:
            del self.windows[key]
            self._dirty.discard(key)
            self._deleted.add(key)

    def dirty_state(self) -> dict[str, dict | None]:
        """Every changed key → its state (``None``: delete it); call :meth:`clean` after."""
        self._finished()
        buf = self.buffer.dirty_state()
        out: dict[str, dict | None] = {_BUF + k: None for k in buf["delete"]}
        out |= {_BUF + k: v for k, v in buf["put"].items()}
        for code, win in sorted(self._deleted):
            out[f"{_PERF}{code}/{win}"] = None
        for code, win in sorted(self._dirty):
            if (code, win) in self.windows:
                out[f"{_PERF}{code}/{win}"] = self.windows[(code, win)].to_state()
        out |= self.segments.dirty_state(self.windows)
        for code in sorted(self._concept_dirty):
            out[f"{_CONCEPT}{code}"] = self.concept[code].to_state()
        if self._versions_dirty:
            out[_VERSIONS] = {"format": st.FORMAT, "names": list(self.versions), "newest": int(self.newest)}
        if self.early.changed:  # bounded by max_early (20 bytes a label): written whole
            out[_EARLY] = self.early.to_state() if self.early.n else None
        return out

    def clean(self) -> None:
        self.buffer.clean()
        self.segments.clean()
        self._dirty, self._deleted, self._versions_dirty = set(), set(), False
        self._concept_dirty = set()
        self.early.changed = False

    @classmethod
    def from_state(cls, model: str, spec: LabelsSpec, count_windows: bool, states: dict[str, dict],
                   reference: dict | None = None, ages: tuple[float, ...] = ()) -> RealizedPerformance:
        """Rebuild from every stored ``labels/…`` key of the model."""
        buf_states = {k[len(_BUF):]: v for k, v in states.items() if k.startswith(_BUF)}
        out = cls(model, spec, count_windows, reference=reference, ages=ages)
        if buf_states:
            out.buffer = JoinBuffer.from_state(buf_states, max_delay_ms=out._max_delay_ms,
                                               max_pending=spec.max_pending)
            if out.buffer.sample != spec.sample:
                raise st.StateError(f"model {model}: labels.sample was {out.buffer.sample} when the pending "
                                    f"predictions were stored, now {spec.sample}; it cannot change on restore")
            out._check_segments(out.buffer.segments)
        out.segments = SegmentPerformance.from_state(model, spec, count_windows, states, out)
        if _EARLY in states:
            out.early = EarlyLabels.from_state(states[_EARLY], int(spec.early_for * 1000), spec.max_early)
        if _VERSIONS in states:
            v = st.check_format(states[_VERSIONS], f"model {model}: labels")
            out.versions = list(v["names"])
            out._codes = {name: i for i, name in enumerate(out.versions)}
            out.newest = int(v["newest"])
        for key, state in states.items():
            if key.startswith(_PERF):
                code, win = key[len(_PERF):].split("/")
                out.windows[(int(code), int(win))] = _Window.from_state(state, spec.task, spec.threshold,
                                                                        out.calibrator)
        out._restore_concept(states)
        return out

    def _check_segments(self, stored: tuple[str, ...]) -> None:
        if stored != tuple(self.spec.segments):
            raise st.StateError(f"model {self.model}: labels.segments was {list(stored)} when the pending predictions "
                                f"were stored, now {list(self.spec.segments)}; it cannot change on restore (driftline db "
                                "reset-state discards the stored state)")
    def _restore_concept(self, states: dict[str, dict]) -> None:
        """The detectors of each version; those made for another task or threshold start afresh."""
        for key, state in states.items():
            if key.startswith(_CONCEPT):
                c = ConceptDrift.from_state(st.check_format(state, f"model {self.model}: labels concept drift"))
                if (c.task, c.threshold) == (self.spec.task, self.spec.threshold):
                    self.concept[int(key[len(_CONCEPT):])] = c
