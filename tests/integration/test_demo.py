"""``driftline demo`` builds the service like ``run``: the group lock, reference files, metrics."""

import copy
import signal
import threading
import time
import urllib.request

import pytest

from driftline import app, demo
from driftline.config import parse_settings
from driftline.errors import StoreError
from driftline.store import SqlStore
from driftline.streams.simulator import DEMO_CONFIG, fraud_events
from tests.helpers import ready_store

pytestmark = pytest.mark.slow


def demo_config(broker, tmp_path, uid, reference):
    import numpy as np
    ref = tmp_path / "reference.jsonl"
    ref.write_bytes(b"\n".join(fraud_events(3000, 0, 10**9, np.random.default_rng(1), 1_795_000_000_000, 1.0))
                    + b"\n")
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["kafka"] |= {"bootstrap_servers": broker.bootstrap, "topics": [f"events-{uid}"], "group_id": f"demo-{uid}",
                     "label_topics": [f"labels-{uid}"],
                     "dead_letter_topic": f"dead-{uid}", "group_instance_id": None,
                     "client": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}}
    cfg["alerts"] |= {"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"}
    cfg["store"] = {"url": f"sqlite:///{tmp_path / 'driftline.db'}"}
    cfg["metrics"] = {"port": 0, "host": "127.0.0.1"}
    if reference:
        cfg["models"][0]["reference"] = {"path": str(ref)}
    return parse_settings(cfg, {}), ref


def test_the_demo_takes_the_group_lock_serves_metrics_and_loads_reference_files(broker, tmp_path, uid, monkeypatch):
    settings, ref = demo_config(broker, tmp_path, uid, reference=True)
    db, seen, served = tmp_path / "driftline.db", {}, []
    real = app.build_metrics
    monkeypatch.setattr(app, "build_metrics", lambda s: served.append(real(s)) or served[-1])

    def meanwhile():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ((store := ready_store(db)) and store.state.load_references()):
            time.sleep(0.2)
        seen["reference"] = SqlStore(f"sqlite:///{db}").state.load_references()["fraud"]["source"]
        try:
            demo.start_afresh(settings)  # a second demo on the same data dir and group
        except StoreError as exc:
            seen["second demo"] = str(exc)
        try:
            SqlStore(f"sqlite:///{db}").state.lock_group(settings.kafka.group_id)  # what `run` takes
        except StoreError as exc:
            seen["run"] = str(exc)
        seen["db kept"] = db.exists()
        port = served[0]._server.server_port
        seen["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    checker = threading.Thread(target=meanwhile)
    checker.start()
    try:
        summary = demo.serve(settings, duration=8, rate=500)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    checker.join(60)
    assert seen["reference"] == str(ref)
    assert "another driftline process is serving consumer group" in seen["second demo"]
    assert "another driftline process is serving consumer group" in seen["run"]
    assert seen["db kept"]
    assert "driftline_commit_seconds" in seen["metrics"]
    assert "driftline demo stopped" in summary
    SqlStore(f"sqlite:///{db}").state.lock_group(settings.kafka.group_id)  # released when the demo stopped
