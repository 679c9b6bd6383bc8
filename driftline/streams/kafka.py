"""Kafka: the only module that imports confluent_kafka.

The consumer reads in batches with auto-commit off; offsets are committed
only after the store has committed the window results that cover them, and
on assignment the consumer resumes from the offsets in the store.
"""

from __future__ import annotations

import logging
import time

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftline.errors import BrokerError, DeliveryError, SourceError
from driftline.types import BadRecord, Batch, SourcePosition

log = logging.getLogger(__name__)

# Joins the group in ~3 s on the embedded broker (librdkafka's default takes ~23 s).
CONSUMER_DEFAULTS = {"session.timeout.ms": 6000, "log.connection.close": False, "heartbeat.interval.ms": 500,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "enable.partition.eof": False}


def client_config(bootstrap: str, extra: dict | None = None, sasl_username: str | None = None,
                  sasl_password: str | None = None) -> dict:
    conf = {"bootstrap.servers": bootstrap}
    if sasl_username:
        conf |= {"sasl.username": sasl_username, "sasl.password": sasl_password or "",
                 "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"}
    return conf | dict(extra or {})


def wait_ready(conf: dict, timeout: float = 15.0) -> None:
    """Block until the cluster answers a metadata request."""
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"Kafka at {conf['bootstrap.servers']} did not answer: {exc}") from exc
            time.sleep(0.1)


def ensure_topics(conf: dict, topics: dict[str, int]) -> None:
    """Create topics that do not exist yet, with the given partition counts."""
    admin = AdminClient(conf)
    existing = admin.list_topics(timeout=10).topics
    new = [NewTopic(t, num_partitions=n, replication_factor=1)
           for t, n in topics.items() if t not in existing]
    if not new:
        return
    for topic, fut in admin.create_topics(new).items():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SourceError(f"cannot create topic {topic!r}: {exc}") from exc


class KafkaSource:
    def __init__(self, conf: dict, group: str, topics: list[str], start_offsets: dict,
                 batch_size: int = 10000, poll_timeout: float = 0.5):
        self.batch_size, self.poll_timeout = batch_size, poll_timeout
        self.start_offsets = dict(start_offsets)
        self.consumer = Consumer(CONSUMER_DEFAULTS | conf | {"group.id": group})
        self.consumer.subscribe(topics, on_assign=self._on_assign)
        self.assigned = False

    def _on_assign(self, consumer, partitions) -> None:
        for tp in partitions:
            stored = self.start_offsets.get((tp.topic, tp.partition))
            if stored is not None:
                tp.offset = stored
        consumer.assign(partitions)
        self.assigned = True
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions))

    def poll(self) -> Batch:
        msgs = self.consumer.consume(self.batch_size, self.poll_timeout)
        good, ends = [], {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise SourceError(f"Kafka consumer failed: {err}")
                log.warning("Kafka consumer: %s", err)
                continue
            good.append(m)
            ends[(m.topic(), m.partition())] = m.offset() + 1
        values = [m.value() for m in good]

        def position(i: int) -> SourcePosition:
            m = good[i]
            return SourcePosition(m.topic(), m.partition(), m.offset())

        return Batch(values, position, ends)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self.consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:  # the store holds the truth; this is for lag tooling
            log.warning("could not commit offsets to Kafka (the store has them): %s", exc)
        self.start_offsets.update(offsets)

    def close(self) -> None:
        self.consumer.close()


class KafkaProducer:
    """Dead letters, alerts and triggers go out through one producer."""

    def __init__(self, conf: dict):
        self.producer = Producer(conf | {"linger.ms": 20, "log.connection.close": False})
        self._errors: list[str] = []

    def _report(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, value: bytes, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=self._report)
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left or errors:
            raise DeliveryError(f"Kafka did not accept {left} message(s): {'; '.join(errors[:5])}")


class DeadLetters:
    """Writes bad records to the dead-letter topic with the reason in headers."""

    def __init__(self, producer: KafkaProducer, topic: str):
        self.producer, self.topic = producer, topic
        self.count = 0

    def send(self, record: BadRecord) -> None:
        pos = record.position
        headers = [("driftline.reason", record.reason.encode()),
                   ("driftline.source.topic", pos.topic.encode()),
                   ("driftline.source.partition", str(pos.partition).encode()),
                   ("driftline.source.offset", str(pos.offset).encode())]
        if record.model:
            headers.append(("driftline.model", str(record.model).encode()))
        self.producer.produce(self.topic, record.value or b"", None, headers)
        self.count += 1

    def flush(self) -> None:
        self.producer.flush()


class TopicSink:
    """Alerts as JSON, triggers as structured-mode CloudEvents, on a Kafka topic."""

    def __init__(self, producer: KafkaProducer, topic: str, kind: str):
        self.producer, self.topic = producer, topic
        self.accepts = frozenset({kind})

    def send(self, kind: str, payload: dict, key: str) -> None:
        if kind == "trigger":
            body, headers = payload["event"], [("content-type", b"application/cloudevents+json")]
            msg_key = body["subject"].encode()
        else:
            body, headers = payload, [("content-type", b"application/json")]
            msg_key = payload["fingerprint"].encode()
        headers.append(("driftline.idempotency-key", key.encode()))
        self.producer.produce(self.topic, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                              msg_key, headers)
        self.producer.flush(10)


def read_topic(conf: dict, topic: str, expected: int, timeout: float = 30.0) -> list[dict]:
    """Read ``expected`` records from the start of ``topic`` (tests and tools)."""
    c = Consumer(conf | {"group.id": f"driftline-reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    out.append({"value": m.value(), "key": m.key(),
                                "headers": {k: v.decode() for k, v in (m.headers() or [])},
                                "partition": m.partition(), "offset": m.offset()})
    finally:
        c.close()
    return out
