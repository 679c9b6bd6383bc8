"""`driftline run` as a real process: it consumes, stores, and stops cleanly on SIGTERM."""


import pytest
import yaml

from driftline.state import decode
from driftline.store import SqlStore
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events, start_run, terminate, wait_for_windows

pytestmark = pytest.mark.slow


def test_run_stores_windows_and_checkpoints_on_sigterm(broker, uid, tmp_path):
    db = tmp_path / "run.db"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}",
                        "topics": [f"events-{uid}"], "dead_letter_topic": f"dlq-{uid}",
                        "poll_timeout": "100ms"},
                 store={"url": f"sqlite:///{db}"},
                 alerts={"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {f"events-{uid}": 1})
    producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
    for v in events(4500, seed=1):
        producer.produce(f"events-{uid}", v)
    producer.flush()

    proc = start_run(path)
    try:
        wait_for_windows(proc, db, 2, timeout=60)
        out, err = terminate(proc, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.count("window m v1") == 2
    store = SqlStore(f"sqlite:///{db}")
    # what was read and not yet in a closed window is in the checkpoint's open window
    (offset,) = store.state.load_offsets(f"g-{uid}").values()
    states = store.state.load_states(f"g-{uid}")
    assert store.state.load_checkpoint(f"g-{uid}") is None  # no pickle
    open_window = decode(states[("m", "v1", "*")])["windows"]["current"]
    assert 4000 <= offset <= 4500
    assert (open_window["count"] if open_window else 0) == offset - 4000
