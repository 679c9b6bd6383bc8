"""`driftline run` over Kafka: a model version that stops sending fires its no-data alert by
the wall clock, and it resolves when events come back."""

import time

import pytest
import yaml
from sqlalchemy import select

from driftline.store import SqlStore, schema
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events, ready_store, start_run, terminate

pytestmark = pytest.mark.slow


def no_data_events(db) -> list[str]:
    store = ready_store(db)
    return [] if store is None else [e["status"] for e in store.reads.alert_events() if e["rule"] == "no_data"]


def wait(cond, timeout: float, proc) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_a_silent_model_fires_no_data_by_the_clock_and_resolves_when_it_sends_again(broker, uid, tmp_path):
    db = tmp_path / "run.db"
    topic = f"events-{uid}"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}", "topics": [topic],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms"},
                 store={"url": f"sqlite:///{db}"},
                 alerts={"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}", "group_wait": "0s"},
                 model={"rules": [{"name": "no_data", "no_data": "3s", "severity": "critical"}]})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 1})
    producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
    for v in events(2500, seed=1):
        producer.produce(topic, v)
    producer.flush()
    proc = start_run(path)
    try:
        started = time.monotonic()
        wait(lambda: no_data_events(db) == ["firing"], 60, proc)  # nothing after the first 2,500 events
        assert time.monotonic() - started >= 3
        for v in events(500, start=2500, seed=2):
            producer.produce(topic, v)
        producer.flush()
        wait(lambda: no_data_events(db) == ["firing", "resolved"], 30, proc)
        out, err = terminate(proc, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "[CRITICAL] m v1: no_data firing — no events for" in out
    with SqlStore(f"sqlite:///{db}").engine.connect() as c:  # the incident opened and resolved with it
        (row,) = c.execute(select(schema.incidents)).all()
    assert (row.status, row.severity, row.model, row.version) == ("resolved", "critical", "m", "v1")
