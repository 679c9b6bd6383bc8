"""Kafka: the only module that imports confluent_kafka.

The consumer reads in batches with auto-commit off; offsets are committed
only after the store has committed the window results that cover them, and
on assignment the consumer resumes from the offsets in the store.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftline.errors import BrokerError, DeadLettersUnavailable, DeliveryError, InputError, SourceError
from driftline.types import BadRecord, Batch, Receipt, SourcePosition

log = logging.getLogger(__name__)

# Joins the group in ~3 s on the embedded broker (librdkafka's default takes ~23 s).
CONSUMER_DEFAULTS = {"session.timeout.ms": 6000, "log.connection.close": False, "heartbeat.interval.ms": 500,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "enable.partition.eof": False,
                     # once its prefetch queue is full (queued.min.messages), librdkafka waits this long
                     # before it fetches again (1 s by default): a consumer catching up on a backlog
                     # then drains the queue and waits (docs/benchmarks.md, session 6)
                     "fetch.queue.backoff.ms": 10}


class _Repeats(logging.Filter):
    """Lets one librdkafka line of a kind through per ``every`` seconds (a broker that is
    down makes it log a connection failure several times a second)."""

    def __init__(self, every: float = 60.0):
        super().__init__()
        self.every, self._seen = every, {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"\d+", "#", record.getMessage())
        now = time.monotonic()
        if now - self._seen.get(key, -self.every) < self.every:
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = now
        return True


#: librdkafka's own log, through Python logging (so redaction and --log-format apply), deduplicated
LIBRDKAFKA_LOG = logging.getLogger("driftline.librdkafka")
LIBRDKAFKA_LOG.addFilter(_Repeats())


def _logged(conf: dict) -> dict:
    return {"logger": LIBRDKAFKA_LOG} | conf


def client_config(bootstrap: str, extra: dict | None = None, sasl_username: str | None = None,
                  sasl_password: str | None = None) -> dict:
    conf = {"bootstrap.servers": bootstrap}
    if sasl_username:
        conf |= {"sasl.username": sasl_username, "sasl.password": sasl_password or "",
                 "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"}
    return conf | dict(extra or {})


def wait_ready(conf: dict, timeout: float = 15.0) -> None:
    """Block until the cluster answers a metadata request."""
    admin = AdminClient(_logged(conf) | {"error_cb": lambda err: None})  # the first failure is logged below
    started = time.monotonic()
    said = False
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except KafkaException as exc:
            waited = time.monotonic() - started
            if waited > timeout:
                raise BrokerError(f"Kafka at {conf['bootstrap.servers']} did not answer in {waited:.0f} s: "
                                  f"{exc}") from exc
            if waited > 5 and not said:
                log.error("Kafka at %s does not answer yet (%s); waiting up to %.0f s",
                          conf["bootstrap.servers"], exc, timeout)
                said = True
            time.sleep(0.1)


def ensure_topics(conf: dict, topics: dict[str, int]) -> None:
    """Create topics that do not exist yet, with the given partition counts."""
    admin = AdminClient(_logged(conf))
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


#: errors that mean no broker can be reached (librdkafka reconnects by itself; we wait and say so)
_UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE,
                          KafkaError._TIMED_OUT})


class KafkaSource:
    """Batches from a consumer group; resumes from the store's offsets on assignment.

    ``instance_id`` makes the consumer a static group member, so a restarted process
    takes its partitions back without waiting for the dead one's session to expire.

    Consumer lag (:attr:`lag`, and ``on_lag(lag)`` when it changes) is measured at most
    every ``lag_every`` seconds, from a poll: per assigned partition, the broker's high
    watermark minus the offset the store has committed (what is read but not yet
    checkpointed counts as lag). The embedded broker can under-report the watermark
    after batched produces, so there lag can read low.

    ``paired`` (scale-out with ``kafka.label_topics``: label topic → event topic) reads each
    label topic's partition p with the event topic's partition p, wherever the group assigns
    that one: the group subscribes to the event topics only, and a second consumer, assigned
    by hand from the store's offsets, follows its assignment. No assignor can promise that two
    topics' partitions land together (cooperative-sticky does not), and a label must be read
    where its prediction's partition is."""

    def __init__(self, conf: dict, group: str, topics: list[str], start_offsets: dict,
                 batch_size: int = 10000, poll_timeout: float = 0.5, instance_id: str | None = None,
                 clock=time.monotonic, on_lag=None, lag_every: float = 5.0, rebalance=None,
                 paired: dict[str, str] | None = None):
        self.batch_size, self.poll_timeout, self.clock = batch_size, poll_timeout, clock
        self.start_offsets = dict(start_offsets)
        self.on_lag, self.lag_every = on_lag, lag_every
        self.lag: dict[tuple[str, int], int] = {}
        self._lag_at = -lag_every
        self.first_seen: dict[tuple[str, int], int] = {}
        self.down_since: float | None = None
        self._last_probe = 0.0
        extra = {"group.instance.id": instance_id} if instance_id else {}
        #: scale-out (``scale/pipeline.py``): told of each partition assigned, revoked or lost
        self.rebalance, self._counts, self._counts_at = rebalance, {}, -60.0
        scale = {}
        if rebalance is not None:  # and the end of each partition reached, so an empty one holds nothing
            scale = {"partition.assignment.strategy": "cooperative-sticky", "enable.partition.eof": True}
        final = CONSUMER_DEFAULTS | scale | _logged(conf) | extra | {"group.id": group, "error_cb": self._error}
        #: incremental assignment (cooperative-sticky), else every rebalance revokes and assigns everything
        self._cooperative = "cooperative" in str(final.get("partition.assignment.strategy", ""))
        self.consumer = Consumer(final)
        self.paired = paired or {}
        self.labels = None
        if self.paired:  # never subscribes: assigned by hand, committed offsets for lag tooling only
            self.labels = Consumer(CONSUMER_DEFAULTS | _logged(conf) | {"group.id": f"{group}.labels",
                                                                       "error_cb": self._error})
            topics = [t for t in topics if t not in self.paired]
        if rebalance is None:
            self.consumer.subscribe(topics, on_assign=self._on_assign)
        else:
            self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                    on_lost=self._on_lost)
        self.assigned = False

    def _on_revoke(self, consumer, partitions) -> None:
        offsets = self.rebalance.revoke([(tp.topic, tp.partition) for tp in partitions])
        if offsets:
            self.commit(offsets)
        self._unassign_labels(partitions)
        log.info("revoked %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing")

    def _on_lost(self, consumer, partitions) -> None:
        self.rebalance.lose([(tp.topic, tp.partition) for tp in partitions])
        self._unassign_labels(partitions)
        log.warning("lost %s (another process owns them now)", ", ".join(f"{p.topic}[{p.partition}]"
                                                                          for p in partitions))

    def ends(self, partitions: list[tuple[str, int]], timeout: float = 1.0) -> dict[tuple[str, int], tuple[int, int]]:
        """The broker's (low, high) watermarks of any partitions, assigned here or not (those it
        does not answer for are left out)."""
        out = {}
        for topic, partition in partitions:
            try:
                out[(topic, partition)] = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout, cached=False)
            except KafkaException as exc:
                log.debug("no watermarks for %s[%d]: %s", topic, partition, exc)
        return out

    def partition_counts(self, every: float = 30.0) -> dict[str, int]:
        """Partitions per subscribed topic, from the broker's metadata (cached for ``every`` seconds)."""
        if self.clock() - self._counts_at >= every:
            try:
                topics = self.consumer.list_topics(timeout=2).topics
                self._counts = {name: len(meta.partitions) for name, meta in topics.items()}
                self._counts_at = self.clock()
            except KafkaException as exc:
                log.debug("no metadata for the partition counts: %s", exc)
        return self._counts

    def _on_assign(self, consumer, partitions) -> None:
        if self.rebalance is not None:  # the offsets as the store has them now (another process wrote them)
            self.start_offsets.update(self.rebalance.assign([(tp.topic, tp.partition) for tp in partitions]))
        for tp in partitions:
            stored = self.start_offsets.get((tp.topic, tp.partition))
            if stored is not None:
                tp.offset = stored
        if self.rebalance is not None and self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        self._assign_labels(partitions)
        self.assigned = True
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions))

    def _label_partitions(self, partitions) -> list[TopicPartition]:
        return [TopicPartition(label, tp.partition) for tp in partitions
                for label, topic in self.paired.items() if topic == tp.topic]

    def _assign_labels(self, partitions) -> None:
        """Read the label partitions paired with the newly assigned ``partitions`` (same numbers)."""
        labels = self._label_partitions(partitions)
        if self.labels is None or not labels:
            return
        for tp in labels:
            stored = self.start_offsets.get((tp.topic, tp.partition))
            if stored is not None:
                tp.offset = stored
        self.labels.incremental_assign(labels)
        log.info("reading labels of %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in labels))

    def _unassign_labels(self, partitions) -> None:
        labels = self._label_partitions(partitions)
        if self.labels is not None and labels:
            self.labels.incremental_unassign(labels)

    def _consumers(self) -> list:
        return [self.consumer] if self.labels is None else [self.consumer, self.labels]

    def _error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("Kafka client failed: %s", err)
        elif err.code() in _UNREACHABLE:
            if self.down_since is None:
                self.down_since = self.clock()
                log.error("Kafka unreachable: %s; waiting for it (the client reconnects by itself)", err)
        else:
            log.warning("Kafka client: %s", err)

    def poll(self) -> Batch:
        msgs = self.consumer.consume(self.batch_size, self.poll_timeout)
        if self.labels is not None:  # the paired label partitions' records, as many as are there now
            msgs += self.labels.consume(self.batch_size, 0)
        good = msgs if all(m.error() is None for m in msgs) else self._errors(msgs)
        sources = [(m.topic(), m.partition()) for m in good]
        # the last and the first message of each partition, found by dicts (no per-message Python step)
        ends = {key: m.offset() + 1 for key, m in dict(zip(sources, good)).items()}
        for key, m in dict(zip(reversed(sources), reversed(good))).items():
            self.first_seen.setdefault(key, m.offset())
        if good:
            self._reachable()
        elif self.down_since is not None:
            self._probe()
        self._lag_due()
        values = [m.value() for m in good]

        def position(i: int) -> SourcePosition:
            m = good[i]
            return SourcePosition(m.topic(), m.partition(), m.offset())

        return Batch(values, position, ends, sources)

    def _errors(self, msgs: list) -> list:
        """The messages without the errors among them: partition ends (scale-out asks for them)
        are reported, others logged; a fatal one raises."""
        good = []
        for m in msgs:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                self.rebalance.at_end((m.topic(), m.partition()), m.offset())
            elif err.fatal():
                raise SourceError(f"Kafka consumer failed: {err}")
            else:
                log.warning("Kafka consumer: %s", err)
        return good

    def measure_lag(self, timeout: float = 1.0) -> dict[tuple[str, int], int]:
        """High watermark minus the stored offset, per assigned partition (a partition with
        nothing stored counts from its low watermark); one metadata request per partition."""
        self._lag_at = self.clock()
        lag = {}
        for tp in [tp for c in self._consumers() for tp in c.assignment()]:
            try:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            except KafkaException as exc:
                log.debug("no watermark for %s[%d]: %s", tp.topic, tp.partition, exc)
                continue
            done = self.start_offsets.get((tp.topic, tp.partition), low)
            lag[(tp.topic, tp.partition)] = max(high - max(done, low), 0)
        self.lag = lag
        if self.on_lag is not None:
            self.on_lag(lag)
        return lag

    def _probe(self, every: float = 5.0) -> None:
        if self.clock() - self._last_probe < every:
            return
        self._last_probe = self.clock()
        try:
            self.consumer.list_topics(timeout=2)
        except KafkaException:
            return
        self._reachable()

    def _reachable(self) -> None:
        if self.down_since is not None:
            log.warning("Kafka reachable again after %.0f s", self.clock() - self.down_since)
            self.down_since = None

    def outage(self) -> float:
        """Seconds since no broker could be reached (0 while one can)."""
        return 0.0 if self.down_since is None else self.clock() - self.down_since

    def rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        """Read again from ``offsets`` (or this run's first offset, for partitions not in it)."""
        for consumer in self._consumers():
            for tp in consumer.assignment():
                key = (tp.topic, tp.partition)
                target = offsets.get(key, self.first_seen.get(key))
                if target is not None:
                    consumer.seek(TopicPartition(tp.topic, tp.partition, target))

    def pause(self) -> None:
        for consumer in self._consumers():
            consumer.pause(consumer.assignment())

    def idle(self, seconds: float) -> None:
        """Wait while paused; polling keeps the group membership (anything fetched is read again).
        Lag is measured here too: during a store outage it grows, and the gauge must show it."""
        self.consumer.consume(self.batch_size, seconds)
        self._lag_due()

    def _lag_due(self) -> None:
        if self.down_since is None and self.clock() - self._lag_at >= self.lag_every:
            self.measure_lag()

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        for consumer in self._consumers():
            consumer.resume(consumer.assignment())
        self.rewind(offsets)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        for consumer in self._consumers():  # a paired label topic's through the consumer that reads it
            mine = consumer is self.labels
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t in self.paired) == mine]
            if not tps:
                continue
            try:
                consumer.commit(offsets=tps, asynchronous=False)
            except KafkaException as exc:  # the store holds the truth; this is for lag tooling
                log.warning("could not commit offsets to Kafka (the store has them): %s", exc)
        self.start_offsets.update(offsets)

    def close(self) -> None:
        for consumer in self._consumers():
            consumer.close()


