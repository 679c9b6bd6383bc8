"""Scale-out costs (docs/architecture.md, "Scaling out").

``checkpoint``: one process owning six partitions of a model with 25 features on PostgreSQL;
each round closes one window on every partition, so its checkpoint writes six partials beside
the offsets, states and partition marks; then the merge pass. Against it, the same partial
bytes produced to a Kafka topic (embedded broker) and flushed, as the topic design would.

``throughput``: a backlog on a 6-partition topic read by 1, 2 and 4 `driftline run` processes
(``kafka.scale_out``; ``--workers 0``: one process without it); events/s from the first
stored offset to the last. ``--labels``: the model has ``labels`` and every event its label
event 1,000 events later on the same topic, both keyed by the event's id (so each label is on
its prediction's partition); the rate counts records (events and labels). ``--label-topic``
(with ``--labels``): the labels go to a label topic of 6 partitions too (``kafka.label_topics``,
co-partitioned), keyed the same.

    DRIFTLINE_TEST_POSTGRES_URL=postgresql://… python benchmarks/scale_out.py checkpoint
    DRIFTLINE_TEST_POSTGRES_URL=postgresql://… python benchmarks/scale_out.py throughput --workers 1 2 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import yaml

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.monitor import reference_for
from driftline.ports import NoDeadLetters
from driftline.scale.pipeline import ScaleOutPipeline
from driftline.store import SqlStore
from driftline.types import Batch, CommitUnit, SourcePosition

FEATURES = {f"f{j:02d}": "numeric" for j in range(20)} | {f"c{j}": "categorical" for j in range(5)}
T0 = 1_795_000_000_000
TOPIC = "bench"


def _docs(n: int, seed: int, start_ms: int, step_ms: float, model: str = "m", score: bool = False) -> list[bytes]:
    """Events; the prediction is ``f00`` (``score``: its logistic, a probability as labels need)."""
    rng = np.random.default_rng(seed)
    x, c = rng.normal(size=(n, 20)), rng.choice(["a", "b", "c", "d"], size=(n, 5))
    pred = 1 / (1 + np.exp(-x[:, 0])) if score else x[:, 0]
    return [orjson.dumps({"model": model, "version": "v1", "id": str(i), "ts": int(start_ms + i * step_ms),
                          "features": {**{f"f{j:02d}": float(x[i, j]) for j in range(20)},
                                       **{f"c{j}": str(c[i, j]) for j in range(5)}},
                          "prediction": float(pred[i])}) for i in range(n)]


def _model(window: str = "1s", labels: bool = False) -> dict:
    out = {"name": "m", "features": FEATURES, "prediction": "numeric", "trend_windows": [],
           "window": {"duration": window, "min_count": 10}, "reference": {"path": "reference.csv"},
           "rules": [{"name": "feature_drift", "share": 0.5}]}
    if labels:
        out |= {"labels": {"max_delay": "1h"},
                "rules": out["rules"] + [{"name": "auc", "metric": "roc_auc", "below": 0.6}]}
    return out


def _keyed(values: list[bytes], lag: int = 1000) -> list[tuple[bytes, bytes]]:
    """(key, record): each event, and its label ``lag`` events later, keyed by the event's id."""
    out = []
    for i, v in enumerate(values):
        out.append((str(i).encode(), v))
        if i >= lag:
            d = orjson.loads(values[i - lag])
            out.append((d["id"].encode(), orjson.dumps({"model": "m", "id": d["id"], "ts": d["ts"] + 2 * lag,
                                                        "label": int(d["prediction"] > 0.5)})))
    return out


def _reference(settings, store, score: bool = False) -> None:
    docs = [orjson.loads(v) for v in _docs(5000, 1, T0, 1, score=score)]
    cols = {k: ([d["features"][k] for d in docs] if k.startswith("c") else np.array([d["features"][k] for d in docs]))
            for k in FEATURES}
    cols["prediction"] = np.array([d["prediction"] for d in docs])
    store.commit("bench", CommitUnit(references=[reference_for(settings.models[0], cols, "bench")]))


