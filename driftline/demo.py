"""``driftline demo``: the embedded broker, a simulated model whose traffic
drifts, and the service, all in one process."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from driftline.config import parse_settings
from driftline.runtime import build_service, build_sinks, build_store, window_printer
from driftline.streams.broker import EmbeddedBroker
from driftline.streams.kafka import DeadLetters, KafkaProducer, KafkaSource, ensure_topics
from driftline.streams.simulator import DEMO_CONFIG, fraud_events

BAD_RECORDS = [
    b'{"model": "fraud", "version": "v3", "ts": 1, "features": {"amount": ',  # truncated JSON
    b'{"model": "churn", "version": "v1", "ts": 1, "features": {}}',  # unknown model
    b'{"model": "fraud", "version": "v3", "features": {"amount": 1.0}}',  # no timestamp
]


def demo_settings(bootstrap: str, data_dir: Path, env=os.environ):
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["kafka"]["bootstrap_servers"] = bootstrap
    cfg["store"] = {"url": f"sqlite:///{data_dir / 'driftline.db'}"}
    if env.get("SLACK_BOT_TOKEN"):
        cfg["alerts"]["slack"] = {"token": "${SLACK_BOT_TOKEN}",
                                  "channel": env.get("SLACK_CHANNEL", "#driftline-demo")}
    elif env.get("SLACK_WEBHOOK_URL"):
        cfg["alerts"]["slack"] = {"webhook_url": "${SLACK_WEBHOOK_URL}"}
    return parse_settings(cfg, env, "demo configuration")


class Traffic(threading.Thread):
    """Produces ``rate`` simulated events per second, with a few bad ones."""

    def __init__(self, producer: KafkaProducer, topic: str, rate: int, drift_after: int, drift_until: int):
        super().__init__(daemon=True, name="traffic")
        self.producer, self.topic, self.rate = producer, topic, rate
        self.drift_after, self.drift_until = drift_after, drift_until
        self.sent = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        rng = np.random.default_rng(42)
        start = time.time()
        chunk = max(self.rate // 10, 1)
        while not self.stop_event.is_set():
            for value in fraud_events(chunk, self.sent, self.drift_after, rng, int(start * 1000),
                                      1000 / self.rate, self.drift_until):
                self.producer.produce(self.topic, value)
            self.sent += chunk
            if self.sent % 10_000 < chunk:
                for bad in BAD_RECORDS:
                    self.producer.produce(self.topic, bad)
            self.producer.flush()
            lag = start + self.sent / self.rate - time.time()
            if lag > 0:
                self.stop_event.wait(lag)


def run_demo(duration: float | None, data_dir: Path, output: str = "text", rate: int = 1000,
             drift_after: int = 30000, drift_for: int = 30000) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "driftline.db"
    if db.exists():
        db.unlink()  # the embedded broker starts empty, so old offsets would point nowhere
    with EmbeddedBroker() as broker:
        # every Kafka client lives inside _serve, so all are gone before the broker stops
        summary = _serve(broker.bootstrap, data_dir, duration, output, rate, drift_after, drift_for)
    print(summary)
    print(f"  data: {db} (tables windows, drift_results, alerts, alert_events, outbox, triggers)")
    print(f"  try: sqlite3 {db} 'select seq, start, drifted from windows'")
    return 0


def _serve(bootstrap: str, data_dir: Path, duration: float | None, output: str, rate: int,
           drift_after: int, drift_for: int) -> str:
    settings = demo_settings(bootstrap, data_dir)
    k, a = settings.kafka, settings.alerts
    conf = {"bootstrap.servers": bootstrap}
    ensure_topics(conf, {k.topics[0]: 1, k.dead_letter_topic: 1, a.topic: 1, a.retrain_topic: 1})
    print(f"driftline demo: embedded Kafka at {bootstrap}, store {data_dir / 'driftline.db'}")
    print(f"  traffic {rate} events/s into '{k.topics[0]}'; reference = first "
          f"{settings.models[0].reference.first_n} events; drift from event {drift_after} "
          f"to {drift_after + drift_for}, then back to normal")
    print(f"  Slack: {'on' if a.slack.enabled else 'off (set SLACK_BOT_TOKEN+SLACK_CHANNEL or SLACK_WEBHOOK_URL)'}")
    store = build_store(settings)
    producer = KafkaProducer(conf)
    traffic = Traffic(KafkaProducer(conf), k.topics[0], rate, drift_after, drift_after + drift_for)
    source = KafkaSource(conf, k.group_id, k.topics, {}, k.batch_size, k.poll_timeout)
    dead = DeadLetters(producer, k.dead_letter_topic)
    service = build_service(settings, store, source, dead, build_sinks(settings, producer, output),
                            window_printer(output))
    signal.signal(signal.SIGINT, service.stop)
    signal.signal(signal.SIGTERM, service.stop)
    traffic.start()
    try:
        service.run(duration)
    finally:
        traffic.stop_event.set()
        traffic.join(5)
    windows, alerts, triggers = store.reads.windows(), store.reads.alert_events(), store.reads.triggers()
    return (f"\ndriftline demo stopped: {traffic.sent} events sent, {len(windows)} windows, "
            f"{len(alerts)} alert changes, {len(triggers)} retrain triggers, {dead.count} dead letters.")
