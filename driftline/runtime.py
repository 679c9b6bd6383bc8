"""The composition root: build every piece from the settings and run the loop.

Order of effects per checkpoint: dead letters flushed → one database
transaction (windows, alert state, outbox, offsets, checkpoint) → Kafka
offsets committed → outbox delivered.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable

import orjson

from driftline import logs
from driftline.alerts.console import ConsoleSink
from driftline.alerts.outbox import Dispatcher
from driftline.config.settings import Settings
from driftline.pipeline import Pipeline
from driftline.redact import for_settings as redactor_for
from driftline.store import SqlStore
from driftline.types import BadRecord

log = logging.getLogger(__name__)


def build_store(settings: Settings, url: str | None = None) -> SqlStore:
    return SqlStore(url or settings.store.url)


def kafka_conf(settings: Settings) -> dict:
    from driftline.streams.kafka import client_config
    k = settings.kafka
    password = k.sasl_password.get_secret_value() if k.sasl_password else None
    return client_config(k.bootstrap_servers, k.client, k.sasl_username, password)


def build_sinks(settings: Settings, producer=None, console_format: str = "text",
                stream=None, slack_base_url: str | None = None) -> dict:
    """One sink per configured destination, keyed by the names the outbox stores."""
    a = settings.alerts
    sinks: dict = {}
    if a.console:
        sinks["console"] = ConsoleSink(console_format, stream)
    if a.slack.enabled:
        from driftline.alerts.slack import SlackSink
        s = a.slack
        sinks["slack"] = SlackSink(
            token=s.token.get_secret_value() if s.token else None, channel=s.channel,
            webhook_url=s.webhook_url.get_secret_value() if s.webhook_url else None,
            base_url=slack_base_url or s.base_url)
    if producer is not None:
        from driftline.streams.kafka import TopicSink
        if a.topic:
            sinks["alerts_topic"] = TopicSink(producer, a.topic, "alert")
        if a.retrain_topic:
            sinks["retrain_topic"] = TopicSink(producer, a.retrain_topic, "trigger")
    for hook in a.retrain_webhooks:
        from driftline.alerts.webhook import WebhookSink
        # named by its address, so reordering the list never redirects a pending notification
        name = "webhook:" + hashlib.sha256(hook.url.get_secret_value().encode()).hexdigest()[:10]
        sinks[name] = WebhookSink(
            hook.url.get_secret_value(), hook.preset,
            hook.secret.get_secret_value() if hook.secret else None,
            hook.token.get_secret_value() if hook.token else None, hook.event_type,
            legacy_signature=hook.legacy_signature)
    return sinks


class NoDeadLetters:
    """For sources without a broker: bad records are reported on stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.count = 0

    def send(self, record: BadRecord) -> None:
        self.count += 1
        p = record.position
        print(f"bad record at {p.topic}:{p.partition}:{p.offset}: {record.reason}", file=self.stream)

    def flush(self) -> None:
        pass


def window_printer(fmt: str, stream=None) -> Callable[[dict], None]:
    stream = stream or sys.stdout

    def text(s: dict) -> None:
        drift = ", ".join(s["drifted"]) or "none"
        tests = "" if s["tests_run"] else f" ({s['tests_skipped']})"
        print(f"window {s['model']} {s['version']} #{s['seq']} {s['start']} → {s['end']}: "
              f"{s['count']} events, {s['invalid']} invalid, {s['late']} late; drifted: {drift}{tests}",
              file=stream, flush=True)

    def jsonl(s: dict) -> None:
        print(orjson.dumps(s, option=orjson.OPT_SERIALIZE_NUMPY).decode(), file=stream, flush=True)

    return jsonl if fmt == "jsonl" else text


