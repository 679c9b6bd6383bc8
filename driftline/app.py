"""The composition root: one service from the settings, with overrides for what a
command (or a test) brings itself.

``driftline run``, ``demo`` and ``replay`` call :func:`build_service`; ``reference``
and the other store commands take their store from :func:`build_store`. One small
factory per settings section; every piece is built here and passed in, nothing
below builds its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from collections.abc import Callable

import orjson

from driftline import logs
from driftline.alerts.console import ConsoleSink
from driftline.alerts.outbox import Dispatcher
from driftline.alerts.routing import Router
from driftline.config.settings import Settings
from driftline.pipeline import Pipeline
from driftline.ports import DeadLetterSink, NoDeadLetters, Sink, Source
from driftline.redact import for_settings as redactor_for
from driftline.runtime import Service, wait_for
from driftline.store import SqlStore

log = logging.getLogger(__name__)

BOTH = frozenset({"alert", "trigger"})


def build_service(settings: Settings, store: SqlStore | None = None, source: Source | None = None,
                  dead_letters: DeadLetterSink | None = None, sinks: dict[str, Sink] | None = None,
                  output: Callable[[dict], None] | None = None, metrics=None, *,
                  store_url: str | None = None, output_format: str = "text", stream=None,
                  slack_base_url: str | None = None) -> Service:
    """The service as the settings describe it; each argument given replaces its piece.

    Without ``store`` the store at ``store_url`` (else ``store.url``) is opened and the
    consumer group's lock taken (a store handed in is the caller's, locked or not).
    Without ``source`` it consumes Kafka, with the dead-letter and alert topics; with one,
    bad records go to stderr unless ``dead_letters`` is given. ``output`` takes every
    stored window (default: printed as ``output_format`` on ``stream``). Reference files
    of models that have no stored reference are loaded before it returns.
    """
    scale_out = settings.kafka.scale_out and source is None  # a replayed file is one process's
    store = open_store(settings, store_url, scale_out) if store is None else store
    if settings.store.state_secret is None and not store.url.startswith("sqlite"):
        log.warning("store.state_secret is not set: open windows stored in %s are trusted as they are read "
                    "(anyone who can write to the database can hand the sketch readers crafted bytes); "
                    "set it (e.g. ${DRIFTLINE_STATE_SECRET}) to refuse state written without it",
                    store.describe())
    metrics = build_metrics(settings) if metrics is None else metrics
    producer = None
    if source is None:
        conf = kafka_conf(settings)
        producer = kafka_producer(settings, conf)
        if not scale_out:
            source = kafka_source(settings, conf, store, getattr(metrics, "set_lag", None))
    sinks = build_sinks(settings, producer, output_format, stream, slack_base_url) if sinks is None else sinks
    dead_letters = build_dead_letters(settings, producer) if dead_letters is None else dead_letters
    router = build_router(settings, sinks, store)
    pipe = Pipeline
    if scale_out:
        from driftline.scale.pipeline import ScaleOutPipeline as pipe
    pipeline = pipe(settings, store, router, dead_letters, output or window_printer(output_format, stream),
                    settings.kafka.group_id, metrics=metrics, checkpoint_every=settings.store.checkpoint_every)
    if scale_out:
        k = settings.kafka
        pipeline.metrics.set_process(k.instance_id(socket.gethostname()) or f"{socket.gethostname()}-{os.getpid()}")
        source = kafka_source(settings, conf, store, getattr(metrics, "set_lag", None), rebalance=pipeline)
        pipeline.merger.topology, pipeline.merger.ends = source.partition_counts, source.ends
    service = Service(pipeline, source, build_dispatcher(settings, store, sinks, pipeline.metrics),
                      settings.store.max_outage, settings.kafka.max_outage)
    load_references(settings, pipeline, store)
    return service


# -- store ----------------------------------------------------------------------

def build_store(settings: Settings, url: str | None = None) -> SqlStore:
    """The store at ``url`` (else ``store.url``), for a command that reads or writes it once."""
    return SqlStore(url or settings.store.url)


def existing_store(settings: Settings, url: str | None = None) -> SqlStore:
    """The store a read-only command looks at: a SQLite file that does not exist (a mistyped
    path) is an error naming it, not a new empty store."""
    from pathlib import Path

    from driftline.errors import InputError
    url = url or settings.store.url
    if url.startswith("sqlite:///") and url != "sqlite://":
        path = Path(url.removeprefix("sqlite:///").split("?")[0])
        if not path.is_file() or path.stat().st_size == 0:
            raise InputError(f"no store at {path}: nothing has been written there yet (check store.url, or "
                             "$DRIFTLINE_DATABASE_URL; `driftline run` or `replay --database` fills one)")
    return SqlStore(url)


def open_store(settings: Settings, url: str | None = None, scale_out: bool = False) -> SqlStore:
    """The store for a service: waited for up to ``store.max_outage``, with the consumer
    group's lock (a second process for the group is refused), unless ``scale_out``."""
    store = wait_for("store", lambda: build_store(settings, url), settings.store.max_outage)
    if scale_out:  # several processes share the group (each owns its partitions' state): the lock too
        from driftline.scale.limits import check_references
        check_references(settings, set(store.state.load_references()))
    wait_for("store", lambda: store.state.lock_group(settings.kafka.group_id, scale_out), settings.store.max_outage)
    return store


