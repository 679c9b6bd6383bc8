"""Consumer lag on the embedded broker: the high watermark minus what the store committed.

Tansu (the embedded broker) can under-report the high watermark after batched produces
(see docs/architecture.md), so the records here are sent one at a time, each flushed:
then its watermark is the real end of the partition and lag must equal what is unread."""

from __future__ import annotations

import time

from driftline.metrics import Metrics
from driftline.streams.kafka import KafkaProducer, KafkaSource, ensure_topics

N = 40


def _produce_one_by_one(conf: dict, topic: str, n: int) -> None:
    p = KafkaProducer(conf)
    for i in range(n):
        p.produce(topic, b'{"i": %d}' % i)
        p.flush(10)


def _read_at_least(source: KafkaSource, n: int, timeout: float = 30.0) -> dict:
    ends, seen, deadline = {}, 0, time.monotonic() + timeout
    while seen < n and time.monotonic() < deadline:
        batch = source.poll()
        seen += len(batch.values)
        ends.update(batch.next_offsets)
    assert seen >= n, f"read {seen} of {n} records in {timeout} s"
    return ends


def test_lag_is_the_watermark_minus_the_committed_offset(broker, uid):
    conf = {"bootstrap.servers": broker.bootstrap}
    topic = f"lag-{uid}"
    ensure_topics(conf, {topic: 1})
    _produce_one_by_one(conf, topic, N)
    metrics, seen = Metrics(), []
    source = KafkaSource(conf, f"g-{uid}", [topic], {}, batch_size=10, poll_timeout=0.5,
                         on_lag=lambda lag: (seen.append(dict(lag)), metrics.set_lag(lag)), lag_every=0.0)
    try:
        ends = _read_at_least(source, 10)
        assert seen and seen[-1] == {(topic, 0): N}  # read, but nothing stored yet: all of it is lag
        done = ends[(topic, 0)]
        assert 10 <= done < N
        source.commit({(topic, 0): done})
        assert source.measure_lag() == {(topic, 0): N - done}
        assert metrics.lag_values() == [{"topic": topic, "partition": 0, "lag": N - done}]
        assert f'driftline_consumer_lag{{partition="0",topic="{topic}"}} {float(N - done)}' in metrics.text()
        _produce_one_by_one(conf, topic, 5)
        assert source.measure_lag() == {(topic, 0): N + 5 - done}
    finally:
        source.close()


def test_lag_is_measured_at_most_every_lag_every_seconds(broker, uid):
    conf = {"bootstrap.servers": broker.bootstrap}
    topic = f"lag-{uid}"
    ensure_topics(conf, {topic: 1})
    _produce_one_by_one(conf, topic, 3)
    now = [0.0]
    calls = []
    source = KafkaSource(conf, f"g-{uid}", [topic], {}, poll_timeout=0.2, clock=lambda: now[0],
                         on_lag=calls.append, lag_every=5.0)
    try:
        _read_at_least(source, 3)
        measured = len(calls)
        for _ in range(5):
            source.poll()
        assert len(calls) == measured  # the clock has not moved: no new watermark requests
        now[0] += 5.0
        source.poll()
        assert len(calls) == measured + 1
    finally:
        source.close()


def test_lag_goes_on_growing_while_consumption_is_paused(broker, uid):
    """A store outage pauses consumption (Service._wait_out idles the source): the lag gauge
    must show the backlog growing, not the figure from before the pause."""
    conf = {"bootstrap.servers": broker.bootstrap}
    topic = f"lag-{uid}"
    ensure_topics(conf, {topic: 1})
    _produce_one_by_one(conf, topic, 3)
    now, seen = [0.0], []
    source = KafkaSource(conf, f"g-{uid}", [topic], {}, poll_timeout=0.2, clock=lambda: now[0],
                         on_lag=lambda lag: seen.append(dict(lag)), lag_every=5.0)
    try:
        _read_at_least(source, 3)
        now[0] += 5.0
        source.poll()
        assert seen[-1] == {(topic, 0): 3}
        source.pause()
        _produce_one_by_one(conf, topic, 4)
        source.idle(0.1)
        assert seen[-1] == {(topic, 0): 3}  # not due again yet
        now[0] += 5.0
        source.idle(0.1)
        assert seen[-1] == {(topic, 0): 7}  # nothing stored: all seven are lag
    finally:
        source.close()


class _Ends:
    """What a scale-out pipeline is told by the source (assignments, and each end reached)."""

    def __init__(self):
        self.ends: list[tuple[tuple[str, int], int]] = []

    def assign(self, tps):
        return {}

    def revoke(self, tps):
        return {}

    def lose(self, tps):
        pass

    def at_end(self, tp, offset):
        self.ends.append((tp, offset))


def test_a_partitions_end_is_reported_at_the_offset_read_up_to(broker, uid):
    """One record batch of 100, read 30 at a time: the end comes once, at offset 100, after the
    last record. Scale-out releases a quiet partition only on this report at the offset it
    read up to, not on the high watermark, which this broker under-reports after a batched
    produce (the first offset of the last batch, plus one) so that a partition read halfway
    through a batch looks read to its end."""
    conf = {"bootstrap.servers": broker.bootstrap}
    topic = f"eof-{uid}"
    ensure_topics(conf, {topic: 1})
    p = KafkaProducer(conf)
    for i in range(100):
        p.produce(topic, b'{"i": %d}' % i)
    p.flush(10)
    told = _Ends()
    source = KafkaSource(conf, f"g-{uid}", [topic], {}, batch_size=30, poll_timeout=0.5, rebalance=told)
    try:
        read, deadline = 0, time.monotonic() + 30
        while (read < 100 or not told.ends) and time.monotonic() < deadline:
            batch = source.poll()
            read += len(batch.values)
            if read < 100:
                assert told.ends == [], f"an end reported after {read} of 100 records"
        assert read == 100 and told.ends == [((topic, 0), 100)]
    finally:
        source.close()
