"""A broker that goes away is waited out, said once, and only past kafka.max_outage
ends the service, with a message that says so."""

import io
import time

import pytest

from driftline.app import build_service
from driftline.config import parse_settings
from driftline.errors import BrokerUnavailable
from driftline.streams.broker import EmbeddedBroker
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events, terminate

pytestmark = pytest.mark.slow


def test_an_unreachable_broker_is_waited_out_then_named(uid, tmp_path, caplog):
    broker = EmbeddedBroker().start()
    try:
        raw = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}",
                            "topics": [f"events-{uid}"], "dead_letter_topic": f"dlq-{uid}",
                            "poll_timeout": "100ms", "max_outage": "8s"},
                     store={"url": f"sqlite:///{tmp_path / 'b.db'}"}, alerts={"topic": None, "retrain_topic": None})
        settings = parse_settings(raw, {})
        conf = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(conf, {f"events-{uid}": 1})
        p = KafkaProducer(conf)
        for v in events(3000, seed=1):
            p.produce(f"events-{uid}", v)
        p.flush()
        service = build_service(settings, output_format="text", stream=io.StringIO())
        store = service.pipeline.store
        deadline = time.monotonic() + 60
        while len(store.reads.windows("m")) < 1 and time.monotonic() < deadline:
            service.step()
        assert len(store.reads.windows("m")) == 1
        broker.stop()
        stopped = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=r"kafka.max_outage is 8 s\); stopping. Nothing is lost"):
            while time.monotonic() - stopped < 60:
                service.step()
        assert time.monotonic() - stopped >= 8  # not before its max_outage
        assert sum("Kafka unreachable" in r.message for r in caplog.records) == 1
        service.source.close()
        store.close()
    finally:
        broker.stop()


def test_sigterm_while_start_up_waits_for_the_broker_stops_cleanly(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    from driftline.streams.broker import free_port
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(config(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}",
                                                 "max_outage": "5m"},
                                          store={"url": f"sqlite:///{tmp_path / 's.db'}"})))
    proc = subprocess.Popen([sys.executable, "-m", "driftline.cli", "run", "-c", str(path)],
                            stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "does not answer yet" in line:
                break
        time.sleep(3)
        _, rest = terminate(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "stopped during start-up" in err
    assert err.count("Connection refused") <= 3, err  # librdkafka's retries said once, not every 100 ms
