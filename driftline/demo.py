"""``driftline demo``: the embedded broker, a simulated model whose traffic
drifts, its delayed labels, and the service, all in one process.

The traffic goes through four phases (event indexes): normal; input drift from
``drift_after`` for ``drift_for`` events; normal again; then, from
``drift_after + 2 * drift_for`` for another ``drift_for`` events, concept drift (the
same inputs, a moved relation to the labels: realized performance falls, no input
test fires); then normal for good.

The service is the one ``driftline run`` starts (``app.build_service``): it takes
the consumer group's lock on the demo's database, serves metrics if configured and
loads reference files; only the settings, the broker and the traffic are the demo's."""

from __future__ import annotations

import copy
import heapq
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from driftline import app
from driftline.config import parse_settings
from driftline.runtime import tune_gc
from driftline.streams.broker import EmbeddedBroker
from driftline.streams.kafka import KafkaProducer, ensure_topics
from driftline.streams.simulator import DEMO_CONFIG, encode_events, event_ts, fraud_batch, fraud_labels

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


class Phases:
    """Where (event index) the input drift and the concept drift start and end."""

    def __init__(self, drift_after: int, drift_for: int, concept_after: int | None = None,
                 concept_for: int | None = None):
        self.drift_after, self.drift_until = drift_after, drift_after + drift_for
        self.concept_after = drift_after + 2 * drift_for if concept_after is None else concept_after
        self.concept_until = self.concept_after + (drift_for if concept_for is None else concept_for)

    def concept(self, index: np.ndarray) -> np.ndarray:
        return (index >= self.concept_after) & (index < self.concept_until)


