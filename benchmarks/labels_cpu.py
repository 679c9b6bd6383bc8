"""CPU time of ``Pipeline.process`` over the labelled bench workload (`bench.py --labels`):
no Kafka, SQLite, a checkpoint per batch of 10,000 records, the records after the reference.

    python benchmarks/labels_cpu.py [SEGMENTS] [EVENTS]   # SEGMENTS: the first N categorical features
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
from bench import REFERENCE, WINDOW, bench_config, with_labels

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.ports import NoDeadLetters
from driftline.store import SqlStore
from driftline.streams.simulator import bench_events
from driftline.types import Batch, SourcePosition


def main() -> None:
    segments = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 250_000
    rng = np.random.default_rng(0)
    values = with_labels(bench_events(n, rng), rng)
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(bench_config("localhost:1", "t", f"{tmp}/b.db", True, segments), {})
        store = SqlStore(settings.store.url)
        p = Pipeline(settings, store, Router(settings, {}, store), NoDeadLetters(), [].append, checkpoint_every=0.0)
        cpu, records = 0.0, 0
        for k in range(0, len(values), WINDOW):
            batch = Batch(values[k:k + WINDOW], lambda i: SourcePosition("t", 0, i), {("t", 0): k + WINDOW})
            t0 = time.process_time()
            p.process(batch)
            if k >= REFERENCE:
                cpu += time.process_time() - t0
                records += len(batch.values)
        rows = len(store.results.performance("bench"))
    print(f"segments={segments}: {records:,} records, {records / cpu:,.0f} records per CPU second; "
          f"{rows} performance rows")


if __name__ == "__main__":
    main()