class KafkaProducer:
    """Dead letters, alerts and triggers go out through one producer."""

    def __init__(self, conf: dict):
        self.producer = Producer(_logged(conf) | {"linger.ms": 20, "log.connection.close": False})
        self._errors: list[str] = []

    def _report(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, value: bytes, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None, on_delivery=None,
                queue_timeout: float | None = None, partition: int | None = None) -> None:
        """Queue one message (to ``partition``, if given); with ``queue_timeout``, a queue still
        full after it raises ``BufferError``."""
        deadline = None if queue_timeout is None else time.monotonic() + queue_timeout
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery or self._report,
                                      **where)
                break
            except BufferError:
                if deadline is not None and time.monotonic() > deadline:
                    raise
                self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for queued messages; raise if some were refused or are still queued."""
        left = self.producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left or errors:
            raise DeliveryError(f"Kafka did not accept {left} message(s): {'; '.join(errors[:5])}")
        return left

    def wait(self, timeout: float) -> int:
        """Wait for queued messages without raising; return how many are still queued."""
        return self.producer.flush(timeout)


#: a dead letter's value is cut to this size (Kafka's default message.max.bytes is 1,000,000)
DEAD_LETTER_MAX_BYTES = 900_000


class DeadLetters:
    """Writes bad records to the dead-letter topic with the reason in headers.

    The key is ``topic:partition:offset`` of the source record, so one sent again
    after a crash can be recognised. A value too large for the topic is cut, with
    its original size and sha256 in headers. A record the topic has not taken is
    kept and sent again on the next :meth:`flush`, which raises
    :class:`DeadLettersUnavailable` until every one is in: the service pauses
    instead of committing offsets past a bad record that is not yet stored.
    """

    def __init__(self, producer: KafkaProducer, topic: str, max_bytes: int = DEAD_LETTER_MAX_BYTES,
                 flush_timeout: float = 10.0):
        self.producer, self.topic = producer, topic
        self.max_bytes, self.flush_timeout = max_bytes, flush_timeout
        self.count = 0
        self._unconfirmed: dict[int, tuple[bytes, bytes, list]] = {}
        self._failed: dict[int, str] = {}
        self._next = 0

    def send(self, record: BadRecord) -> None:
        pos = record.position
        headers = [("driftline.reason", record.reason[:2000].encode("utf-8", "replace")),
                   ("driftline.source.topic", pos.topic.encode("utf-8", "replace")),
                   ("driftline.source.partition", str(pos.partition).encode()),
                   ("driftline.source.offset", str(pos.offset).encode())]
        if record.model:
            headers.append(("driftline.model", str(record.model).encode("utf-8", "replace")))
        key = f"{pos.topic}:{pos.partition}:{pos.offset}".encode("utf-8", "replace")
        value, headers = truncated(record.value or b"", headers, self.max_bytes)
        self._next += 1
        self._unconfirmed[self._next] = (value, key, headers)
        self._produce(self._next)
        self.count += 1

    def _produce(self, ident: int) -> None:
        def done(err, _msg) -> None:
            if err is None:
                self._unconfirmed.pop(ident, None)
                self._failed.pop(ident, None)
                return
            self._failed[ident] = str(err)
            if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:  # the topic takes less than we thought
                self._shrink(ident)

        self._failed.pop(ident, None)
        while True:
            value, key, headers = self._unconfirmed[ident]
            try:
                self.producer.produce(self.topic, value, key, headers, on_delivery=done, queue_timeout=1.0)
                return
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE or len(value) <= 1024:
                    self._failed[ident] = f"not queued: {exc}"
                    return
                self._shrink(ident)
            except BufferError as exc:
                self._failed[ident] = f"not queued: producer queue full ({exc})"
                return

    def _shrink(self, ident: int) -> None:
        value, key, headers = self._unconfirmed[ident]
        value, headers = truncated(value, headers, max(len(value) // 4, 1024))
        self._unconfirmed[ident] = (value, key, headers)

    def flush(self) -> None:
        for ident in list(self._failed):  # refused or never queued: send again
            self._produce(ident)
        self.producer.wait(self.flush_timeout)
        if self._unconfirmed:
            reasons = sorted(set(self._failed.values())) or ["not confirmed yet"]
            raise DeadLettersUnavailable(f"dead-letter topic {self.topic!r}: {len(self._unconfirmed)} bad "
                                         f"record(s) not accepted yet ({'; '.join(reasons[:3])})")


def truncated(value: bytes, headers: list, limit: int) -> tuple[bytes, list]:
    """``value`` cut to ``limit`` bytes, with headers saying what it was (once)."""
    if len(value) <= limit:
        return value, headers
    if not any(k == "driftline.original.size" for k, _ in headers):
        headers = [*headers, ("driftline.original.size", str(len(value)).encode()),
                   ("driftline.original.sha256", hashlib.sha256(value).hexdigest().encode()),
                   ("driftline.truncated", b"true")]
    return value[:limit], headers


class TopicSink:
    """Alerts as JSON, triggers as structured-mode CloudEvents, on a Kafka topic."""

    def __init__(self, producer: KafkaProducer, topic: str, kind: str):
        self.producer, self.topic = producer, topic
        self.accepts = frozenset({kind})

    def send(self, kind: str, payload: dict, key: str, ctx=None) -> Receipt:
        """Produce and flush; the receipt has the topic, and the partition and offset the
        broker's delivery report gave (it has come when ``flush`` returns)."""
        if kind == "trigger":
            body, headers = payload["event"], [("content-type", b"application/cloudevents+json")]
            msg_key = body["subject"].encode()
        else:
            body, headers = payload, [("content-type", b"application/json")]
            msg_key = payload["fingerprint"].encode()
        headers.append(("driftline.idempotency-key", key.encode()))
        detail = {"topic": self.topic}

        def delivered(err, msg) -> None:
            if err is None:
                detail.update(partition=msg.partition(), offset=msg.offset())
            else:
                self.producer._report(err, msg)

        self.producer.produce(self.topic, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                              msg_key, headers, on_delivery=delivered)
        self.producer.flush(10)
        return Receipt(detail=detail)


