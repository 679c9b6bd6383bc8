"""Realized performance per segment: beside each (version, window) accumulator of
:class:`~driftline.realized.RealizedPerformance`, one per (segment feature, value) that
has labels (docs/labels.md, "Segments").

Pure, like its owner. A window's predictions are counted per segment as the join buffer
takes them (``count`` of a segment's line); a joined label is credited to its
prediction's segment of every segment feature. State, under ``labels/seg/``: ``codes``
(the :class:`~driftline.labels.segments.SegmentCodes` tables), ``<version code>/<window>/n``
(the window's prediction counts per feature and code) and
``<version code>/<window>/<feature index>/<code>`` (one segment's accumulator), each
written when it changed and deleted with its window.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

import numpy as np

from driftline import state as st
from driftline.config.settings import LabelsSpec
from driftline.detectors.performance import BinaryStats, DelayStats, RegressionStats
from driftline.detectors.performance.estimation import EstimatedStats
from driftline.detectors.performance.isotonic import Calibrator
from driftline.labels.segments import MISSING, SegmentCodes
from driftline.types import iso

SEG = "labels/seg/"
_CODES = SEG + "codes"
_OFFSET = -MISSING  # counts are indexed by code + 2: (missing), (other), then the values
_CODE_MIN = int(np.iinfo(np.int16).min)


def merge_shares(into, other) -> None:
    """Add ``other``'s labelled statistics, delays and estimate to ``into`` (a window's or a
    segment's accumulator, two partitions' shares in scale-out); the estimate is kept only when
    both have one made with the same calibrator."""
    into.stats.merge(other.stats)
    into.delay.merge(other.delay)
    try:
        if into.est is None or other.est is None:
            raise ValueError("not estimated")
        into.est.merge(other.est)
    except ValueError:  # one was estimated with another reference's calibrator (or not): no estimate
        into.est = None


class _Segment:
    """One (version, window, feature, code)'s accumulated performance, and its estimate."""

    def __init__(self, spec: LabelsSpec, calibrator: Calibrator | None = None):
        self.stats = BinaryStats(spec.threshold) if spec.task == "binary" else RegressionStats()
        self.est = EstimatedStats(calibrator, spec.threshold) if calibrator is not None else None
        self.delay = DelayStats()
        self.revision = 0
        self.changed = False

    def merge(self, other: _Segment) -> None:
        """Add another partition's accumulator of the same segment (scale-out's merge); the estimate
        is kept only when both have one (``_Window.merge``)."""
        merge_shares(self, other)

    def to_state(self) -> dict:
        return {"format": st.FORMAT, "revision": self.revision, "stats": self.stats.to_state(),
                "delay": self.delay.to_state(), "est": None if self.est is None else self.est.to_state()}

    @classmethod
    def from_state(cls, state: dict, spec: LabelsSpec, calibrator: Calibrator | None = None) -> _Segment:
        st.check_format(state, "labels: segment performance")
        s = cls(spec)
        s.stats = (BinaryStats if spec.task == "binary" else RegressionStats).from_state(state["stats"])
        s.delay, s.revision = DelayStats.from_state(state["delay"]), int(state["revision"])
        if state.get("est") is not None and calibrator is not None:
            try:
                s.est = EstimatedStats.from_state(state["est"], calibrator)
            except ValueError:  # made with another reference's calibrator: no estimate for this window
                s.est = None
        return s


