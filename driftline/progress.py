"""Progress on long work (replay, reference, init): a tqdm bar with rate and ETA on a
terminal; off a terminal, an info log line now and then (every :data:`LOG_EVERY` s)."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("driftline.progress")
LOG_EVERY = 30.0


class Progress:
    """Counts ``unit`` (bytes by default) towards ``total``; ``to(done)`` or ``advance(n)``."""

    def __init__(self, what: str, total: int | None, unit: str = "B", stream=None, clock=time.monotonic):
        self.what, self.total, self.unit, self.clock = what, total, unit, clock
        stream = stream or sys.stderr
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, desc=what, unit=unit, unit_scale=True, unit_divisor=1024 if unit == "B" else 1000,
                        file=stream, disable=not self.tty, leave=False, dynamic_ncols=True)
        self.done, self._started, self._logged = 0, clock(), clock()

    def advance(self, n: int) -> None:
        self.to(self.done + n)

    def to(self, done: int) -> None:
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done
        if not self.tty and self.clock() - self._logged >= LOG_EVERY:
            self._logged = self.clock()
            log.info("%s: %s", self.what, self.line())

    def line(self) -> str:
        """``12.0 MB of 40.0 MB (30%), 1.2 MB/s`` — what the log says off a terminal."""
        rate = self.done / max(self.clock() - self._started, 1e-9)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        of = f" of {_size(self.total, self.unit)}" if self.total else ""
        return f"{_size(self.done, self.unit)}{of}{share}, {_size(rate, self.unit)}/s"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _size(n: float, unit: str) -> str:
    return tqdm.format_sizeof(n, suffix=unit, divisor=1024 if unit == "B" else 1000)


class Tracked:
    """A file source whose polls move a :class:`Progress` to the bytes read so far."""

    def __init__(self, source, progress: Progress):
        self.source, self.progress = source, progress

    def poll(self):
        batch = self.source.poll()
        self.progress.to(self.source.bytes_read())
        return batch

    def __getattr__(self, name: str):
        return getattr(self.source, name)
