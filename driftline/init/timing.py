"""Windows and a reference from the sampled event times.

A window should hold a few thousand events (:data:`TARGET`): enough for the tests to
see a real shift, few enough to see it soon. With timestamps that is a duration at the
observed rate, rounded to a readable one; without, or when it would exceed a day, a
count.

>>> nice_duration(47.0)
'1m'
>>> propose_window(ts_ms=list(range(0, 100_000, 10)), n_after_reference=5000).duration
'1m'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TARGET = 5000  # events per window
NICE = [("1s", 1), ("2s", 2), ("5s", 5), ("10s", 10), ("15s", 15), ("30s", 30), ("1m", 60), ("2m", 120),
        ("5m", 300), ("10m", 600), ("15m", 900), ("30m", 1800), ("1h", 3600), ("2h", 7200), ("3h", 10800),
        ("6h", 21600), ("12h", 43200), ("1d", 86400)]
REFERENCE_MAX = 50_000


@dataclass(frozen=True)
class WindowProposal:
    duration: str | None  # e.g. "5m"; None: a count window
    size: int | None
    allowed_lateness: str | None
    idle_close: str | None
    min_count: int | None  # None: the default (100)
    rate: float | None  # events per second in the sample
    why: str


def nice_duration(seconds: float) -> str:
    """The readable duration nearest to ``seconds`` on a log scale (1s … 1d)."""
    seconds = max(seconds, 1.0)
    return min(NICE, key=lambda item: abs(math.log(item[1] / seconds)))[0]


def seconds_of(text: str) -> int:
    return dict(NICE)[text]


def lateness(ts_ms: list[int]) -> float:
    """How far (seconds) an event arrived behind the latest one before it: the most of the sample."""
    latest, worst = -math.inf, 0.0
    for t in ts_ms:
        worst = max(worst, latest - t)
        latest = max(latest, t)
    return worst / 1000


def _round_up(seconds: float) -> str:
    return next((text for text, s in NICE if s >= seconds), "1d")


def _min_count(expected: float) -> int | None:
    return None if expected >= 400 else max(1, int(expected // 4))


def count_window(n_after_reference: int, why: str) -> WindowProposal:
    size = int(min(TARGET, max(100, n_after_reference // 2)))
    return WindowProposal(None, size, None, None, _min_count(size), None,
                          f"{why}; {size} events per window")


def propose_window(ts_ms: list[int], n_after_reference: int) -> WindowProposal:
    """A duration holding about :data:`TARGET` events at the sample's rate, else a count."""
    span = (max(ts_ms) - min(ts_ms)) / 1000 if ts_ms else 0.0
    if len(ts_ms) < 2 or span <= 0:
        return count_window(n_after_reference, "the timestamps do not advance")
    rate = (len(ts_ms) - 1) / span
    if TARGET / rate > 86400:
        return count_window(n_after_reference, f"only {rate * 86400:.0f} events a day: a time window holding "
                                               f"{TARGET} would be longer than a day")
    duration = nice_duration(TARGET / rate)
    expected = rate * seconds_of(duration)
    late = lateness(ts_ms)
    allowed = _round_up(late) if late > 0 else None
    if allowed is not None and seconds_of(allowed) >= seconds_of(duration):
        allowed = duration
    idle = nice_duration(2 * seconds_of(duration))
    why = (f"{_rate(rate)} events/s over {span:.0f} s of event time: {duration} windows hold about "
           f"{expected:.0f} events (aim: a few thousand)")
    if allowed:
        why += f"; events arrive up to {late:.3g} s out of order, so allowed_lateness {allowed}"
    return WindowProposal(duration, None, allowed, idle, _min_count(expected), rate, why)


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def first_n(n: int) -> int:
    """The sample's first half (at least 100, at most :data:`REFERENCE_MAX`): the rest shows windows."""
    return int(min(REFERENCE_MAX, max(100, n // 2)))
