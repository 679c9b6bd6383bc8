"""`driftline run` with ``http.port`` set, as a real process over the embedded broker: it
serves /healthz, /readyz, the API and the consumer lag while it consumes."""

import socket
import time

import httpx
import pytest
import yaml

from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events, start_run, terminate, wait_for_windows

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(what, check, timeout: float, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_run_serves_health_api_and_lag_while_it_consumes(broker, uid, tmp_path):
    db, port, topic = tmp_path / "run.db", _free_port(), f"events-{uid}"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}", "topics": [topic],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms"},
                 store={"url": f"sqlite:///{db}"}, http={"port": port},
                 alerts={"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 1})
    producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
    for v in events(4500, seed=1):
        producer.produce(topic, v)
    producer.flush()
    proc = start_run(path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            _until("healthz", lambda: c.get("/healthz").status_code == 200, 60, proc)
            ready = _until("readyz", lambda: (r := c.get("/readyz")).status_code == 200 and r.json(), 60, proc)
            assert ready == {"ready": True, "reason": "store reachable, consumer polling"}
            wait_for_windows(proc, db, 2, timeout=60)
            for v in events(3000, start=4500, seed=2):  # more input while the API is asked
                producer.produce(topic, v)
            producer.flush()
            [m] = c.get("/api/v1/models").json()["items"]
            assert (m["model"], m["version"]) == ("m", "v1") and m["windows"] >= 2
            lag = _until("lag", lambda: (r := c.get("/api/v1/lag").json())["items"] and r, 30, proc)
            assert lag["available"] and [(i["topic"], i["partition"]) for i in lag["items"]] == [(topic, 0)]
            assert 0 <= lag["items"][0]["lag"] <= 7500  # Tansu may under-report the watermark: not exact
            assert f'driftline_consumer_lag{{partition="0",topic="{topic}"}}' in c.get("/metrics").text
            assert c.get("/readyz").status_code == 200
            _until("a third window", lambda: c.get("/api/v1/models").json()["items"][0]["windows"] >= 3, 60, proc)
        _, err = terminate(proc, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