# -- kafka ----------------------------------------------------------------------

def kafka_conf(settings: Settings) -> dict:
    from driftline.streams.kafka import client_config
    k = settings.kafka
    password = k.sasl_password.get_secret_value() if k.sasl_password else None
    return client_config(k.bootstrap_servers, k.client, k.sasl_username, password)


def kafka_producer(settings: Settings, conf: dict):
    """A producer, once the broker answers and the topics we write to exist."""
    from driftline.streams.kafka import KafkaProducer, ensure_topics, wait_ready
    k, a = settings.kafka, settings.alerts
    wait_ready(conf, k.max_outage)
    ensure_topics(conf, {t: 1 for t in (k.dead_letter_topic, a.topic, a.retrain_topic) if t})
    return KafkaProducer(conf)


def kafka_source(settings: Settings, conf: dict, store: SqlStore, on_lag=None, rebalance=None):
    """The consumer group, resuming from the store's offsets; ``on_lag`` gets its lag; ``rebalance``
    (scale-out) is told of every partition assigned, revoked or lost."""
    from driftline.streams.kafka import KafkaSource, copartitioned
    k = settings.kafka
    topics = list(dict.fromkeys([*k.topics, *k.label_topics]))
    paired = getattr(rebalance, "paired", None)
    if paired:
        copartitioned(conf, paired, k.max_outage)
    return KafkaSource(conf, k.group_id, topics, store.state.load_offsets(k.group_id),
                       k.batch_size, k.poll_timeout, k.instance_id(socket.gethostname()), on_lag=on_lag,
                       rebalance=rebalance, paired=paired)



def build_dead_letters(settings: Settings, producer=None) -> DeadLetterSink:
    """The dead-letter topic when there is a producer, else stderr."""
    if producer is None:
        return NoDeadLetters()
    from driftline.streams.kafka import DeadLetters
    return DeadLetters(producer, settings.kafka.dead_letter_topic)


# -- alerts ---------------------------------------------------------------------