def _fresh(url: str) -> SqlStore:
    from sqlalchemy import create_engine, text

    from driftline.store.schema import metadata
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    metadata.drop_all(engine)
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return SqlStore(url)


def checkpoint(url: str, rounds: int, per_window: int) -> None:
    settings = parse_settings({"models": [_model()], "store": {"url": url},
                               "kafka": {"scale_out": True, "topics": [TOPIC]}}, {})
    store = _fresh(url)
    _reference(settings, store)
    commits, sizes = [], []
    real = store.commit

    def timed(group, unit):
        sizes.append((len(unit.partials), sum(len(p["data"]) for p in unit.partials),
                      sum(len(v or b"") for v in unit.states.values())))
        t = time.perf_counter()
        real(group, unit)
        commits.append(time.perf_counter() - t)

    store.commit = timed
    p = ScaleOutPipeline(settings, store, Router(settings, {}, store, "bench"), NoDeadLetters(), lambda s: None,
                         "bench", checkpoint_every=1e9, topology=lambda: {TOPIC: 6}, merge_every=1e9)
    p.assign([(TOPIC, i) for i in range(6)])
    offsets = dict.fromkeys(range(6), 0)
    merges, payloads = [], []
    for r in range(rounds + 1):
        values, sources = [], []
        for part in range(6):
            docs = _docs(per_window, 10 * r + part, T0 + r * 1000, 1000 / per_window)
            values += docs
            sources += [(TOPIC, part)] * len(docs)
        ends = {}
        for part in range(6):
            offsets[part] += per_window
            ends[(TOPIC, part)] = offsets[part]
        pos = [SourcePosition(t, q, 0) for t, q in sources]
        unit = p._stage(Batch(values, pos.__getitem__, ends, sources), force=True)
        payloads.append([x["data"] for x in unit.partials])
        p._write(unit, list(p.parts))
        t = time.perf_counter()
        p.merger.run(time.time())
        merges.append(time.perf_counter() - t)
    with_partials = [c for c, s in zip(commits, sizes) if s[0]]
    n, pbytes, sbytes = statistics.median(s[0] for s in sizes[1:]), statistics.median(s[1] for s in sizes[1:]), \
        statistics.median(s[2] for s in sizes[1:])
    print(f"checkpoint with {n:.0f} partials ({pbytes / 1024:.0f} KiB partials, {sbytes / 1024:.0f} KiB states) on "
          f"PostgreSQL: median {1000 * statistics.median(with_partials):.1f} ms, "
          f"p90 {1000 * np.percentile(with_partials, 90):.1f} ms over {len(with_partials)} checkpoints")
    print(f"merge pass (lock, read 6 partials, merge, test, store one window): median "
          f"{1000 * statistics.median(merges[1:]):.1f} ms")
    store.commit = real
    _without_partials(p, store, url)
    _kafka(payloads[1:])


def _without_partials(p, store, url) -> None:
    times = []
    for _ in range(20):
        unit = CommitUnit(offsets=dict(p.offsets))
        for part in p.parts.values():
            part.dirty = True
            for m in part.monitors.values():
                m.dirty.update(m.versions)
            part.take(unit, None)
        t = time.perf_counter()
        store.commit("bench", unit)
        times.append(time.perf_counter() - t)
    print(f"the same checkpoint without partials (states, offsets, marks): median "
          f"{1000 * statistics.median(times):.1f} ms")


def _kafka(payloads: list[list[bytes]]) -> None:
    from driftline.streams.broker import EmbeddedBroker
    from driftline.streams.kafka import KafkaProducer, ensure_topics
    broker = EmbeddedBroker().start()
    try:
        conf = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(conf, {"partials": 6})
        producer = KafkaProducer(conf)
        times = []
        for batch in payloads:
            t = time.perf_counter()
            for data in batch:
                producer.produce("partials", data, b"m:v1")
            producer.flush()
            times.append(time.perf_counter() - t)
        print(f"the same partials produced to a topic and flushed (embedded broker): median "
              f"{1000 * statistics.median(times):.1f} ms per checkpoint")
    finally:
        broker.stop()


