"""Where the hot path's CPU goes: ``benchmarks/cpu.py``'s workload with exclusive CPU time
(``time.process_time``, every thread of the process) per stage.

Each stage is a method wrapped for the run; a stage's time excludes the stages called
inside it, so the rows add up to the total. ``other`` is what no wrapped stage covers
(the pipeline's own loop, batch slicing, the router).

    PYTHONPATH=. .venv/bin/python benchmarks/breakdown.py [--labels]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu  # noqa: E402

STAGES = [  # (module, class or None, attribute, stage)
    ("driftline.streams.arrow_decode", None, "pj.read_json", "decode: pyarrow read_json"),
    ("driftline.streams.decode", None, "parse_ts", "decode: timestamps"),
    ("driftline.streams.decode", "Decoder", "decode_records", "decode: record path (labels)"),
    ("driftline.streams.decode", "Decoder", "decode", "decode: checks, columns"),
    ("driftline.monitor", None, "assign_windows", "windows: assignment (labels)"),
    ("driftline.streams.windows", "CountWindows", "add", "windows: slicing"),
    ("driftline.detectors.stats", "NumericStats", "update", "statistics: numeric"),
    ("driftline.detectors.stats", "CategoricalStats", "update", "statistics: categorical (table)"),
    ("driftline.detectors.window", "WindowStats", "update", "statistics: categorical (counting), extra fields"),
    ("driftline.detectors.multivariate", "Multivariate", "update", "statistics: PCA errors"),
    ("driftline.detectors.online", "AdwinTest", "update", "sequence: ADWIN on the prediction"),
    ("driftline.monitor", "ModelMonitor", "summarise", "tests at close (summary)"),
    ("driftline.alerts.routing", "Router", "route", "alert routing"),
    ("driftline.realized", "RealizedPerformance", "add", "labels: hold predictions"),
    ("driftline.realized", "RealizedPerformance", "join", "labels: join"),
    ("driftline.realized", "RealizedPerformance", "expire", "labels: expire"),
    ("driftline.pipeline", "Pipeline", "_with_state", "checkpoint: state to_state + encode"),
    ("driftline.store.sql", "SqlStore", "commit", "commit (SQLite)"),
    ("driftline.pipeline", "Pipeline", "process", "other"),
]


class Clock:
    def __init__(self):
        self.total: dict[str, float] = {}
        self.stack: list[list[float]] = []

    def wrap(self, fn, stage: str):
        @functools.wraps(fn)
        def timed(*a, **kw):
            frame = [time.process_time(), 0.0]
            self.stack.append(frame)
            try:
                return fn(*a, **kw)
            finally:
                self.stack.pop()
                spent = time.process_time() - frame[0]
                self.total[stage] = self.total.get(stage, 0.0) + spent - frame[1]
                if self.stack:
                    self.stack[-1][1] += spent
        return timed


def install(clock: Clock) -> None:
    import importlib
    for module, cls, attr, stage in STAGES:
        owner = importlib.import_module(module)
        if cls is not None:
            owner = getattr(owner, cls)
        *path, name = attr.split(".")
        for p in path:
            owner = getattr(owner, p)
        setattr(owner, name, clock.wrap(getattr(owner, name), stage))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--labels", action="store_true")
    args = ap.parse_args()
    reference, timed = cpu.workload(args.events, args.labels)
    clock = Clock()
    install(clock)
    # the reference's batches are not counted: the clock is reset where timing starts
    spent, n, _ = cpu.run(reference, timed, args.labels, profiler=_Reset(clock))
    print(f"{n:,} records, {spent:.2f} CPU s ({n / spent:,.0f} per CPU second)")
    for stage, s in sorted(clock.total.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<52} {s:6.3f} s  {100 * s / spent:5.1f} %  {1e6 * s / n:6.2f} µs/record")


class _Reset:
    """Stands in for cpu.run's profiler: clears the clock where timing starts."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def start(self):
        self.clock.total.clear()

    def stop(self):
        pass


if __name__ == "__main__":
    main()
