"""Dead letters never fail the stream: too large is cut (with its size and sha256),
a broker that is not there yet is waited for, and each carries its source as key."""

import hashlib

import pytest

from driftline.errors import DeadLettersUnavailable
from driftline.streams.broker import EmbeddedBroker, free_port
from driftline.streams.kafka import DeadLetters, KafkaProducer, ensure_topics, read_topic
from driftline.types import BadRecord, SourcePosition

pytestmark = pytest.mark.slow


def test_a_record_too_large_for_the_topic_is_cut_with_its_size_and_hash(broker, uid):
    conf = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(conf, {f"dlq-{uid}": 1})
    dead = DeadLetters(KafkaProducer(conf), f"dlq-{uid}")
    huge = b'{"model": "m", "features": {"x": "' + b"a" * 1_500_000
    dead.send(BadRecord("malformed JSON: unexpected end of data", huge, SourcePosition("events", 0, 41)))
    dead.send(BadRecord("unknown model 'churn'", b'{"model": "churn"}', SourcePosition("events", 0, 42)))
    dead.flush()
    got = sorted(read_topic(conf, f"dlq-{uid}", 2), key=lambda d: d["key"])
    assert [d["key"] for d in got] == [b"events:0:41", b"events:0:42"]
    cut, small = got
    assert len(cut["value"]) < 1_000_000 and huge.startswith(cut["value"])
    assert cut["headers"]["driftline.original.size"] == str(len(huge))
    assert cut["headers"]["driftline.original.sha256"] == hashlib.sha256(huge).hexdigest()
    assert cut["headers"]["driftline.reason"].startswith("malformed JSON")
    assert small["value"] == b'{"model": "churn"}' and "driftline.truncated" not in small["headers"]


def test_dead_letters_are_kept_until_a_broker_takes_them():
    port = free_port()
    conf = {"bootstrap.servers": f"127.0.0.1:{port}"}
    dead = DeadLetters(KafkaProducer(conf), "dlq", flush_timeout=1.0)
    dead.send(BadRecord("missing field 'ts'", b'{"model": "m"}', SourcePosition("events", 3, 7)))
    with pytest.raises(DeadLettersUnavailable, match="1 bad record"):
        dead.flush()  # no broker: the service would pause here, not exit
    with EmbeddedBroker(port=port) as b:
        ensure_topics(conf, {"dlq": 1})
        for _ in range(30):
            try:
                dead.flush()
                break
            except DeadLettersUnavailable:
                continue
        else:
            pytest.fail("the dead letter never reached the broker")
        (got,) = read_topic({"bootstrap.servers": b.bootstrap}, "dlq", 1)
    assert got["key"] == b"events:3:7" and got["headers"]["driftline.reason"] == "missing field 'ts'"
