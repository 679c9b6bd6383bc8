"""PostgreSQL goes away under load (a TCP proxy the test controls cuts it off):
`driftline run` pauses, does not exit, commits no Kafka offset past what is
stored, and when the database is back it goes on with nothing lost or doubled.
The outage lasts 2 minutes in CI, 15 s otherwise."""

import os
import subprocess
import sys
import time

import pytest
import yaml

from driftline.errors import StoreError
from driftline.store import SqlStore
from driftline.streams.kafka import KafkaProducer, committed_offsets, ensure_topics
from tests.helpers import config, events, terminate
from tests.proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OUTAGE = 120 if os.environ.get("CI") else 15


def produce(bootstrap, topic, values):
    p = KafkaProducer({"bootstrap.servers": bootstrap})
    for v in values:
        p.produce(topic, v)
    p.flush()


def test_a_database_outage_is_waited_out_with_nothing_lost_and_no_offset_ahead(broker, uid, tmp_path, postgres_url):
    from sqlalchemy.engine import make_url
    direct = make_url(postgres_url)
    proxy = TcpProxy((direct.host, direct.port))
    through_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
    topic, group = f"events-{uid}", f"g-{uid}"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": group, "topics": [topic],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms", "batch_size": 500},
                 store={"url": through_proxy, "max_outage": "10m"},
                 alerts={"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    conf = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(conf, {topic: 1})
    produce(broker.bootstrap, topic, events(5000, seed=1))
    store = SqlStore(postgres_url)  # the test reads the database directly, not through the proxy

    def stored_windows():
        try:
            return store.reads.windows("m")
        except Exception:  # noqa: BLE001 - tables not made yet
            return []

    proc = subprocess.Popen([sys.executable, "-m", "driftline.cli", "run", "-c", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 90
        while len(stored_windows()) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
        assert len(stored_windows()) == 3, proc.stderr.read() if proc.poll() is not None else "timed out"

        proxy.down()
        produce(broker.bootstrap, topic, events(5000, start=5000, seed=2))
        end = time.monotonic() + OUTAGE
        checks = 0
        while time.monotonic() < end:
            assert proc.poll() is None, f"driftline run exited during the outage: {proc.stderr.read()}"
            kafka = committed_offsets(conf, group, topic).get(0, -1)
            stored = store.state.load_offsets(group).get((topic, 0), 0)
            assert kafka <= stored, f"Kafka offset {kafka} is ahead of the stored {stored}"
            checks += 1
            time.sleep(1)
        assert len(stored_windows()) <= 4  # at most one more window than before the cut was in flight
        proxy.up()

        deadline = time.monotonic() + 90
        while len(stored_windows()) < 8 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
        windows = stored_windows()
        assert [w["seq"] for w in windows] == list(range(8))
        assert [w["count"] for w in windows] == [1000] * 8
        assert committed_offsets(conf, group, topic)[0] <= store.state.load_offsets(group)[(topic, 0)]
        with pytest.raises(StoreError, match="another driftline process"):
            SqlStore(postgres_url).state.lock_group(group)  # the lock, lost with its session, was taken again
        out, err = terminate(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.close()
    assert proc.returncode == 0, err
    assert "consumption paused" in err and "available again after" in err, err
    assert out.count("window m v1") == 8 and checks >= OUTAGE // 2
