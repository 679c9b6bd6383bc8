"""Time from a restart after ``kill -9`` to the first processed batch, with and without
static group membership (``kafka.group_instance_id``), on the embedded broker.

Each trial starts ``driftline run`` as a process while events keep arriving, waits
until it has processed a batch, kills it with SIGKILL and starts it again; the
figure is the time from the new process's start to its log line "first batch".

    .venv/bin/python benchmarks/restart.py --trials 5
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

from driftline.streams.broker import EmbeddedBroker
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events


def traffic(bootstrap: str, topic: str, stop: threading.Event) -> None:
    producer, n = KafkaProducer({"bootstrap.servers": bootstrap}), 0
    while not stop.is_set():
        for v in events(500, start=n, seed=n):
            producer.produce(topic, v)
        producer.flush()
        n += 500
        stop.wait(0.25)


def first_batch(cfg: Path) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "driftline.cli", "--log-level", "info", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})
    for line in proc.stderr:
        if "first batch" in line:
            return proc, time.monotonic() - started
    raise RuntimeError(f"driftline run ended without a batch (exit {proc.wait()})")


def trials(bootstrap: str, static: bool, n: int, tmp: Path) -> list[float]:
    uid = uuid.uuid4().hex[:8]
    topic = f"events-{uid}"
    ensure_topics({"bootstrap.servers": bootstrap}, {topic: 1})
    raw = config(kafka={"bootstrap_servers": bootstrap, "group_id": f"g-{uid}", "topics": [topic],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms",
                        "group_instance_id": "auto" if static else None},
                 store={"url": f"sqlite:///{tmp / (uid + '.db')}"}, alerts={"topic": None, "retrain_topic": None})
    cfg = tmp / f"{uid}.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    stop = threading.Event()
    threading.Thread(target=traffic, args=(bootstrap, topic, stop), daemon=True).start()
    times = []
    try:
        proc, _ = first_batch(cfg)  # the first start joins a new group: not a restart
        for _ in range(n):
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc, took = first_batch(cfg)
            times.append(took)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        stop.set()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        for static in (False, True):
            times = sorted(trials(broker.bootstrap, static, args.trials, Path(tmp)))
            print(f"{'static membership' if static else 'dynamic membership'}: restart → first batch "
                  f"median {times[len(times) // 2]:.1f} s, min {times[0]:.1f} s, max {times[-1]:.1f} s "
                  f"over {len(times)} kill -9 restarts", flush=True)


if __name__ == "__main__":
    main()