class Traffic(threading.Thread):
    """Produces ``rate`` simulated events per second, with a few bad ones, and (given
    ``label_topic``) their labels, each when its event time comes (a heap of pending labels,
    so labels and events go out in the order of their times)."""

    def __init__(self, producer: KafkaProducer, topic: str, rate: int, phases: Phases, label_topic: str | None = None):
        super().__init__(daemon=True, name="traffic")
        self.producer, self.topic, self.rate, self.phases, self.label_topic = producer, topic, rate, phases, label_topic
        self.sent = self.labels_sent = 0
        self.stop_event = threading.Event()
        self._labels: list[tuple[int, bytes]] = []

    def run(self) -> None:
        rng, label_rng = np.random.default_rng(42), np.random.default_rng(43)
        start = time.time()
        start_ms, interval = int(start * 1000), 1000 / self.rate
        chunk = max(self.rate // 10, 1)
        while not self.stop_event.is_set():
            cols = fraud_batch(chunk, self.sent, self.phases.drift_after, rng, self.phases.drift_until)
            if self.label_topic is not None:
                for item in fraud_labels(cols, self.phases.concept(cols["index"]), label_rng, start_ms, interval):
                    heapq.heappush(self._labels, item)
            for ts, value in zip(event_ts(cols["index"], start_ms, interval).tolist(),
                                 encode_events(cols, start_ms, interval)):
                self._labels_until(ts)
                self.producer.produce(self.topic, value)
            self.sent += chunk
            if self.sent % 10_000 < chunk:
                for bad in BAD_RECORDS:
                    self.producer.produce(self.topic, bad)
            self.producer.flush()
            lag = start + self.sent / self.rate - time.time()
            if lag > 0:
                self.stop_event.wait(lag)

    def _labels_until(self, ts: int) -> None:
        """Produce every pending label known at or before event time ``ts``."""
        while self._labels and self._labels[0][0] <= ts:
            self.producer.produce(self.label_topic, heapq.heappop(self._labels)[1])
            self.labels_sent += 1


def demo_output(fmt: str, stream=None):
    """What the demo prints of each stored window and performance revision: as ``run``
    prints them for ``jsonl``; for ``text`` the window lines, and one compact line per window
    when its performance first has enough labels (its later revisions are stored, not printed)."""
    plain = app.window_printer(fmt, stream)
    if fmt == "jsonl":
        return plain
    shown: set[tuple[str, str, int]] = set()

    def text(s: dict) -> None:
        if s.get("type") != "performance":
            return plain(s)
        key = (s["model"], s["version"], s["window_key"])
        if s["enough"] and s.get("segment") is None and key not in shown:
            shown.add(key)
            print(performance_line(s), file=stream or sys.stdout, flush=True)

    return text


def performance_line(s: dict) -> str:
    """``performance fraud v3 #41 … → …: roc_auc 0.502 ± 0.022, 1275 of 2000 labelled (64%),
    label delay p50 1.7 s, p90 4 s`` (the delay of the labels in so far)."""
    head = "roc_auc" if s["task"] == "binary" else "mae"
    value, se = s["metrics"].get(head), (s["metrics"].get("se") or {}).get(head)
    shown = "n/a" if value is None else f"{value:.3f}" + ("" if se is None else f" ± {se:.3f}")
    d, w = s["delay"], s["window"]
    delay = "" if d.get("p50") is None else f", label delay p50 {d['p50']:.2g} s, p90 {d['p90']:.2g} s"
    return (f"performance {s['model']} {s['version']} #{w['seq']} {w['start']} → {w['end']}: {head} {shown}, "
            f"{s['labelled']} of {s['count']} labelled ({s['labelled_share']:.0%}){delay}")


def run_demo(duration: float | None, data_dir: Path, output: str = "text", rate: int = 1000,
             drift_after: int = 30000, drift_for: int = 30000, http_port: int | None = None) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "driftline.db"
    with EmbeddedBroker() as broker:
        # every Kafka client lives inside serve, so all are gone before the broker stops
        settings = demo_settings(broker.bootstrap, data_dir, http_port=http_port)
        summary = serve(settings, duration, output, rate, drift_after, drift_for)
    print(summary)
    print(f"  data: {db} (tables windows, drift_results, performance, alerts, alert_events, outbox, triggers)")
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
          drift_after: int = 30000, drift_for: int = 30000, phases: Phases | None = None) -> str:
    """Traffic into ``kafka.topics[0]`` (labels into ``kafka.label_topics[0]``, if any) and the
    service over it, until ``duration`` or a signal. ``phases`` (default: from ``drift_after``
    and ``drift_for``, see the module's docstring) says where the traffic drifts."""
    start_afresh(settings)
    k, a = settings.kafka, settings.alerts
    phases = phases or Phases(drift_after, drift_for)
    label_topic = k.label_topics[0] if k.label_topics else None
    conf = app.kafka_conf(settings)
    # auto-created topics get 4 partitions on the embedded broker
    ensure_topics(conf, {k.topics[0]: 1} | ({label_topic: 1} if label_topic else {}))
    print(f"driftline demo: embedded Kafka at {k.bootstrap_servers}, store {settings.store.url.removeprefix('sqlite:///')}")
    print(f"  traffic {rate} events/s into '{k.topics[0]}'; reference = {_reference(settings)}; input drift from "
          f"event {phases.drift_after} to {phases.drift_until}, then back to normal")
    if label_topic:
        print(f"  labels into '{label_topic}', most within seconds, a few minutes late, 3% never; concept drift "
              f"(same inputs, the labels' relation moved) from event {phases.concept_after} to "
              f"{phases.concept_until}, then normal")
    print(f"  Slack: {'on' if a.slack.enabled else 'off (set SLACK_BOT_TOKEN+SLACK_CHANNEL or SLACK_WEBHOOK_URL)'}")
    service = app.build_service(settings, output=demo_output(output), output_format=output)
    http = app.build_http(settings, service=service) if settings.http.port is not None else None
    if http is not None:
        print(f"  dashboard: {http.url}/  (API {http.url}/api/v1/, health {http.url}/readyz)", flush=True)
    traffic = Traffic(KafkaProducer(conf), k.topics[0], rate, phases, label_topic)
    signal.signal(signal.SIGINT, service.stop)
    signal.signal(signal.SIGTERM, service.stop)
    traffic.start()
    tune_gc()
    try:
        service.run(duration)
    finally:
        traffic.stop_event.set()
        traffic.join(5)
        if http is not None:
            http.stop()
    store = service.pipeline.store
    windows, alerts, triggers = store.reads.windows(), store.reads.alert_events(), store.reads.triggers()
    return (f"\ndriftline demo stopped: {traffic.sent} events and {traffic.labels_sent} labels sent, "
            f"{len(windows)} windows, {len(alerts)} alert changes, {len(triggers)} retrain triggers, "
            f"{service.pipeline.dead_letter.count} dead letters.{_label_counts(service.pipeline)}")


def _label_counts(pipeline) -> str:
    counts = [r.counts for r in getattr(pipeline, "labels", {}).values()]
    if not counts:
        return ""
    total = {k: sum(c.get(k, 0) for c in counts) for k in counts[0]}
    return "\n  labels: " + ", ".join(f"{v} {k}" for k, v in total.items())


def _reference(settings) -> str:
    ref = settings.models[0].reference
    return f"the file {ref.path}" if ref.path else f"first {ref.first_n} events"
