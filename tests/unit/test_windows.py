"""Tumbling windows by count and by event time."""

import numpy as np

from driftline.detectors.profile import NumericProfile, ReferenceProfile
from driftline.monitor import WindowFactory
from driftline.streams.windows import CountWindows, TimeWindows
from driftline.types import Columns, NumericColumn


def cols(ts):
    ts = np.asarray(ts, dtype=np.int64)
    x = np.arange(ts.size, dtype=float)
    return Columns(ts, {"x": NumericColumn(x, np.ones(ts.size, bool), np.zeros(ts.size, bool))})


PROFILE = ReferenceProfile("m", {"x": NumericProfile.build(np.arange(100.0), bins=10)}, 100, "t")
NEW = WindowFactory("m", "v", PROFILE)


def test_count_windows_split_a_batch_exactly():
    w = CountWindows(40, NEW)
    closed = w.add(cols(range(100)))
    assert [c.count for c in closed] == [40, 40] and w.current.count == 20
    closed = w.add(cols(range(100, 125)))
    assert [(c.seq, c.count, c.bounds) for c in closed] == [(2, 40, (80, 120))]
    w.add_invalid(3)
    assert w.current.invalid == 3


def test_time_windows_close_on_the_watermark_and_count_late_events():
    w = TimeWindows(1000, 200, NEW)
    assert w.add(cols([100, 900, 1100])) == []
    closed = w.add(cols([1250]))  # watermark 1050: the first bucket [0, 1000) closes
    assert [(c.bounds, c.count) for c in closed] == [((0, 1000), 2)]
    w.add(cols([500, 1900]))  # 500 is late: its bucket already closed
    assert w.open[1000].late == 1 and w.open[1000].count == 3
    closed = w.add(cols([2300]))
    assert [(c.bounds, c.count, c.late) for c in closed] == [((1000, 2000), 3, 1)]


def test_invalid_records_before_any_time_window_are_kept_for_the_next():
    w = TimeWindows(1000, 0, NEW)
    w.add_invalid(2)
    w.add(cols([10]))
    assert w.open[0].invalid == 2


def test_idle_time_windows_close_after_quiet_wall_clock_time():
    w = TimeWindows(1000, 0, NEW)
    w.add(cols([100, 1200, 1500]))
    w.last_arrival = 50.0
    assert w.close_idle(now=55.0, idle=10) == []
    closed = w.close_idle(now=60.0, idle=10)
    assert [(c.bounds, c.count) for c in closed] == [((1000, 2000), 2)]
    w.add(cols([1900]))  # its bucket is closed now: late
    assert sum(x.late for x in w.open.values()) == 1


def test_every_closed_window_says_why_and_its_end_is_exclusive():
    w = CountWindows(40, NEW)
    (full,) = w.add(cols(range(50)))
    assert full.closed_by == "size" and full.bounds == (0, 40)  # events 0..39 ms: [0, 40)
    (rest,) = w.close_all()
    assert (rest.closed_by, rest.count, rest.bounds) == ("end_of_input", 10, (40, 50))
    assert w.close_all() == [] and w.current is None
    w.add_invalid(2)  # a window of bad records only: still closed, at the previous end
    (bad,) = w.close_all()
    assert (bad.count, bad.invalid, bad.bounds) == (0, 2, (50, 50))
    (nxt,) = w.add(cols(range(60, 100)))
    assert nxt.seq == 3 and nxt.bounds == (60, 100)


def test_time_windows_close_by_watermark_idle_or_end_of_input():
    w = TimeWindows(1000, 0, NEW)
    (first,) = w.add(cols([100, 1200]))
    assert first.closed_by == "watermark" and first.bounds == (0, 1000)
    w.add(cols([1500, 2100, 3400]))
    closed = w.close_all()
    assert [(c.closed_by, c.bounds, c.count) for c in closed] == [
        ("end_of_input", (3000, 4000), 1)]
    assert w.open == {} and w.close_all() == []
    w.add(cols([3900]))  # its bucket is closed: late
    assert sum(x.late for x in w.open.values()) == 1
    w.last_arrival = 0.0
    assert {c.closed_by for c in w.close_idle(now=100.0, idle=10)} == {"idle"}
