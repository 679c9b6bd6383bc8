"""CPU seconds of the hot path: ``Pipeline.process`` over the bench workload, no Kafka.

The pipeline is the service's (``tests.helpers.make_pipeline``: router, no sinks) over a
real SQLite file; the first 50,000 events build the reference, then ``--events`` (200,000)
are processed in batches of 10,000 with a checkpoint after each (``force=True``), and
``time.process_time`` around those calls is the figure (with the garbage-collector
settings of ``driftline run``, ``runtime.tune_gc``; ``--stock-gc``: Python's): events (records, with ``--labels``)
per CPU second. CPU time, not wall clock, because the machine this runs on is shared and
a wall-clock rate moves with the other tenants' load.

``--scale-out`` runs the timed events through a scale-out pipeline
(``driftline/scale/pipeline.py``: 10-second windows, each event on one of six partitions at
random, as a producer without keys spreads them, all six owned by this process; the same
SQLite store, which the scale-out tests use too), merges included.

``--profile`` runs the same under pyinstrument (``pip install pyinstrument``) and prints its
tree; ``--digest`` prints a SHA-256 of every window summary (without wall-clock fields), so
two trees can be checked to produce the same summaries bit for bit.

    PYTHONPATH=. .venv/bin/python benchmarks/cpu.py [--labels] [--rounds 3] [--digest] [--profile]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import REFERENCE, WINDOW, bench_config, with_labels  # noqa: E402

from driftline.alerts.routing import Router  # noqa: E402
from driftline.config import parse_settings  # noqa: E402
from driftline.ports import NoDeadLetters  # noqa: E402
from driftline.runtime import tune_gc  # noqa: E402
from driftline.scale.pipeline import ScaleOutPipeline  # noqa: E402
from driftline.store import SqlStore  # noqa: E402
from driftline.streams.simulator import bench_events  # noqa: E402
from driftline.types import Batch, SourcePosition  # noqa: E402
from tests.helpers import make_pipeline  # noqa: E402


def _batches(values: list[bytes]) -> list[Batch]:
    out = []
    for i in range(0, len(values), WINDOW):
        part = values[i:i + WINDOW]
        out.append(Batch(part, lambda j, i=i: SourcePosition("t", 0, i + j), {("t", 0): i + len(part)}))
    return out


def workload(events: int, labels: bool) -> tuple[list[Batch], list[Batch]]:
    """The reference's batches and the timed ones (labels after each window, as ``make bench --labels``)."""
    rng = np.random.default_rng(0)
    values = bench_events(REFERENCE + events, rng)
    if labels:
        values = with_labels(values, rng)
    return _batches(values[:REFERENCE]), _batches(values[REFERENCE:])


PARTITIONS = 6


def keyless(batches: list[Batch]) -> list[Batch]:
    """The same records, each on one of :data:`PARTITIONS` partitions at random, with offsets."""
    rng = np.random.default_rng(1)
    offsets = [0] * PARTITIONS
    out = []
    for b in batches:
        parts = rng.integers(0, PARTITIONS, len(b.values)).tolist()
        positions = []
        for p in parts:
            positions.append(SourcePosition("t", p, offsets[p]))
            offsets[p] += 1
        out.append(Batch(b.values, positions.__getitem__, {("t", p): offsets[p] for p in set(parts)},
                         [("t", p) for p in parts]))
    return out


def _scale_out(settings, store, out: list) -> ScaleOutPipeline:
    cfg = bench_config("127.0.0.1:1", "t", "unused", False)
    cfg["models"][0]["window"] = {"duration": "10s", "min_count": 1000}  # 10,000 events: 1 ms apart
    cfg["kafka"]["scale_out"], cfg["store"]["url"] = True, "postgresql://unused/db"  # the store is handed in
    so = parse_settings(cfg, {})
    pipeline = ScaleOutPipeline(so, store, Router(so, {}, store, "so"), NoDeadLetters(), out.append, group="so")
    pipeline.assign([("t", p) for p in range(PARTITIONS)])
    return pipeline


def run(reference: list[Batch], timed: list[Batch], labels: bool, profiler=None,
        scale_out: bool = False) -> tuple[float, int, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(bench_config("127.0.0.1:1", "t", f"{tmp}/cpu.db", labels), {})
        out: list[dict] = []
        store = SqlStore(settings.store.url)
        pipeline = make_pipeline(settings, store, out.append)
        for b in reference:
            pipeline.process(b, force=True)
        if scale_out:  # the reference is stored: the scale-out pipeline reads it
            pipeline = _scale_out(settings, store, out)
        if profiler is not None:
            profiler.start()
        start = time.process_time()
        for b in timed:
            pipeline.process(b, force=True)
        cpu = time.process_time() - start
        if profiler is not None:
            profiler.stop()
        return cpu, sum(len(b.values) for b in timed), out


def _without_quantiles(x):
    """``x`` without the KLL sketches' quantiles: the sketch compacts at random (its C++
    generator is seeded per process), so they differ between two runs of the same code."""
    if isinstance(x, dict):
        return {k: _without_quantiles(v) for k, v in x.items() if k != "quantiles"}
    if isinstance(x, list):
        return [_without_quantiles(v) for v in x]
    return x


def digest(summaries: list[dict]) -> str:
    """Of every summary the pipeline printed (windows, performance revisions), in order."""
    h = hashlib.sha256()
    for s in summaries:
        h.update(orjson.dumps(_without_quantiles(s), option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--labels", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--digest", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--scale-out", action="store_true", help="a scale-out pipeline owning six partitions")
    ap.add_argument("--stock-gc", action="store_true",
                    help="Python's garbage-collector settings, not the service's (runtime.tune_gc)")
    args = ap.parse_args()
    if args.scale_out and args.labels:
        ap.error("--scale-out does not take --labels yet")
    reference, timed = workload(args.events, args.labels)
    if args.scale_out:
        timed = keyless(timed)
    if not args.stock_gc:
        tune_gc()  # as `driftline run` does
    if args.profile:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.0005)
        cpu, n, _ = run(reference, timed, args.labels, profiler, args.scale_out)
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        print(f"{n / cpu:,.0f} records per CPU second (under the profiler)")
        return
    rates = []
    for _ in range(args.rounds):
        cpu, n, out = run(reference, timed, args.labels, scale_out=args.scale_out)
        rates.append(n / cpu)
        line = f"{n:,} records in {cpu:.2f} CPU s: {n / cpu:,.0f} per CPU second"
        if args.digest:
            line += f"; {sum(s['type'] == 'window' for s in out)} windows, digest {digest(out)}"
        print(line, flush=True)
    print(f"median {sorted(rates)[len(rates) // 2]:,.0f} records per CPU second")


if __name__ == "__main__":
    main()
