"""The demo's simulated labels: their relation to the score, their delays, and the order the
traffic produces them in among the events (a recording producer, no broker)."""

import time

import numpy as np
import orjson
from sklearn.metrics import roc_auc_score

from driftline.demo import Phases, Traffic, performance_line
from driftline.streams.simulator import LABEL_DELAY, fraud_batch, fraud_events, fraud_labels

START = 1_795_000_000_000


class RecordingProducer:
    def __init__(self):
        self.sent: list[tuple[str, bytes]] = []

    def produce(self, topic: str, value: bytes) -> None:
        self.sent.append((topic, value))

    def flush(self) -> None:
        pass


def labels_of(n: int, concept: bool, seed: int = 3):
    cols = fraud_batch(n, 0, 10**9, np.random.default_rng(seed))
    out = fraud_labels(cols, np.full(n, concept), np.random.default_rng(seed + 1), START, 1.0)
    return cols, [orjson.loads(v) for _, v in out], np.array([ts for ts, _ in out])


def test_labels_follow_the_score_in_normal_traffic_and_not_under_concept_drift():
    cols, labels, _ = labels_of(100_000, concept=False)
    idx = np.array([int(x["id"], 16) for x in labels])
    y, score = np.array([x["label"] for x in labels]), cols["prediction"][idx]
    for lo, hi in [(0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.0)]:  # calibrated: P(y=1 | score) = score
        sel = (score >= lo) & (score < hi)
        assert abs(y[sel].mean() - score[sel].mean()) < 4 * np.sqrt(score[sel].mean() / sel.sum()) + 0.005
    normal = roc_auc_score(y, score)
    cols, labels, _ = labels_of(100_000, concept=True)
    idx = np.array([int(x["id"], 16) for x in labels])
    moved = roc_auc_score([x["label"] for x in labels], cols["prediction"][idx])
    assert 0.66 < normal < 0.72 and 0.5 < moved < 0.57
    assert abs(np.mean([x["label"] for x in labels]) - cols["prediction"].mean()) < 0.01  # as many frauds


def test_label_delays_are_mostly_seconds_with_a_tail_of_minutes_and_some_never_come():
    cols, labels, ts = labels_of(100_000, concept=False)
    idx = np.array([int(x["id"], 16) for x in labels])
    delay = (ts - (START + idx)) / 1000
    assert abs(1 - len(labels) / 100_000 - LABEL_DELAY["never"]) < 0.003
    assert delay.min() >= LABEL_DELAY["floor"]
    p50, p90, p99 = np.quantile(delay, [0.5, 0.9, 0.99])
    assert 2.8 < p50 < 3.2 and 17 < p90 < 23 and 80 < p99 < 130 and delay.max() > 600
    assert all(x["ts"] == t for x, t in zip(labels, ts.tolist()))


def event_ts(value: bytes) -> int | None:
    """A simulated event's time; ``None`` for the bad records the traffic mixes in."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record["ts"] if "id" in record and "ts" in record else None


def test_the_traffic_sends_each_label_when_its_time_comes_among_the_events():
    producer = RecordingProducer()
    traffic = Traffic(producer, "events", 20_000, Phases(10**9, 1), label_topic="labels")
    traffic.start()
    time.sleep(1.5)
    traffic.stop_event.set()
    traffic.join(10)
    order = [("event", event_ts(v)) if t == "events" else ("label", orjson.loads(v)["ts"]) for t, v in producer.sent]
    order = [(kind, ts) for kind, ts in order if ts is not None]
    assert sum(k == "event" for k, _ in order) >= 10_000 and traffic.labels_sent > 1000
    labels = [ts for kind, ts in order if kind == "label"]
    assert len(labels) == traffic.labels_sent and labels == sorted(labels)
    for (kind, ts), (next_kind, next_ts) in zip(order, order[1:]):
        if kind == "event" and next_kind == "label":
            assert next_ts > ts  # a label known by then would have gone before this event
        if kind == "label" and next_kind == "event":
            assert ts <= next_ts  # sent before the first event at or after its time


def test_the_events_are_those_the_demo_always_sent():
    """``fraud_batch`` draws what ``fraud_events`` always drew: the same seed, the same events."""
    a = fraud_events(3, 29_999, 30_000, np.random.default_rng(5), START, 1.0, 30_001)
    cols = fraud_batch(3, 29_999, 30_000, np.random.default_rng(5), 30_001)
    assert [orjson.loads(x)["prediction"] for x in a] == cols["prediction"].tolist()
    assert orjson.loads(a[1])["features"]["amount"] == cols["amount"][1]


def test_the_performance_line_is_compact():
    line = performance_line({
        "model": "fraud", "version": "v3", "task": "binary", "window": {"seq": 41, "start": "S", "end": "E"},
        "count": 2000, "labelled": 1275, "labelled_share": 0.6375,
        "delay": {"p50": 1.66, "p90": 4.04, "max": 9.0, "mean": 2.0},
        "metrics": {"roc_auc": 0.50234, "se": {"roc_auc": 0.0221}}})
    assert line == ("performance fraud v3 #41 S → E: roc_auc 0.502 ± 0.022, 1275 of 2000 labelled (64%), "
                    "label delay p50 1.7 s, p90 4 s")