def build_sinks(settings: Settings, producer=None, console_format: str = "text",
                stream=None, slack_base_url: str | None = None) -> dict[str, Sink]:
    """One sink per configured destination, keyed by the names the outbox stores."""
    a = settings.alerts
    sinks: dict = {}
    if a.console:
        sinks["console"] = ConsoleSink(console_format, stream)
    if a.slack.enabled:
        sinks["slack"] = _slack(settings, slack_base_url)
    if producer is not None:
        from driftline.streams.kafka import TopicSink
        if a.topic:
            sinks["alerts_topic"] = TopicSink(producer, a.topic, "alert")
        if a.retrain_topic:
            sinks["retrain_topic"] = TopicSink(producer, a.retrain_topic, "trigger")
    for hook in a.retrain_webhooks:
        sinks.update(_webhook(hook))
    if a.pagerduty is not None and a.pagerduty.enabled:
        from driftline.alerts.pagerduty import PagerDutySink
        pd = a.pagerduty
        sinks["pagerduty"] = PagerDutySink(pd.routing_key.get_secret_value(), pd.url, pd.source, pd.timeout)
    if a.alertmanager is not None:
        from driftline.alerts.alertmanager import AlertmanagerSink
        am = a.alertmanager
        sinks["alertmanager"] = AlertmanagerSink(
            am.url, am.resend_interval, am.token.get_secret_value() if am.token else None, am.username,
            am.password.get_secret_value() if am.password else None, am.timeout)
    return sinks


def _slack(settings: Settings, base_url: str | None):
    from driftline.alerts.slack import SlackSink
    s = settings.alerts.slack
    return SlackSink(token=s.token.get_secret_value() if s.token else None, channel=s.channel,
                     webhook_url=s.webhook_url.get_secret_value() if s.webhook_url else None,
                     base_url=base_url or s.base_url)


def _webhook(hook) -> dict:
    from driftline.alerts.webhook import WebhookSink
    url = hook.url.get_secret_value()
    # named by its address, so reordering the list never redirects a pending notification
    name = "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:10]
    return {name: WebhookSink(url, hook.preset, hook.secret.get_secret_value() if hook.secret else None,
                              hook.token.get_secret_value() if hook.token else None, hook.event_type,
                              legacy_signature=hook.legacy_signature, ref=hook.ref)}


def build_router(settings: Settings, sinks: dict[str, Sink], store: SqlStore) -> Router:
    """Alert routing to each sink by the kinds it ``accepts`` (both, if it does not say)."""
    routes = {name: getattr(sink, "accepts", BOTH) for name, sink in sinks.items()}
    return Router(settings, routes, store, settings.kafka.group_id)


def build_dispatcher(settings: Settings, store: SqlStore, sinks: dict[str, Sink], metrics) -> Dispatcher:
    redact = redactor_for(settings)
    logs.protect(redact)
    return Dispatcher(store, sinks, settings.alerts.delivery_deadline, metrics=metrics, redact=redact)


# -- metrics and output ---------------------------------------------------------

def _allowed_hosts(h) -> list[str] | None:
    """The ``Host`` values the HTTP server answers: on localhost the loopback names (and any
    configured), so another site's page cannot reach it by DNS rebinding; elsewhere the
    configured ones, or any when none are."""
    from driftline.api.http import LOOPBACK_NAMES
    if h.local:
        return LOOPBACK_NAMES + list(h.allowed_hosts)
    return list(h.allowed_hosts) or None


def build_metrics(settings: Settings):
    """Prometheus metrics served on ``metrics.port`` (and on ``http.port``'s ``/metrics``),
    or the do-nothing fake when neither is set."""
    from driftline.metrics import Metrics, NullMetrics
    if settings.metrics.port is None and settings.http.port is None:
        return NullMetrics()
    metrics = Metrics()
    if settings.metrics.port is None:
        return metrics
    port = metrics.serve(settings.metrics.port, settings.metrics.host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, port)
    return metrics


