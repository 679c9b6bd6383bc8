"""10 million predictions waiting for their labels, in the pipeline (not the buffer alone):
the resident memory of the whole process, the buffer's bytes per pending prediction, and
what the checkpoints wrote. ``python benchmarks/pending.py [N]`` (default 10,000,000).

A model of two numeric features and a score, count windows of 10,000, a reference of the
first 10,000 events, ``labels: {max_pending: N}``; events in batches of 50,000 through
``Pipeline.process`` into SQLite, a checkpoint every 5 s; no label is sent, so every
windowed prediction stays pending.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.store import SqlStore
from driftline.types import Batch, SourcePosition

START = 1_795_000_000_000


def status(field: str) -> int:
    """A ``/proc/self/status`` figure, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def batch(first: int, n: int, rng) -> list[bytes]:
    x, y = rng.normal(size=n), rng.normal(size=n)
    p = (1 / (1 + np.exp(-x))).tolist()
    x, y = x.tolist(), y.tolist()
    # formatted, not orjson.dumps: each bytes orjson returns here holds a 4 kB allocation (tracemalloc
    # saw 195 MiB for 50,000 records), which would be counted as driftline's memory; Kafka's are exact
    return [(f'{{"model":"m","version":"v1","id":"{first + i:016x}","ts":{START + first + i},'
             f'"features":{{"x":{x[i]!r},"y":{y[i]!r}}},"prediction":{p[i]!r}}}').encode() for i in range(n)]


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "p.db"
        cfg = {"store": {"url": f"sqlite:///{db}"}, "alerts": {"console": False, "topic": None, "retrain_topic": None},
               "models": [{"name": "m", "features": {"x": "numeric", "y": "numeric"}, "prediction": "numeric",
                           "window": {"size": 10_000, "min_count": 1000}, "reference": {"first_n": 10_000},
                           "labels": {"max_pending": n, "max_delay": "30d"}}]}
        settings = parse_settings(cfg, {})
        store = SqlStore(cfg["store"]["url"])
        p = Pipeline(settings, store, Router(settings, {}, store, "g"), NoDeadLetters(), lambda line: None,
                     group="g", checkpoint_every=5.0)
        total, size, t0 = n + 10_000, 50_000, time.perf_counter()
        print(f"RSS at the start: {status('VmRSS') / 2**20:,.0f} MiB")
        for first in range(0, total, size):
            values = batch(first, min(size, total - first), rng)
            p.process(Batch(values, lambda i, f=first: SourcePosition("t", 0, f + i), {("t", 0): first + len(values)}))
            if first in (0, 50_000, 100_000, 1_000_000):
                print(f"RSS after {first + size:,} events: {status('VmRSS') / 2**20:,.0f} MiB")
        p.process(Batch([], lambda i: None, {}), force=True)
        elapsed = time.perf_counter() - t0
        buf = p.labels["m"].buffer
        print(f"{buf.pending:,} pending predictions after {total:,} events in {elapsed:.0f} s "
              f"({total / elapsed:,.0f} events/s, JSON encoding of the events included)")
        print(f"buffer arrays: {buf.nbytes / 2**20:,.0f} MiB, {buf.nbytes / max(buf.pending, 1):.1f} B per pending "
              f"prediction")
        print(f"process RSS {status('VmRSS') / 2**20:,.0f} MiB, peak {status('VmHWM') / 2**20:,.0f} MiB; "
              f"SQLite file {db.stat().st_size / 2**20:,.0f} MiB")
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
