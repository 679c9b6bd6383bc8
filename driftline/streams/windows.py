"""Tumbling windows per model version, by event count or by event time.

A window collects :class:`WindowStats`; ``add`` returns the windows that
closed. Open windows are checkpointed with the offsets they cover: ``to_state``
gives their bounds, counts and statistics as plain data, and ``from_state``
rebuilds them with a :class:`NewWindow` factory that also restores statistics.

Every closed window says why it closed (``closed_by``): ``size`` (a count
window is full), ``watermark`` (event time passed a time window's end),
``idle`` (no event for ``idle_close``) or ``end_of_input`` (``close_all``, at
the end of a replayed file). Its bounds are ``[start, end)`` in epoch ms.
A time window that passed without any event (the stream had a gap) is still
summarised, with count 0, once events after it arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from driftline.detectors.window import WindowStats
from driftline.types import Columns

log = logging.getLogger(__name__)

#: a gap longer than this many windows is recorded as its last MAX_EMPTY empty windows
MAX_EMPTY = 1000


class Window:
    def __init__(self, model: str, version: str, seq: int, stats: WindowStats,
                 start_ms: int | None = None, end_ms: int | None = None):
        self.model, self.version, self.seq = model, version, seq
        self.stats = stats
        self.start_ms, self.end_ms = start_ms, end_ms
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.count = 0
        self.invalid = 0
        self.late = 0
        self.closed_by: str | None = None
        self.after_ms = 0  # a count window's start when it has no events: the previous window's end

    _FIELDS = ("seq", "start_ms", "end_ms", "first_ts", "last_ts", "count", "invalid", "late", "after_ms")

    def to_state(self) -> dict:
        return {f: getattr(self, f) for f in self._FIELDS} | {"stats": self.stats.to_state()}

    @classmethod
    def from_state(cls, state: dict, new: NewWindow) -> Window:
        w = new(state["seq"], state["start_ms"], state["end_ms"], state["stats"])
        for f in cls._FIELDS:
            setattr(w, f, state[f])
        return w

    def update(self, cols: Columns) -> None:
        if cols.n == 0:
            return
        self.stats.update(cols)
        self.count += cols.n
        lo, hi = int(cols.ts.min()), int(cols.ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

    @property
    def bounds(self) -> tuple[int, int]:
        """``(start, end)`` in epoch ms, ``end`` exclusive: the time bucket, or the
        events' span (first event time, last event time + 1 ms)."""
        if self.start_ms is not None:
            return self.start_ms, self.end_ms
        if self.first_ts is None:
            return self.after_ms, self.after_ms
        return self.first_ts, self.last_ts + 1

    def close(self, reason: str) -> Window:
        self.closed_by = reason
        return self


#: ``new(seq, start, end, stats_state=None)``: an empty window, or one with restored statistics
NewWindow = Callable[..., Window]


class CountWindows:
    """Close a window every ``size`` valid events."""

    def __init__(self, size: int, new: NewWindow):
        self.size, self.new = size, new
        self.current: Window | None = None
        self.seq = 0
        self.last_end = 0  # end of the last closed window

    def to_state(self) -> dict:
        return {"kind": "count", "size": self.size, "seq": self.seq, "last_end": self.last_end,
                "current": self.current.to_state() if self.current is not None else None}

    @classmethod
    def from_state(cls, state: dict, new: NewWindow) -> CountWindows:
        out = cls(state["size"], new)
        out.seq, out.last_end = state["seq"], state["last_end"]
        out.current = Window.from_state(state["current"], new) if state["current"] is not None else None
        return out

    def _open(self) -> Window:
        if self.current is None:
            self.current = self.new(self.seq, None, None)
            self.current.after_ms = self.last_end
            self.seq += 1
        return self.current

    def _closed(self, reason: str) -> Window:
        w, self.current = self.current.close(reason), None
        self.last_end = w.bounds[1]
        return w

    def add(self, cols: Columns) -> list[Window]:
        closed, pos = [], 0
        while pos < cols.n:
            w = self._open()
            take = min(self.size - w.count, cols.n - pos)
            w.update(cols.take(slice(pos, pos + take)))
            pos += take
            if w.count >= self.size:
                closed.append(self._closed("size"))
        return closed

    def add_invalid(self, n: int) -> None:
        self._open().invalid += n

    def close_all(self) -> list[Window]:
        """Close the open window, if it holds anything (end of input)."""
        w = self.current
        if w is None or (w.count == 0 and w.invalid == 0):
            return []
        return [self._closed("end_of_input")]


