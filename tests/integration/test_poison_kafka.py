"""The poison-pill guard over the real broker: reloading the checkpoint rewinds the
consumer (a seek per partition), the record responsible is dead-lettered as an
internal error, and every window is stored once with its full count."""

import io
import time

import pytest

from driftline.app import build_service
from driftline.config import parse_settings
from driftline.streams.kafka import KafkaProducer, ensure_topics, read_topic
from tests.helpers import config, events
from tests.unit.test_guard import POISON, PoisonousDecoder, poisoned

pytestmark = pytest.mark.slow


def test_a_poison_record_over_kafka_is_isolated_and_nothing_else_is_lost(broker, uid, tmp_path):
    raw = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}",
                        "topics": [f"events-{uid}"], "dead_letter_topic": f"dlq-{uid}",
                        "poll_timeout": "100ms", "batch_size": 700},
                 store={"url": f"sqlite:///{tmp_path / 'p.db'}"}, alerts={"topic": None, "retrain_topic": None})
    settings = parse_settings(raw, {})
    conf = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(conf, {f"events-{uid}": 1, f"dlq-{uid}": 1})
    p = KafkaProducer(conf)
    for v in poisoned(events(6000, seed=1), 3333):
        p.produce(f"events-{uid}", v)
    p.flush()
    service = build_service(settings, output_format="text", stream=io.StringIO())
    service.pipeline.decoder = PoisonousDecoder(settings.models)
    store = service.pipeline.store
    deadline = time.monotonic() + 90
    while len(store.reads.windows("m")) < 4 and time.monotonic() < deadline:
        service.step()
    service.shutdown()
    windows = store.reads.windows("m")
    assert [w["seq"] for w in windows] == [0, 1, 2, 3]
    assert [w["count"] for w in windows] == [1000] * 4
    (dead,) = read_topic(conf, f"dlq-{uid}", 1)
    assert dead["headers"]["driftline.reason"] == "internal error: RuntimeError: decoder bug"
    assert dead["headers"]["driftline.source.offset"] == "3333" and POISON in dead["value"]
    assert service.guard.poisoned == 1