def window_printer(fmt: str, stream=None) -> Callable[[dict], None]:
    stream = stream or sys.stdout

    def text(s: dict) -> None:
        if s.get("type") == "performance":
            m, w = s["metrics"], s["window"]
            head = "roc_auc" if s["task"] == "binary" else "mae"
            value = "n/a" if m.get(head) is None else f"{m[head]:.4g}"
            share = "n/a" if s["labelled_share"] is None else f"{s['labelled_share']:.0%}"
            print(f"performance {s['model']} {s['version']} #{w['seq']} {w['start']} → {w['end']} "
                  f"(revision {s['revision']}): {s['labelled']} of {s['count']} labelled ({share}), {head} {value}"
                  + ("" if s["enough"] else " — not enough labels yet"), file=stream, flush=True)
            return
        drift = ", ".join(s["drifted"]) or "none"
        tests = "" if s["tests_run"] else f" ({s['tests_skipped']})"
        print(f"window {s['model']} {s['version']} #{s['seq']} {s['start']} → {s['end']}: "
              f"{s['count']} events, {s['invalid']} invalid, {s['late']} late; drifted: {drift}{tests}",
              file=stream, flush=True)

    def jsonl(s: dict) -> None:
        print(orjson.dumps(s, option=orjson.OPT_SERIALIZE_NUMPY).decode(), file=stream, flush=True)

    return jsonl if fmt == "jsonl" else text


# -- http ---------------------------------------------------------------------

def build_http(settings: Settings, port: int | None = None, service: Service | None = None,
               store_url: str | None = None):
    """The API, dashboard and health endpoints on ``http.host``:``port`` (else ``http.port``),
    reading through a store (engine) of their own, started in their own thread. With
    ``service``, ``/readyz`` also looks at the consumer and ``/metrics`` shows its metrics."""
    from driftline.api.health import Readiness
    from driftline.api.http import build_app
    from driftline.api.server import HttpServer
    from driftline.api.views import Views
    from driftline.metrics import Metrics
    h = settings.http
    store = wait_for("store", lambda: build_store(settings, store_url), settings.store.max_outage)
    metrics = service.pipeline.metrics if service is not None else Metrics()
    token = h.auth_token.get_secret_value() if h.auth_token else None
    lag = getattr(metrics, "lag_values", None) if service is not None else None
    labels = {m.name: m.labels.min_labelled for m in settings.models if m.labels is not None}
    app = build_app(Views(store.browse, [m.name for m in settings.models], lag=lag, labels=labels),
                    Readiness(store.browse, service, max_checkpoint_age=max(60.0, 2 * settings.store.checkpoint_every)),
                    metrics.text if hasattr(metrics, "text") else (lambda: ""), token, _allowed_hosts(h))
    server = HttpServer(app, h.host, h.port if port is None else port, on_stop=store.close).start()
    server.store_description = store.describe()
    if not h.local and token is None:
        log.warning("HTTP API and dashboard on %s are OPEN to anyone who can reach %s: no http.auth_token "
                    "is set", server.url, h.host)
    return server


# -- references -----------------------------------------------------------------

def load_references(settings: Settings, pipeline: Pipeline, store: SqlStore) -> None:
    """Build profiles from reference files for models that have none stored yet."""
    from driftline.types import CommitUnit
    unit = CommitUnit()
    for i, spec in enumerate(settings.models):
        if spec.reference.path is None or pipeline.monitors[spec.name].profile is not None:
            continue
        profile = _reference_file(spec, f"models[{i}].reference.path")
        pipeline.set_reference(profile)
        unit.references.append(profile)
    if unit.references:
        store.commit(pipeline.group, unit)


def _reference_file(spec, where: str):
    from driftline.errors import ReferenceError_
    from driftline.monitor import reference_for
    from driftline.streams.files import read_table
    try:
        profile = reference_for(spec, read_table(spec.reference.path), spec.reference.path)
    except (ValueError, ReferenceError_) as exc:
        raise ReferenceError_(f"{where}: {exc}") from exc
    if profile.empty_features():
        log.warning("model %s: %s has no values for %s; they will not be tested", spec.name,
                    spec.reference.path, ", ".join(profile.empty_features()))
    return profile
