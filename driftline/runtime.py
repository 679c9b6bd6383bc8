"""The composition root: build every piece from the settings and run the loop.

Order of effects per checkpoint: dead letters flushed → one database
transaction (windows, alert state, outbox, offsets, checkpoint) → Kafka
offsets committed → the delivery thread woken (it sends what the outbox holds on
its own connection; the consumer never waits for a sink).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable

import orjson

from driftline import logs
from driftline.alerts.console import ConsoleSink
from driftline.alerts.outbox import Dispatcher
from driftline.config.settings import Settings
from driftline.errors import BrokerUnavailable, StoreUnavailable
from driftline.guard import OUTAGES, PoisonGuard
from driftline.pipeline import Pipeline
from driftline.redact import for_settings as redactor_for
from driftline.store import SqlStore
from driftline.types import BadRecord

log = logging.getLogger(__name__)


def build_store(settings: Settings, url: str | None = None) -> SqlStore:
    return SqlStore(url or settings.store.url)


def wait_for(what: str, attempt: Callable, limit: float, clock=time.monotonic, sleep=time.sleep):
    """``attempt()`` until it stops raising :class:`StoreUnavailable`, for at most ``limit`` seconds."""
    since, delay, said = clock(), 0.5, False
    while True:
        try:
            return attempt()
        except StoreUnavailable as exc:
            if clock() - since + delay > limit:
                raise
            if not said:
                log.error("%s: %s; waiting for it (at most %.0f s)", what, exc, limit)
                said = True
            sleep(delay)
            delay = min(delay * 2, 30.0)


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
    """Poll → process → commit → wake the delivery thread, until stopped.

    Batches go through the :class:`PoisonGuard`, so a record that makes processing
    raise is dead-lettered instead of stopping the stream. An unreachable store or
    dead-letter topic pauses consumption and is retried with backoff; past
    ``max_outage`` seconds the service gives up with :class:`StoreUnavailable` (or
    :class:`BrokerUnavailable`), having committed no offset past what is stored.
    """

    def __init__(self, pipeline: Pipeline, source, dispatcher: Dispatcher, store_outage: float = 900.0,
                 broker_outage: float = 900.0, clock=time.monotonic, max_delay: float = 30.0):
        self.pipeline, self.source, self.dispatcher = pipeline, source, dispatcher
        self.guard = PoisonGuard(pipeline, source)
        self.store_outage, self.broker_outage = store_outage, broker_outage
        self.clock, self.max_delay = clock, max_delay
        self.stop_event = threading.Event()
        self.status = "ready"
        self._stopped_in_outage = False
        self._started = time.monotonic()
        self._first_batch = False

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
        self.dispatcher.start()
        batch = self.source.poll()
        if batch.values and not self._first_batch:
            self._first_batch = True
            log.info("first batch: %d record(s), %.2f s after start", len(batch.values),
                     time.monotonic() - self._started)
        try:
            offsets = self.guard.process(batch)
        except OUTAGES as exc:
            offsets = self._wait_out(exc)
        if offsets:
            self.source.commit(offsets)
        if self.source.outage() > self.broker_outage:
            raise BrokerUnavailable(f"no Kafka broker answered for {self.source.outage():.0f} s "
                                    f"(kafka.max_outage is {self.broker_outage:.0f} s); stopping. "
                                    "Nothing is lost: a restart resumes from the stored offsets")
        self.dispatcher.wake(checkpoint=bool(offsets))

    def _wait_out(self, exc: Exception) -> dict | None:
        """Pause consumption and retry until the store (or dead-letter topic) is back."""
        limit, what = ((self.store_outage, "store.max_outage") if isinstance(exc, StoreUnavailable)
                       else (self.broker_outage, "kafka.max_outage"))
        since, delay = self.clock(), 0.5
        self.status = f"paused: {exc}"
        log.error("%s; consumption paused, retrying until it is back (at most %s = %.0f s)", exc, what, limit)
        self.source.pause()
        try:
            while True:
                if self.stop_event.is_set():
                    log.warning("stopping during an outage: what was read since the last checkpoint "
                                "is read again on restart")
                    self._stopped_in_outage = True
                    return None
                if self.clock() - since > limit:
                    self._stopped_in_outage = True
                    raise type(exc)(f"{exc}; still failing after {self.clock() - since:.0f} s ({what} is "
                                    f"{limit:.0f} s), stopping. Nothing is lost: no offset was committed "
                                    "past what is stored, and a restart resumes from there") from exc
                self.source.idle(delay)
                try:
                    self.pipeline.store.state.check_lock()
                    offsets = self.guard.retry()
                except OUTAGES as err:
                    exc, delay = err, min(delay * 2, self.max_delay)
                    log.info("still unavailable (%s); next try in %.1f s", err, delay)
                    continue
                log.warning("available again after %.1f s; consumption resumes", self.clock() - since)
                return offsets
        finally:
            self.status = "ready"
            self.source.resume(self.pipeline.offsets)

    def shutdown(self) -> None:
        """The last checkpoint, then at most ``dispatcher.shutdown_wait`` seconds for the
        delivery thread's last pass (what it does not reach stays in the outbox), then close."""
        from driftline.types import Batch
        try:
            if not self._stopped_in_outage:
                offsets = self.pipeline.process(Batch([], lambda i: None), force=True)
                if offsets:
                    self.source.commit(offsets)
        except OUTAGES as exc:
            log.warning("could not write the last checkpoint (%s); what was read since the one before "
                        "is read again on restart", exc)
        finally:
            self.dispatcher.close()
            self.source.close()
            self.pipeline.store.close()
            self.pipeline.metrics.close()

    def stop(self, *_args) -> None:
        self.stop_event.set()


def run_to_end(service: Service, source) -> None:
    """Replay: process ``source`` until it is done, then close every open window
    (end of input), commit, and shut down: the shutdown waits (bounded) for the delivery
    of what the windows produced."""
    try:
        while not service.stop_event.is_set() and not source.done:
            service.step()
        if source.done:
            try:
                offsets = service.pipeline.end_of_input()
            except OUTAGES as exc:
                offsets = service._wait_out(exc)
            if offsets:
                service.source.commit(offsets)
    finally:
        service.shutdown()


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
    return Service(pipeline, source, dispatcher, settings.store.max_outage, settings.kafka.max_outage)


def load_references(settings: Settings, pipeline: Pipeline, store: SqlStore) -> None:
    """Build profiles from reference files for models that have none stored yet."""
    from driftline.errors import ReferenceError_
    from driftline.monitor import reference_for
    from driftline.streams.files import read_table
    from driftline.types import CommitUnit
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
    k, a = settings.kafka, settings.alerts
    store = wait_for("store", lambda: build_store(settings), settings.store.max_outage)
    wait_for("store", lambda: store.state.lock_group(k.group_id), settings.store.max_outage)
    conf = kafka_conf(settings)
    wait_ready(conf, k.max_outage)
    ensure_topics(conf, {t: 1 for t in (k.dead_letter_topic, a.topic, a.retrain_topic) if t})
    producer = KafkaProducer(conf)
    sinks = build_sinks(settings, producer, output_format, stream, slack_base_url)
    source = KafkaSource(conf, k.group_id, k.topics, store.state.load_offsets(k.group_id),
                         k.batch_size, k.poll_timeout, k.instance_id(socket.gethostname()))
    service = build_service(settings, store, source, DeadLetters(producer, k.dead_letter_topic),
                            sinks, window_printer(output_format, stream), build_metrics(settings))
    load_references(settings, service.pipeline, store)
    return service
