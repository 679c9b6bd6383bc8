"""CPU time of ``Pipeline.process`` with drift (and, with ``--labels``, performance) per segment:
the bench workload (``bench.py``) with its first N categorical features as the model's ``segments``.

    PYTHONPATH=. .venv/bin/python benchmarks/segments_cpu.py [--segments N] [--labels] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import bench_config  # noqa: E402
from cpu import workload  # noqa: E402

from driftline.config import parse_settings  # noqa: E402
from driftline.store import SqlStore  # noqa: E402
from tests.helpers import make_pipeline  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=1, choices=range(6))
    ap.add_argument("--labels", action="store_true")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    reference, timed = workload(args.events, args.labels)
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            settings = parse_settings(bench_config("127.0.0.1:1", "t", f"{tmp}/cpu.db", args.labels,
                                                   args.segments), {})
            out: list[dict] = []
            p = make_pipeline(settings, SqlStore(settings.store.url), out.append)
            t0 = time.process_time()
            for b in reference:
                p.process(b, force=True)
            t1 = time.process_time()
            for b in timed:
                p.process(b, force=True)
            cpu = time.process_time() - t1
            n = sum(len(b.values) for b in timed)
            windows = [o for o in out if o["type"] == "window"]
            print(f"segments={args.segments} labels={args.labels}: {n / cpu:,.0f} records per CPU second; "
                  f"reference phase {t1 - t0:.1f} CPU s; {len(windows)} windows, "
                  f"{sum(bool(w['drifted']) for w in windows)} drifted", flush=True)


if __name__ == "__main__":
    main()
