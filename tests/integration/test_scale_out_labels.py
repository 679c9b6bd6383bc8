"""Scale-out with labels: `driftline run` workers of one group on the embedded broker, a
6-partition topic and PostgreSQL, a labelled model whose events and labels are keyed by
entity id (each label on its prediction's partition, the model on all six), compared with a
`driftline replay` of the same records in one process:

1. three workers: every stored performance row equal (counts exact, metrics to rounding), the
   ROC AUC rule fires once;
2. one worker killed with SIGKILL mid-stream and one added: still equal, no label lost or
   credited twice; with the labels on the event topic, and on a co-partitioned label topic
   (``kafka.label_topics``, 6 partitions too, each label keyed like its prediction).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest
import yaml

from driftline.store import SqlStore
from tests.integration.test_scale_out import cluster  # noqa: F401 - the fixture
from tests.scale_data import key_of, labelled_traffic, same_performance

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RULE = {"name": "auc", "metric": "roc_auc", "below": 0.75, "resolve_after": 1}
VALUES = labelled_traffic(6000, noisy_from=4500)  # 12 windows of 500 events, 4,800 labels


def labelled(c, tmp_path) -> None:
    """Model ``m`` with labels and a labelled reference (its windows are estimated too); no ``k``."""
    docs = [orjson.loads(v) for v in labelled_traffic(2000, seed=1, share=0.0)]
    flip = np.random.default_rng(5).random(len(docs)) < 0.1
    lines = ["x,y,colour,prediction,label"] + [
        f"{d['features']['x']},{d['features']['y']},{d['features']['colour']},{d['prediction']},"
        f"{int((d['prediction'] >= 0.5) ^ f)}" for d, f in zip(docs, flip, strict=True)]
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    (m,) = [x for x in c.cfg["models"] if x["name"] == "m"]
    m |= {"labels": {"max_delay": "1h", "min_labelled": 0.3}, "rules": [RULE], "reference": {"path": str(
        tmp_path / "ref.csv")},
          # once the traffic stops every partition is quiet: the clock closes the last window
          # (longer than a rebalance, so a moved partition is not closed by its pause)
          "window": m["window"] | {"idle_close": "20s"}}
    c.cfg["models"] = [m]


def produce_keyed(c, values: list[bytes]) -> None:
    """Each event and label with its entity id as the key: the producer's partitioner puts a
    label on its prediction's partition (the same number on a label topic of as many partitions)."""
    labels = c.cfg["kafka"].get("label_topics") or [c.topic]
    for v in values:
        c.producer.produce(labels[0] if b'"label"' in v else c.topic, v, key=key_of(v).encode())
    c.producer.flush()


def on_a_label_topic(c) -> None:
    """The labels on a topic of their own, with as many partitions as the event topic."""
    from driftline.streams.kafka import ensure_topics
    from tests.integration.test_scale_out import PARTITIONS
    c.cfg["kafka"] = c.cfg["kafka"] | {"label_topics": [f"labels-{c.uid}"]}
    ensure_topics({"bootstrap.servers": c.cfg["kafka"]["bootstrap_servers"]}, {f"labels-{c.uid}": PARTITIONS})


def replayed(tmp_path, c) -> tuple[list[dict], list[tuple]]:
    db = f"sqlite:///{tmp_path / 'single.db'}"
    cfg = dict(c.cfg, kafka={"group_id": "single"}, store={"url": db},
               alerts={"console": False, "topic": None, "retrain_topic": None})
    path, data = tmp_path / "single.yaml", tmp_path / "records.jsonl"
    path.write_text(yaml.safe_dump(cfg))
    data.write_bytes(b"\n".join(VALUES) + b"\n")
    done = subprocess.run([sys.executable, "-m", "driftline.cli", "replay", "-c", str(path), str(data),
                           "--database", db], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = SqlStore(db)
    try:
        return store.results.performance("m"), fired(store)
    finally:
        store.close()


def fired(store) -> list[tuple]:
    return sorted((r["fingerprint"], r["status"]) for r in store.reads.alert_events() if r["rule"] == "auc")


def labelled_counts(rows: list[dict]) -> list[tuple]:
    """Each window's predictions, labels and ``seq`` (filled in once its drift window is merged)."""
    return [(r["version"], r["window_key"], r["count"], r["labelled"], r["seq"]) for r in rows]


def test_three_workers_store_the_performance_one_process_stores(cluster, tmp_path):  # noqa: F811
    c = cluster()
    labelled(c, tmp_path)
    expected, alerts = replayed(tmp_path, c)
    assert len(expected) == 12 and all(r["estimated"] for r in expected) and len(alerts) == 1
    for name in ("w0", "w1", "w2"):
        c.start(name)
    c.until(lambda: len(c.owners()) == 6 and len(set(c.owners().values())) == 3, "three workers sharing six partitions")
    produce_keyed(c, VALUES)
    want = labelled_counts(expected)
    c.until(lambda: labelled_counts(c.store.results.performance("m")) == want, "every label credited, once")
    time.sleep(3)  # nothing more comes
    same_performance(c.store.results.performance("m"), expected)
    assert fired(c.store) == alerts  # once, as one process
    assert len(c.windows("m")) == 12
    assert c.store.partials.pending_performance(c.group) == {}


@pytest.mark.parametrize("label_topic", [False, True], ids=["event-topic", "label-topic"])
def test_a_worker_killed_and_one_added_lose_and_credit_no_label_twice(cluster, tmp_path, label_topic):  # noqa: F811
    c = cluster()
    labelled(c, tmp_path)
    if label_topic:
        on_a_label_topic(c)
    expected, alerts = replayed(tmp_path, c)
    for name in ("w0", "w1", "w2"):
        c.start(name)
    c.until(lambda: len(set(c.owners().values())) == 3, "three workers sharing six partitions")
    half = len(VALUES) // 2
    produce_keyed(c, VALUES[:half])
    c.until(lambda: len(c.store.results.performance("m")) >= 4, "the first revisions")
    c.procs["w1"].send_signal(signal.SIGKILL)
    produce_keyed(c, VALUES[half:])
    c.start("w3")
    want = labelled_counts(expected)
    c.until(lambda: labelled_counts(c.store.results.performance("m")) == want, "every label credited after the kill",
            timeout=90)
    time.sleep(3)
    same_performance(c.store.results.performance("m"), expected)
    assert fired(c.store) == alerts
    outbox = [r for r in c.store.reads.outbox() if r["kind"] == "alert" and "auc" in orjson.dumps(r["payload"]).decode()]
    assert len(outbox) == len(alerts)  # one notification per transition


@pytest.mark.parametrize("partitions, says", [(3, "(3 partition(s)) partition by partition with event topic"),
                                              (None, "does not exist")])
def test_a_label_topic_not_partitioned_like_its_event_topic_is_refused_with_its_yaml_path(broker, uid, partitions,
                                                                                         says):
    from driftline.errors import ConfigError
    from driftline.streams.kafka import copartitioned, ensure_topics
    conf = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(conf, {f"ev-{uid}": 6} | ({f"lb-{uid}": partitions} if partitions else {}))
    with pytest.raises(ConfigError) as err:
        copartitioned(conf, {f"lb-{uid}": f"ev-{uid}"}, 10.0)
    (path, message), = err.value.problems
    assert path == "kafka.label_topics[0]" and says in message and "(6 partition(s))" in message
    ensure_topics(conf, {f"lb2-{uid}": 6})
    copartitioned(conf, {f"lb2-{uid}": f"ev-{uid}"}, 10.0)  # the same count: accepted