class TimeWindows:
    """Event-time buckets of ``duration`` ms; a bucket closes when the watermark
    (the newest event time minus ``lateness``) passes its end. Events older than
    a closed bucket are counted as late in the oldest open one. ``close_idle``
    closes every open bucket once no event has arrived for a while, so a stream
    that goes quiet still gets its last windows summarised."""

    def __init__(self, duration_ms: int, lateness_ms: int, new: NewWindow):
        self.duration, self.lateness, self.new = duration_ms, lateness_ms, new
        self.open: dict[int, Window] = {}
        self.closed_until = np.iinfo(np.int64).min
        self.watermark = np.iinfo(np.int64).min
        self.seq = 0
        self.pending_invalid = 0
        self.last_arrival: float | None = None

    def to_state(self) -> dict:
        return {"kind": "time", "duration": self.duration, "lateness": self.lateness, "seq": self.seq,
                "closed_until": int(self.closed_until), "watermark": int(self.watermark),
                "pending_invalid": self.pending_invalid, "last_arrival": self.last_arrival,
                "open": [w.to_state() for _, w in sorted(self.open.items())]}

    @classmethod
    def from_state(cls, state: dict, new: NewWindow) -> TimeWindows:
        out = cls(state["duration"], state["lateness"], new)
        out.seq, out.closed_until, out.watermark = state["seq"], state["closed_until"], state["watermark"]
        out.pending_invalid, out.last_arrival = state["pending_invalid"], state["last_arrival"]
        out.open = {w.start_ms: w for w in (Window.from_state(x, new) for x in state["open"])}
        return out

    def _window(self, start: int) -> Window:
        if start not in self.open:
            self.open[start] = self.new(self.seq, start, start + self.duration)
            self.open[start].invalid, self.pending_invalid = self.pending_invalid, 0
            self.seq += 1
        return self.open[start]

    def add(self, cols: Columns) -> list[Window]:
        if cols.n == 0:
            return []
        starts = cols.ts - cols.ts % self.duration
        late = starts < self.closed_until
        if late.any():
            oldest = min(self.open) if self.open else int(starts[~late].min(initial=self.closed_until))
            self._window(oldest).late += int(late.sum())
        present = np.unique(starts[~late])
        if present.size:
            self._fill_gap(int(present.min()), int(present.max()))
        for start in present:
            self._window(int(start)).update(cols.take(starts == start))
        return self.advance(int(cols.ts.max()))

    def advance(self, event_time: int) -> list[Window]:
        """Close the buckets that ``event_time`` minus the lateness has passed (``add`` calls it with
        its newest event; scale-out with the newest event of the partition, any model's)."""
        self.watermark = max(self.watermark, event_time - self.lateness)
        return self._passed()

    def advance_to(self, watermark: int) -> list[Window]:
        """Close the buckets an outside ``watermark`` passed (a segment's, by its version's events)."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        return self._passed()

    def _passed(self) -> list[Window]:
        closed = []
        for start in sorted(self.open):
            if start + self.duration <= self.watermark:
                closed.append(self.open.pop(start).close("watermark"))
                self.closed_until = max(self.closed_until, start + self.duration)
        return closed

    def _fill_gap(self, oldest: int, newest: int) -> None:
        """Open an empty bucket for every window length that passed without an event before
        ``newest`` (so a gap shows as windows of count 0), from the first open or closed
        bucket, or from ``oldest`` for the first events; at most ``MAX_EMPTY`` of them."""
        if self.open:
            frontier = min(self.open)
        elif self.closed_until > np.iinfo(np.int64).min:
            frontier = self.closed_until
        else:
            frontier = oldest
        gap = (newest - frontier) // self.duration
        if gap <= 0:
            return
        if gap > MAX_EMPTY:
            log.warning("%s %s: no events for %d windows; recording the last %d of them as empty",
                        getattr(self.new, "model", "?"), getattr(self.new, "version", "?"), gap, MAX_EMPTY)
            frontier = newest - MAX_EMPTY * self.duration
        for start in range(frontier, newest, self.duration):
            if start not in self.open:
                self._window(start)

    def add_invalid(self, n: int) -> None:
        if self.open:
            self.open[max(self.open)].invalid += n
        else:
            self.pending_invalid += n

    def close_idle(self, now: float, idle: float) -> list[Window]:
        """Close all open buckets if nothing arrived in the last ``idle`` seconds (wall clock)."""
        if self.last_arrival is None or now - self.last_arrival < idle:
            return []
        return self._close_open("idle")

    def close_all(self) -> list[Window]:
        """Close every open bucket (end of input); later events for them are late."""
        return self._close_open("end_of_input")

    def _close_open(self, reason: str) -> list[Window]:
        if not self.open:
            return []
        closed = [self.open.pop(start).close(reason) for start in sorted(self.open)]
        self.closed_until = max(self.closed_until, closed[-1].end_ms)
        return closed