class Service:
    """Poll → process → commit → deliver, until stopped."""

    def __init__(self, pipeline: Pipeline, source, dispatcher: Dispatcher):
        self.pipeline, self.source, self.dispatcher = pipeline, source, dispatcher
        self.stop_event = threading.Event()

    def run(self, duration: float | None = None, until: Callable[[], bool] | None = None) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if until is not None and until():
                    break
                self.step()
        finally:
            self.shutdown()

    def step(self) -> None:
        offsets = self.pipeline.process(self.source.poll())
        if offsets:
            self.source.commit(offsets)
        self.dispatcher.deliver_due()

    def shutdown(self) -> None:
        from driftline.types import Batch
        offsets = self.pipeline.process(Batch([], lambda i: None), force=True)
        if offsets:
            self.source.commit(offsets)
        self.dispatcher.deliver_due()
        self.source.close()
        self.pipeline.store.close()
        self.pipeline.metrics.close()

    def stop(self, *_args) -> None:
        self.stop_event.set()


def build_metrics(settings: Settings):
    """Prometheus metrics served on ``metrics.port``, or the do-nothing fake."""
    from driftline.metrics import Metrics, NullMetrics
    if settings.metrics.port is None:
        return NullMetrics()
    metrics = Metrics()
    port = metrics.serve(settings.metrics.port, settings.metrics.host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, port)
    return metrics


def build_service(settings: Settings, store: SqlStore, source, dead_letters, sinks: dict,
                  output: Callable[[dict], None], metrics=None) -> Service:
    routes = {name: getattr(sink, "accepts", frozenset({"alert", "trigger"})) for name, sink in sinks.items()}
    pipeline = Pipeline(settings, store, routes, dead_letters, output, settings.kafka.group_id,
                        metrics=metrics)
    redact = redactor_for(settings)
    logs.protect(redact)
    dispatcher = Dispatcher(store, sinks, settings.alerts.delivery_deadline, metrics=pipeline.metrics,
                            redact=redact)
    return Service(pipeline, source, dispatcher)


def load_references(settings: Settings, pipeline: Pipeline, store: SqlStore) -> None:
    """Build profiles from reference files for models that have none stored yet."""
    from driftline.errors import ReferenceError_
    from driftline.monitor import reference_for
    from driftline.pipeline import CommitUnit
    from driftline.streams.files import read_table
    unit = CommitUnit()
    for spec in settings.models:
        if spec.reference.path is None or pipeline.monitors[spec.name].profile is not None:
            continue
        where = f"models[{settings.models.index(spec)}].reference.path"
        try:
            cols = read_table(spec.reference.path)
            profile = reference_for(spec, cols, spec.reference.path)
        except (ValueError, ReferenceError_) as exc:
            raise ReferenceError_(f"{where}: {exc}") from exc
        if profile.empty_features():
            log.warning("model %s: %s has no values for %s; they will not be tested", spec.name,
                        spec.reference.path, ", ".join(profile.empty_features()))
        pipeline.set_reference(profile)
        unit.references.append(profile)
    if unit.references:
        store.commit(pipeline.group, unit)


def build_kafka_service(settings: Settings, output_format: str = "text", stream=None,
                        slack_base_url: str | None = None) -> Service:
    """The always-on service over Kafka, as ``driftline run`` starts it."""
    from driftline.streams.kafka import DeadLetters, KafkaProducer, KafkaSource, ensure_topics, wait_ready
    store = build_store(settings)
    k, a = settings.kafka, settings.alerts
    store.lock_group(k.group_id)
    conf = kafka_conf(settings)
    wait_ready(conf, 30)
    ensure_topics(conf, {t: 1 for t in (k.dead_letter_topic, a.topic, a.retrain_topic) if t})
    producer = KafkaProducer(conf)
    sinks = build_sinks(settings, producer, output_format, stream, slack_base_url)
    source = KafkaSource(conf, k.group_id, k.topics, store.load_offsets(k.group_id),
                         k.batch_size, k.poll_timeout)
    service = build_service(settings, store, source, DeadLetters(producer, k.dead_letter_topic),
                            sinks, window_printer(output_format, stream), build_metrics(settings))
    load_references(settings, service.pipeline, store)
    return service