def _rate(store, group: str, events: int, n: int) -> float | None:
    """Events/s from when all ``n`` processes own partitions (and 10% is stored) to 80% stored."""
    start = end = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and end is None:
        stored = sum(store.state.load_offsets(group).values())
        joined = n == 0 or len({m["owner"] for m in store.partials.marks(group).values()}) >= n
        if start is None and joined and stored >= 0.1 * events:
            start = (time.monotonic(), stored)
        if start is not None and stored >= 0.8 * events:
            end = (time.monotonic(), stored)
        time.sleep(0.05)
    if end is None or end[1] <= start[1]:
        print(f"{n} worker(s): did not finish (or all of it before the last one joined)")
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def throughput(url: str, workers: list[int], events: int, window: str = "10s", rounds: int = 1,
               labels: bool = False, label_topic: bool = False) -> None:
    from driftline.streams.broker import EmbeddedBroker
    from driftline.streams.kafka import KafkaProducer, ensure_topics
    broker = EmbeddedBroker().start()
    tmp = Path(tempfile.mkdtemp())
    try:
        conf = {"bootstrap.servers": broker.bootstrap}
        values = _docs(events, 3, T0, 2, score=labels)
        keyed = _keyed(values) if labels else None
        records = len(keyed) if labels else events
        rates: dict[int, list] = {}
        for n in [n for _ in range(rounds) for n in workers]:
            store = _fresh(url)
            settings = parse_settings({"models": [_model(window, labels)], "store": {"url": url},
                                       "kafka": {"scale_out": True, "topics": [TOPIC]}}, {})
            _reference(settings, store, labels)
            topic, group = f"bench-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
            label_topics = [f"{topic}-labels"] if label_topic else []
            ensure_topics(conf, {t: 6 for t in [topic, *label_topics]})
            producer = KafkaProducer(conf)
            if keyed is not None:
                for key, v in keyed:
                    producer.produce(label_topics[0] if label_topics and b'"label"' in v else topic, v, key=key)
            else:
                for i, v in enumerate(values):
                    producer.produce(topic, v, partition=i % 6)
            producer.flush()
            cfg = {"models": [_model(window, labels) | {"reference": {"path": str(tmp / "unused.csv")}}],
                   "store": {"url": url},
                   "kafka": {"bootstrap_servers": broker.bootstrap, "group_id": group, "topics": [topic],
                             "label_topics": label_topics, "scale_out": n > 0, "group_instance_id": None,
                             "dead_letter_topic": f"dlq-{group}"},
                   "alerts": {"console": False, "topic": None, "retrain_topic": None}}
            path = tmp / f"{group}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            procs = [subprocess.Popen([sys.executable, "-m", "driftline.cli", "run", "-c", str(path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(max(n, 1))]
            try:
                rates.setdefault(n, []).append(_rate(store, group, records, n))
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(30)
                store.close()
        for n, got in rates.items():
            who = f"{n} worker(s)" if n else "one process without scale_out"
            what = (" with labels" if labels else "") + (" on a label topic" if label_topic else "")
            print(f"{who}{what}: median {statistics.median(r for r in got if r):,.0f} "
                  f"{'records' if labels else 'events'}/s "
                  f"(rounds: {', '.join(f'{r:,.0f}' for r in got if r)})")
    finally:
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["checkpoint", "throughput"])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--per-window", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--window", default="10s", help="throughput: the model's window (events are 2 ms apart)")
    ap.add_argument("--repeat", type=int, default=1, help="throughput: runs per worker count")
    ap.add_argument("--labels", action="store_true", help="throughput: the model has labels, every event a label")
    ap.add_argument("--label-topic", action="store_true", help="throughput, --labels: the labels on a label topic")
    args = ap.parse_args()
    url = os.environ["DRIFTLINE_TEST_POSTGRES_URL"]
    if args.what == "checkpoint":
        checkpoint(url, args.rounds, args.per_window)
    else:
        throughput(url, args.workers, args.events, args.window, args.repeat, args.labels, args.label_topic)


if __name__ == "__main__":
    main()