def copartitioned(conf: dict, paired: dict[str, str], timeout: float) -> None:
    """Scale-out with label topics: each must exist with its event topic's partition count (a
    label on partition p is read with the event topic's partition p), else a :class:`ConfigError`
    at ``kafka.label_topics[i]``."""
    from driftline.errors import ConfigError
    admin = AdminClient(_logged(conf) | {"error_cb": lambda err: None})
    known = admin.list_topics(timeout=min(timeout, 30.0)).topics
    count = {name: len(meta.partitions) for name, meta in known.items() if meta.error is None}
    for i, (label, topic) in enumerate(paired.items()):
        if count.get(label) != count.get(topic):
            have = {t: (f"{count[t]} partition(s)" if t in count else "does not exist") for t in (topic, label)}
            raise ConfigError([(f"kafka.label_topics[{i}]",
                                f"kafka.scale_out reads label topic {label!r} ({have[label]}) partition by partition "
                                f"with event topic {topic!r} ({have[topic]}): create both with the same "
                                "partition count, and produce each label with its prediction's key")])

def committed_offsets(conf: dict, group: str, topic: str, partitions: int = 1) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic`` (tests and lag tooling); -1001 when none."""
    c = Consumer(conf | {"group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


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


def sample_topic(conf: dict, topic: str, seconds: float, limit: int, clock=time.monotonic) -> list[bytes]:
    """Up to ``limit`` record values of ``topic`` from its beginning, read for at most
    ``seconds`` (for ``driftline init``): a throw-away consumer group that commits nothing."""
    admin = AdminClient(_logged(conf) | {"error_cb": lambda err: None})
    try:
        known = admin.list_topics(timeout=min(10.0, max(seconds, 1.0))).topics
    except KafkaException as exc:
        raise SourceError(f"Kafka at {conf.get('bootstrap.servers')} did not answer: {exc}") from exc
    if topic not in known:
        raise InputError(f"topic {topic!r} does not exist at {conf.get('bootstrap.servers')} "
                          f"(topics there: {', '.join(sorted(t for t in known if not t.startswith('_'))) or 'none'})")
    group = f"driftline-init-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(CONSUMER_DEFAULTS | _logged(conf) | {"group.id": group, "error_cb": lambda err: None})
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = clock() + seconds
        while len(values) < limit and clock() < deadline:
            for m in consumer.consume(min(limit - len(values), 1000), min(0.5, max(deadline - clock(), 0.01))):
                if m.error() is None and m.value() is not None:
                    values.append(m.value())
    finally:
        consumer.close()
    return values
