"""``driftline demo``: the embedded broker, a simulated model whose traffic
drifts, and the service, all in one process.

The service is the one ``driftline run`` starts (``app.build_service``): it takes
the consumer group's lock on the demo's database, serves metrics if configured and
loads reference files; only the settings, the broker and the traffic are the demo's."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from driftline import app
from driftline.config import parse_settings
from driftline.streams.broker import EmbeddedBroker
from driftline.streams.kafka import KafkaProducer, ensure_topics
from driftline.streams.simulator import DEMO_CONFIG, fraud_events

BAD_RECORDS = [
    b'{"model": "fraud", "version": "v3", "ts": 1, "features": {"amount": ',  # truncated JSON
    b'{"model": "churn", "version": "v1", "ts": 1, "features": {}}',  # unknown model
    b'{"model": "fraud", "version": "v3", "features": {"amount": 1.0}}',  # no timestamp
]


def demo_settings(bootstrap: str, data_dir: Path, env=os.environ, http_port: int | None = None):
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["http"] = {"port": http_port}
    cfg["kafka"]["bootstrap_servers"] = bootstrap
    cfg["kafka"]["group_instance_id"] = None  # a static member's join takes ~6 s more on the embedded broker
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
             drift_after: int = 30000, drift_for: int = 30000, http_port: int | None = None) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "driftline.db"
    with EmbeddedBroker() as broker:
        # every Kafka client lives inside serve, so all are gone before the broker stops
        settings = demo_settings(broker.bootstrap, data_dir, http_port=http_port)
        summary = serve(settings, duration, output, rate, drift_after, drift_for)
    print(summary)
    print(f"  data: {db} (tables windows, drift_results, alerts, alert_events, outbox, triggers)")
    print(f"  try: sqlite3 {db} 'select seq, start, drifted from windows'")
    return 0


def start_afresh(settings) -> None:
    """The embedded broker starts empty, so a previous demo's stored offsets would point
    nowhere: its SQLite database goes. Refused (``StoreError``, nothing deleted) while
    another process serves the consumer group on it, a demo or ``driftline run``."""
    db = Path(settings.store.url.removeprefix("sqlite:///"))
    if db.exists():
        app.open_store(settings).close()  # raises if the group's lock is held
        db.unlink()


def serve(settings, duration: float | None, output: str = "text", rate: int = 1000,
          drift_after: int = 30000, drift_for: int = 30000) -> str:
    """Traffic into ``kafka.topics[0]`` and the service over it, until ``duration`` or a signal."""
    start_afresh(settings)
    k, a = settings.kafka, settings.alerts
    conf = app.kafka_conf(settings)
    ensure_topics(conf, {k.topics[0]: 1})  # auto-created topics get 4 partitions on the embedded broker
    print(f"driftline demo: embedded Kafka at {k.bootstrap_servers}, store {settings.store.url.removeprefix('sqlite:///')}")
    print(f"  traffic {rate} events/s into '{k.topics[0]}'; reference = {_reference(settings)}; drift from event "
          f"{drift_after} to {drift_after + drift_for}, then back to normal")
    print(f"  Slack: {'on' if a.slack.enabled else 'off (set SLACK_BOT_TOKEN+SLACK_CHANNEL or SLACK_WEBHOOK_URL)'}")
    service = app.build_service(settings, output_format=output)
    http = app.build_http(settings, service=service) if settings.http.port is not None else None
    if http is not None:
        print(f"  dashboard: {http.url}/  (API {http.url}/api/v1/, health {http.url}/readyz)", flush=True)
    traffic = Traffic(KafkaProducer(conf), k.topics[0], rate, drift_after, drift_after + drift_for)
    signal.signal(signal.SIGINT, service.stop)
    signal.signal(signal.SIGTERM, service.stop)
    traffic.start()
    try:
        service.run(duration)
    finally:
        traffic.stop_event.set()
        traffic.join(5)
        if http is not None:
            http.stop()
    store = service.pipeline.store
    windows, alerts, triggers = store.reads.windows(), store.reads.alert_events(), store.reads.triggers()
    return (f"\ndriftline demo stopped: {traffic.sent} events sent, {len(windows)} windows, "
            f"{len(alerts)} alert changes, {len(triggers)} retrain triggers, "
            f"{service.pipeline.dead_letter.count} dead letters.")


def _reference(settings) -> str:
    ref = settings.models[0].reference
    return f"the file {ref.path}" if ref.path else f"first {ref.first_n} events"