def _groups(keys: np.ndarray):
    """``(key, positions)`` for every distinct value of the 1-d integer ``keys``."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=uniq.size))[:-1]
    return zip(uniq.tolist(), np.split(order, bounds))


class SegmentPerformance:
    """Per-segment prediction counts and accumulators of one model's windows."""

    def __init__(self, model: str, spec: LabelsSpec, count_windows: bool):
        self.model, self.spec, self.count_windows = model, spec, count_windows
        self.features = tuple(spec.segments)
        self.table = SegmentCodes(self.features, spec.max_segments)
        self.counts: dict[tuple[int, int], list[np.ndarray]] = {}
        self.segments: dict[tuple[int, int, int, int], _Segment] = {}
        self._dirty_counts: set[tuple[int, int]] = set()
        self._dirty: set[tuple[int, int, int, int]] = set()
        self._deleted: set[str] = set()
        self.set_reference(None, None)

    def set_reference(self, calibrator: Calibrator | None, reference: dict | None,
                      compared=None) -> None:
        """The owner's calibrator (a binary model's segments are estimated with it, from the
        windows created from now on), the reference's performance per segment
        (``ReferenceProfile.performance["segments"]``) and the owner's ``_compared`` builder."""
        self.calibrator, self.reference, self._compared = calibrator, reference or {}, compared

    def _segment(self, key: tuple[int, int, int, int]) -> _Segment:
        s = self.segments.get(key)
        return s if s is not None else self.segments.setdefault(key, _Segment(self.spec, self.calibrator))

    def codes(self, values: Mapping[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
        """The batch's segment codes per feature (``values``: each feature's decoded column values)."""
        if not self.features:
            return {}
        if values is None or set(values) != set(self.features):
            raise ValueError(f"segments: the values of {list(self.features)} expected, got "
                             f"{None if values is None else sorted(values)}")
        out = self.table.codes(values)
        if any(c.shape != (n,) for c in out.values()):
            raise ValueError(f"segments: one value per event ({n}) expected")
        return out

    # -- predictions and labels ---------------------------------------------------------

    def count(self, code: int, win: int, codes: Mapping[str, np.ndarray], preds: np.ndarray | None = None) -> None:
        """Count predictions the buffer took for window ``(code, win)``, by segment, and add their
        scores (``preds``) to the segments' estimates."""
        if not self.features:
            return
        have = self.counts.setdefault((code, win), [np.zeros(0, np.int64) for _ in self.features])
        for i, f in enumerate(self.features):
            add = np.bincount(codes[f].astype(np.int64) + _OFFSET)
            if add.size > have[i].size:
                have[i] = np.pad(have[i], (0, add.size - have[i].size))
            have[i][:add.size] += add
            if self.calibrator is not None and preds is not None:
                for c, sel in _groups(codes[f].astype(np.int64)):
                    key = (code, win, i, c)
                    s = self._segment(key)
                    if s.est is not None:
                        s.est.update(preds[sel])
                        self._dirty.add(key)
        self._dirty_counts.add((code, win))

    def closed(self, code: int, win: int) -> None:
        """Window ``(code, win)`` closed: each segment's estimate is complete, and is revised."""
        for key, s in self.segments.items():
            if key[:2] == (code, win) and s.est is not None and s.est.n:
                s.changed = True
                self._dirty.add(key)

    def credit(self, j) -> None:
        """Credit a batch's joined labels (a :class:`~driftline.labels.joined.Joined`) to their segments."""
        if not j.n or not self.features:
            return
        pairs, vw = np.unique(np.stack([j.version.astype(np.int64), j.window.astype(np.int64)], axis=1), axis=0,
                              return_inverse=True)
        pairs, vw = pairs.tolist(), vw.ravel().astype(np.int64) << 16  # (version, window) index, then the code
        pred, label, delay = j.pred.astype(np.float64), j.label, j.delay / 1000.0
        for i, f in enumerate(self.features):
            for k, sel in _groups(vw | (j.segments[f].astype(np.int64) - _CODE_MIN)):
                key = (*pairs[k >> 16], i, (k & 0xFFFF) + _CODE_MIN)
                s = self._segment(key)
                if self.spec.task == "binary":
                    s.stats.update(pred[sel], label[sel])
                else:
                    s.stats.update(label[sel], pred[sel])
                s.delay.update(delay[sel])
                s.changed = True
                self._dirty.add(key)

    # -- output -------------------------------------------------------------------------

    def revisions(self, windows: Mapping[tuple[int, int], object]) -> list[dict]:
        """A line for every segment whose labels changed since the last call (``revision`` + 1);
        ``windows``: the owner's whole-version accumulators (their window's bounds)."""
        out = []
        for key in sorted(self._dirty):
            s, w = self.segments.get(key), windows.get(key[:2])
            if s is None or w is None or not s.changed:
                continue
            s.revision += 1
            s.changed = False
            out.append(self._line(w, key, s))
        return out

    def _count(self, key: tuple[int, int, int, int]) -> int:
        arr = self.counts.get(key[:2], [np.zeros(0, np.int64)] * len(self.features))[key[2]]
        at = key[3] + _OFFSET
        return int(arr[at]) if at < arr.size else 0

    def _line(self, w, key: tuple[int, int, int, int], s: _Segment) -> dict:
        count, labelled = self._count(key), s.stats.n
        share = labelled / count if count else None
        delay, feature = s.delay.metrics(), self.features[key[2]]
        value = self.table.value(feature, key[3])
        metrics = s.stats.metrics()
        estimated = s.est.metrics() if s.est is not None and s.est.n else None
        ref = (self.reference.get(feature) or {}).get(value)
        against = None if ref is None or self._compared is None else \
            {"n": ref["n"]} | self._compared(metrics, estimated, ref["metrics"], ref.get("estimated"))
        return {"type": "performance", "model": self.model, "version": w.version,
                "window": {"start": None if w.start is None else iso(w.start),
                           "end": None if w.end is None else iso(w.end), "seq": w.seq},
                "window_kind": "count" if self.count_windows else "time", "window_key": w.window,
                "task": self.spec.task, "count": count, "labelled": labelled, "labelled_share": share,
                "delay": {k: delay[k] for k in ("p50", "p90", "max", "mean")},
                "segment": {"feature": feature, "value": value},
                "metrics": metrics, "estimated": estimated, "reference": against, "findings": [],
                "enough": share is not None and share >= self.spec.min_labelled, "revision": s.revision}

    # -- scale-out ----------------------------------------------------------------------

    def changes(self) -> tuple[set[tuple[int, int, int, int]], set[tuple[int, int]]]:
        """The segments whose line is due (their ``changed`` reset, as :meth:`revisions` does), and the
        windows whose counts or accumulators changed since :meth:`clean` (scale-out's partials)."""
        due = {k for k in self._dirty if (s := self.segments.get(k)) is not None and s.changed}
        for key in due:
            self.segments[key].changed = False
        return due, {k[:2] for k in self._dirty} | self._dirty_counts

    def shares(self, vw: tuple[int, int]) -> list[tuple[int, int, int, _Segment | None]]:
        """Window ``vw``'s segments here: ``(feature index, code, predictions, accumulator or None)``."""
        keys = {k[2:] for k in self.segments if k[:2] == vw}
        for i, arr in enumerate(self.counts.get(vw, ())):
            keys |= {(i, at - _OFFSET) for at in np.flatnonzero(arr).tolist()}
        return [(i, c, self._count((*vw, i, c)), self.segments.get((*vw, i, c))) for i, c in sorted(keys)]

    # -- state --------------------------------------------------------------------------

    def _forget(self, live: Container[tuple[int, int]]) -> None:
        """Drop (and delete the keys of) the windows their owner forgot."""
        for vw in [k for k in self.counts if k not in live]:
            del self.counts[vw]
            self._dirty_counts.discard(vw)
            self._deleted.add(f"{SEG}{vw[0]}/{vw[1]}/n")
        for key in [k for k in self.segments if k[:2] not in live]:
            del self.segments[key]
            self._dirty.discard(key)
            self._deleted.add(f"{SEG}{key[0]}/{key[1]}/{key[2]}/{key[3]}")

    def dirty_state(self, live: Container[tuple[int, int]]) -> dict[str, dict | None]:
        """Every changed key → its state (``None``: delete it); ``live``: the owner's windows."""
        self._forget(live)
        out: dict[str, dict | None] = dict.fromkeys(sorted(self._deleted))
        for vw in sorted(self._dirty_counts):
            out[f"{SEG}{vw[0]}/{vw[1]}/n"] = {"format": st.FORMAT,
                                               "counts": {f: c.copy() for f, c in zip(self.features, self.counts[vw])}}
        for key in sorted(self._dirty):
            out[f"{SEG}{key[0]}/{key[1]}/{key[2]}/{key[3]}"] = self.segments[key].to_state()
        if self.table.dirty:
            out[_CODES] = self.table.to_state()
        return out

    def clean(self) -> None:
        self._dirty_counts, self._dirty, self._deleted = set(), set(), set()
        self.table.stored()

    @classmethod
    def from_state(cls, model: str, spec: LabelsSpec, count_windows: bool,
                   states: Mapping[str, dict], owner=None) -> SegmentPerformance:
        """Rebuild from the stored ``labels/seg/…`` keys (others are ignored); ``owner``: the
        :class:`~driftline.realized.RealizedPerformance` whose reference and calibrator it takes."""
        out = cls(model, spec, count_windows)
        if owner is not None:
            owner.share_reference(out)
        if _CODES in states:
            out.table = SegmentCodes.from_state(states[_CODES], out.features, spec.max_segments,
                                                f"model {model}: labels segments")
        for key, state in states.items():
            if not key.startswith(SEG) or key == _CODES:
                continue
            parts = [int(p) for p in key[len(SEG):].replace("/n", "").split("/")]
            if len(parts) == 2:
                st.check_format(state, f"model {model}: labels segment counts")
                out.counts[(parts[0], parts[1])] = [np.asarray(state["counts"][f], dtype=np.int64)
                                                    for f in out.features]
            else:
                out.segments[tuple(parts)] = _Segment.from_state(state, spec, out.calibrator)
        return out
