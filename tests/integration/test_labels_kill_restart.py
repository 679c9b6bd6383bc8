"""`driftline run` killed with SIGKILL while a label stream is read, and restarted: the stored
performance of every window equals an uninterrupted `driftline replay`'s — no label credited
twice, none lost — on SQLite and PostgreSQL; malformed labels on the label topic reach the
dead-letter topic with their reason."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from driftline.store import SqlStore
from driftline.streams.kafka import KafkaProducer, ensure_topics, read_topic
from tests.conftest import empty_postgres
from tests.helpers import start_run
from tests.integration.test_kill_restart import Reader, kill, until
from tests.labels_data import check_against_sklearn, label_config, stream

pytestmark = pytest.mark.slow

_SAME = ("model", "version", "window_key", "window_kind", "start", "end", "seq", "count", "labelled",
         "labelled_share", "delay_p50", "delay_p90", "delay_max", "metrics")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kill_store(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'driftline.db'}"
    return empty_postgres()


def same(a: tuple, b: tuple) -> bool:
    """Equal counts; float sums equal to rounding (a batch split differently adds in another order)."""
    return all(_close(x, y) for x, y in zip(a, b))


def _close(x, y) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) <= 1e-12 * max(1.0, abs(x), abs(y))
    return x == y


def performance(url: str) -> list[tuple]:
    return [tuple(r[k] for k in _SAME) for r in SqlStore(url).results.performance("m")]


def test_killed_while_labels_stream_in_the_service_credits_each_label_once(broker, uid, tmp_path, kill_store):
    preds, labels, expected = stream()
    preds = preds[50:]  # no labels before their predictions: across two topics their order is not fixed
    malformed = [b'{"model": "m", "ts": 1795000000000, "label": 1}',
                 b'{"model": "m", "id": "2001", "ts": 1795000000000, "label": "yes"}',
                 b'{"model": "nope", "id": "2001", "ts": 1795000000000, "label": 1}']
    data = tmp_path / "all.jsonl"
    data.write_bytes(b"\n".join(preds + labels) + b"\n")
    cfg = tmp_path / "replay.yaml"
    cfg.write_text(yaml.safe_dump(label_config(group_id=f"g-{uid}")))
    replay_url = f"sqlite:///{tmp_path / 'replay.db'}"
    reference = subprocess.Popen([sys.executable, "-m", "driftline.cli", "replay", "-c", str(cfg), str(data),
                                  "--database", replay_url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
    events_topic, labels_topic, group = f"events-{uid}", f"labels-{uid}", f"g-{uid}"
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {events_topic: 1, labels_topic: 1})
    producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(label_config(
        bootstrap_servers=broker.bootstrap, group_id=group, topics=[events_topic], label_topics=[labels_topic],
        dead_letter_topic=f"dlq-{uid}", poll_timeout="100ms") | {
        "store": {"url": kill_store}, "alerts": {"console": False, "topic": None, "retrain_topic": None}}))
    store = Reader(kill_store)
    sent = 0

    def offset(topic: str) -> int:
        return store.load_offsets(group).get((topic, 0), 0)

    def send_labels(n: int) -> None:
        nonlocal sent
        for v in labels[sent:n]:
            producer.produce(labels_topic, v)
        producer.flush()
        sent = n

    for v in preds:
        producer.produce(events_topic, v)
    labels = malformed + labels  # dead letters only: the replay's file does not need them
    producer.flush()
    third = len(labels) // 3
    stages = [
        (0, lambda: offset(events_topic) == len(preds), "every prediction checkpointed"),
        (third, lambda: offset(labels_topic) >= third // 2, "a checkpoint in the first third of the labels"),
        (2 * third, lambda: offset(labels_topic) > third, "a checkpoint after more labels"),
        (len(labels), lambda: offset(labels_topic) > 2 * third + 100, "mid-stream through the late labels"),
    ]
    for n, done, what in stages:
        send_labels(n)
        proc = start_run(path)
        try:
            until(proc, done, what, timeout=90)
        finally:
            kill(proc)
    proc = start_run(path)
    try:
        until(proc, lambda: offset(labels_topic) == len(labels), "every label checkpointed", timeout=90)
    finally:
        # every label is checkpointed: what is checked below is in the store. Killed, not stopped:
        # once in a fresh-clone CI run this process did not exit within 60 s of SIGTERM here
        # (two topics, after four SIGKILLs; not reproduced since) - a clean stop is what
        # test_run_command and test_kill_restart check; this test checks the labels' credit
        kill(proc)
    _, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err

    dead = read_topic({"bootstrap.servers": broker.bootstrap}, f"dlq-{uid}", 3)
    assert {(d["key"], d["headers"]["driftline.reason"]) for d in dead} == {
        (f"{labels_topic}:0:0".encode(), "label event: missing field 'id'"),
        (f"{labels_topic}:0:1".encode(), "label event: field 'label' is a str, expected a number or a boolean"),
        (f"{labels_topic}:0:2".encode(), "label event: unknown model 'nope'")}

    got, want = performance(kill_store), performance(replay_url)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        diff = {k: (g[i], w[i]) for i, k in enumerate(_SAME) if g[i] != w[i]}
        assert same(g, w), diff
    rows = {r["seq"]: r for r in SqlStore(kill_store).results.performance("m")}
    check_against_sklearn({w: {"count": r["count"], "labelled": r["labelled"],
                               "labelled_share": r["labelled_share"], "enough": True, "metrics": r["metrics"],
                               "delay": {"max": r["delay_max"], "p50": r["delay_p50"]}}
                           for w, r in rows.items()}, expected)
