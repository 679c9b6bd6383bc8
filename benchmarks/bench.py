"""`make bench`: driftline end to end on the embedded broker, against the raw limits
measured in the same run.

Workload: events of 20 numeric + 5 categorical features and a prediction (JSON),
windows of 10,000 events, reference of the first 50,000; one partition.
Printed: events/s for (a) confluent-kafka consume(10000) alone, (b) consume +
orjson.loads per event — the limit a Python consumer can reach, (b') the same bare
consumer with the garbage-collector settings `driftline run` uses (``runtime.tune_gc``;
(c) and (d) run with them too), (c) driftline's
decode + window statistics without Kafka, (d) driftline end to end (consume,
decode, windows, drift tests, SQLite commits), and the ratios (d)/(b) and (d)/(b');
then the checkpoint's cost (benchmarks/checkpoint.py).
Timing starts at the first record received, so consumer-group join is excluded; (c)
and (d) count the events after the reference (building and calibrating it is a one-off
per model, printed on its own). (b), (b') and (d) are measured ``--rounds`` times in turn
(default 3: on two shared cores one measurement of each moved the ratio by ±0.2), and
the medians and each round's ratio are printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import time
import uuid

import numpy as np
import orjson
from confluent_kafka import Consumer

from driftline.app import build_service
from driftline.config import parse_settings
from driftline.ports import NoDeadLetters
from driftline.runtime import tune_gc
from driftline.store import SqlStore
from driftline.streams.broker import EmbeddedBroker
from driftline.streams.decode import Decoder
from driftline.streams.kafka import CONSUMER_DEFAULTS, KafkaProducer, KafkaSource, ensure_topics
from driftline.streams.simulator import bench_events
from driftline.types import Batch, SourcePosition

REFERENCE, WINDOW = 50_000, 10_000
SEGMENT_REFERENCE = 2_000  # events a segment collects for its own reference (--segments)


def bench_config(bootstrap: str, topic: str, db: str, labels: bool = False, segments: int = 0) -> dict:
    feats = ({f"feat_{j:02d}": "numeric" for j in range(20)}
             | {f"cat_{j:02d}": "categorical" for j in range(5)})
    return {"kafka": {"bootstrap_servers": bootstrap, "topics": [topic], "group_id": f"bench-{uuid.uuid4().hex[:8]}",
                      "batch_size": 10_000, "poll_timeout": "200ms"},
            "store": {"url": f"sqlite:///{db}"}, "alerts": {"console": False, "topic": None, "retrain_topic": None},
            "models": [{"name": "bench", "features": feats, "prediction": "numeric",
                        "window": {"size": WINDOW, "min_count": 1000},
                        "reference": {"first_n": REFERENCE, "segment_first_n": SEGMENT_REFERENCE}}
                       | ({"segments": [f"cat_{j:02d}" for j in range(segments)]} if segments else {})
                       | ({"labels": {}} if labels else {})]}


def with_labels(values: list[bytes], rng) -> list[bytes]:
    """After each window's events, labels for half the events of the window before (in random order)."""
    out = []
    for k in range(0, len(values), WINDOW):
        out += values[k:k + WINDOW]
        if k >= REFERENCE + WINDOW:
            prev = np.arange(k - WINDOW, k)
            for i in rng.permutation(prev)[:WINDOW // 2].tolist():
                out.append(orjson.dumps({"model": "bench", "id": f"{i:016x}", "ts": 1_795_000_000_000 + k + 5,
                                         "label": int(rng.random() < 0.5)}))
    return out


def stock_gc() -> None:
    """Python's own collector settings, for (b): what a consumer loop gets unless it tunes them."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)


def consume_all(bootstrap: str, topic: str, n: int, decode: bool) -> float:
    c = Consumer(CONSUMER_DEFAULTS | {"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}"})
    c.subscribe([topic])
    got, start = 0, None
    loads = orjson.loads
    while got < n:
        msgs = c.consume(10_000, 1.0)
        if msgs and start is None:
            start = time.perf_counter()
        if decode:
            docs = [loads(m.value()) for m in msgs]
            del docs
        got += len(msgs)
    elapsed = time.perf_counter() - start
    c.close()
    return n / elapsed


def decode_only(settings, values: list[bytes], columnar: bool = True) -> float:
    from driftline.monitor import ModelMonitor
    decoder = Decoder(settings.models)
    if not columnar:  # what a batch with a bad record in it goes through
        decoder.decode = decoder.decode_records
    monitor = ModelMonitor(settings.models[0])
    pos = lambda i: SourcePosition("t", 0, i)  # noqa: E731
    for i in range(0, REFERENCE, WINDOW):
        d = decoder.decode(Batch(values[i:i + WINDOW], pos))
        monitor.ingest("v1", d.groups[("bench", "v1")])
    if settings.models[0].labels is not None:  # the pipeline's share of labels is in (d), not here
        values = [v for v in values if b'"features"' in v]
    start = time.perf_counter()
    n = 0
    for i in range(REFERENCE, len(values), WINDOW):
        d = decoder.decode(Batch(values[i:i + WINDOW], pos))
        closed, _ = monitor.ingest("v1", d.groups[("bench", "v1")])
        for w in closed:
            monitor.summarise(w)
        n += len(values[i:i + WINDOW])
    return n / (time.perf_counter() - start)


def end_to_end(settings, n_total: int, tmp: str) -> tuple[float, int, float]:
    """Events per second once the reference exists (the batches that build and calibrate
    it are left out of the rate and timed on their own: a one-off per model, stored after)."""
    store = SqlStore(settings.store.url)
    k = settings.kafka
    source = KafkaSource({"bootstrap.servers": k.bootstrap_servers}, k.group_id, k.topics, {}, k.batch_size,
                         k.poll_timeout)
    windows: list[dict] = []
    svc = build_service(settings, store, source, NoDeadLetters(), {}, windows.append)
    monitor = svc.pipeline.monitors["bench"]
    consumed, start, reference_s = 0, None, 0.0
    expected = (n_total - REFERENCE) // WINDOW
    while sum(w["type"] == "window" for w in windows) < expected:
        t0 = time.perf_counter()
        batch = source.poll()
        building = monitor.profile is None
        offsets = svc.guard.process(batch)  # the service's path: through the poison-pill guard
        if offsets:
            source.commit(offsets)
        if building:
            reference_s += time.perf_counter() - t0 if batch.values else 0.0
            continue
        if batch.values and start is None:
            start = t0
        if start is not None:
            consumed += len(batch.values)
    elapsed = time.perf_counter() - start
    source.close()
    return consumed / elapsed, sum(w["type"] == "window" for w in windows), reference_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=250_000)
    ap.add_argument("--labels", action="store_true",
                    help="the model has labels: half of each window's predictions get a label a window later")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measure (b), (b') and (d) this many times in turn; print the medians")
    ap.add_argument("--segments", type=int, default=0, choices=range(6), metavar="N",
                    help="the first N categorical features are segments (12 values each; drift per segment, "
                         "and performance per segment with --labels)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    values = bench_events(args.events, rng)
    n_events = args.events
    if args.labels:
        values = with_labels(values, rng)
        args.events = len(values)
    size = np.mean([len(v) for v in values[:1000]])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"workload: {args.events} events of 20 numeric + 5 categorical features + prediction, "
          f"{size:.0f} bytes each; windows {WINDOW}, reference {REFERENCE}; one partition")
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 1})
        p = KafkaProducer({"bootstrap.servers": broker.bootstrap})
        for v in values:
            p.produce(topic, v)
        p.flush()
        raw = consume_all(broker.bootstrap, topic, args.events, decode=False)
        limit, limit_gc, e2e = [], [], []
        for r in range(args.rounds):
            stock_gc()
            limit.append(consume_all(broker.bootstrap, topic, args.events, decode=True))
            tune_gc()  # what `driftline run` does before its loop: (b') is the same bare consumer with it
            limit_gc.append(consume_all(broker.bootstrap, topic, args.events, decode=True))
            settings = parse_settings(bench_config(broker.bootstrap, topic, f"{tmp}/bench{r}.db", args.labels,
                                                   args.segments), {})
            rate, n_windows, reference_s = end_to_end(settings, n_events, tmp)
            e2e.append(rate)
        dec = decode_only(settings, values)
        rec = decode_only(settings, values, columnar=False)
    rounds = [f"({b / 1000:.0f}k, {bg / 1000:.0f}k, {d / 1000:.0f}k: {d / b:.2f}/{d / bg:.2f})"
              for b, bg, d in zip(limit, limit_gc, e2e)]
    limit, limit_gc, e2e = (statistics.median(x) for x in (limit, limit_gc, e2e))
    print(f"(a) confluent-kafka consume(10000), raw         {raw:>10,.0f} ev/s")
    print(f"(b) consume + orjson.loads per event (limit)    {limit:>10,.0f} ev/s")
    print(f"(b') the same with driftline's GC settings      {limit_gc:>10,.0f} ev/s  (runtime.tune_gc; "
          "(c) and (d) run with them, as `driftline run` does)")
    print(f"(c) driftline decode + windows + tests, no Kafka {dec:>9,.0f} ev/s")
    print(f"(c') the same through the record-by-record path {rec:>9,.0f} ev/s")
    if args.labels:
        print(f"    labels on: {len(values) - n_events:,} label events among the {len(values):,} records; "
              "(c) decodes the events only, (d) counts every record"
              + (f"; segments: the first {args.segments} categorical features" if args.segments else ""))
    print(f"(d) driftline end to end ({n_windows} windows to SQLite) {e2e:>7,.0f} ev/s")
    print(f"    (the first {REFERENCE:,} events, which build and calibrate the reference, are not in (d): "
          f"{reference_s:.1f} s)")
    print(f"ratio (d)/(b) = {e2e / limit:.2f}   (d)/(b') = {e2e / limit_gc:.2f}   (d)/(a) = {e2e / raw:.2f}"
          f"\n    medians of {args.rounds} rounds; each round (b, b', d: d/b, d/b'): {'  '.join(rounds)}")
    import checkpoint  # benchmarks/checkpoint.py, beside this file
    checkpoint.report()


if __name__ == "__main__":
    main()
