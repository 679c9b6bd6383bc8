"""Several `driftline run` processes in one consumer group (``kafka.scale_out``) on the
embedded broker, a 6-partition topic and PostgreSQL, compared window by window with a
`driftline replay` of the same events in one process:

1. three workers, keyless traffic (model ``m`` on every partition) and keyed traffic
   (model ``k`` on partition 0 only): every window stored once, with the same counts,
   statistics (quantiles within the sketch's error) and test results;
2. one worker killed with SIGKILL mid-stream and a new one added: still one summary per
   window, the same windows, each alert transition once and delivered once;
3. a model on one partition is not held back by partitions without its events, nor by
   empty ones, even with ``partition_idle`` far away.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import orjson
import pytest
import yaml

from driftline.store import SqlStore
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.conftest import empty_postgres
from tests.helpers import config, events
from tests.scale_data import raw_values, same_window

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PARTITIONS = 6
WINDOW_MS = 5000
#: model m: 16 windows of 500 events, four of them shifted (alerts fire and resolve); model k: 8 windows
M = events(3000, seed=2) + events(2000, start=3000, shift=2.0, seed=3) + events(3000, start=5000, seed=4)
K = events(2000, seed=5, model="k") + events(2000, start=2000, seed=6, model="k")


#: a later event of m: its event time closes m's last window in the workers, as one process
#: (live) closes it; `driftline replay` closes the window it opens at the end of its input
CLOSING = events(1, start=8000, seed=9)


def traffic(k_on: int = 0) -> list[tuple[int, bytes]]:
    """(partition, record) in event-time order: m round-robin over every partition, k on one;
    then :data:`CLOSING` on partition 0."""
    m = [(i % PARTITIONS, v) for i, v in enumerate(M)]
    k = [(k_on, v) for v in K]
    return sorted(m + k, key=lambda pv: orjson.loads(pv[1])["ts"]) + [(0, CLOSING[0])]


def reference_csv(path) -> str:
    docs = [orjson.loads(v) for v in events(2000, seed=1)]
    lines = ["x,y,colour,prediction"] + [f"{d['features']['x']},{d['features']['y']},{d['features']['colour']},"
                                         f"{d['prediction']}" for d in docs]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def model(name: str, ref: str) -> dict:
    return {"name": name, "features": {"x": "numeric", "y": "numeric", "colour": "categorical"},
            "prediction": "numeric", "window": {"duration": "5s", "min_count": 100},
            "reference": {"path": ref}, "trend_windows": [],
            "rules": [{"name": "feature_drift", "share": 0.5, "resolve_after": 1}], "retrain": {"enabled": False}}


class Cluster:
    """Worker processes of one group, their output in files, and the store they share."""

    def __init__(self, broker, uid, tmp_path, url, partition_idle="3s"):
        self.tmp, self.url, self.uid = tmp_path, url, uid
        self.topic, self.group = f"events-{uid}", f"g-{uid}"
        ref = reference_csv(tmp_path / "ref.csv")
        self.cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": self.group,
                                 "topics": [self.topic], "dead_letter_topic": f"dlq-{uid}",
                                 "poll_timeout": "100ms", "batch_size": 500, "scale_out": True,
                                 "partition_idle": partition_idle,
                                 # the embedded broker never expires a static member that died (seen here:
                                 # a killed worker's partitions stayed its own for minutes), so dynamic members
                                 "group_instance_id": None},
                          store={"url": url}, alerts={"topic": None, "retrain_topic": None,
                                                      "group_wait": "0s", "group_interval": "0s"})
        self.cfg["models"] = [model("m", ref), model("k", ref)]
        ensure_topics({"bootstrap.servers": broker.bootstrap}, {self.topic: PARTITIONS})
        self.producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
        self.store = SqlStore(url)  # the schema, before several processes start at once
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, metrics_port: int | None = None) -> None:
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(self.cfg | ({"metrics": {"port": metrics_port, "host": "127.0.0.1"}}
                                                   if metrics_port else {})))
        out, err = open(self.tmp / f"{name}.out", "w"), open(self.tmp / f"{name}.err", "w")
        env = os.environ | {"PYTHONUNBUFFERED": "1", "DRIFTLINE_LOG_LEVEL": "info"}  # assignments in the log
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "driftline.cli", "run", "-c", str(path)],
                                            stdout=out, stderr=err, env=env)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.err").read_text()

    def produce(self, records: list[tuple[int, bytes]]) -> None:
        for p, v in records:
            self.producer.produce(self.topic, v, partition=p)
        self.producer.flush()

    def owners(self) -> dict:
        return {tp: r["owner"] for tp, r in self.store.partials.marks(self.group).items()}

    def until(self, done, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            for name, proc in self.procs.items():
                assert proc.poll() is None or proc.returncode == -signal.SIGKILL, \
                    f"{name} exited while waiting for {what}: {self.log(name)[-3000:]}"
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self.log(n)[-2000:]}" for n in self.procs)
                pytest.fail(f"timed out waiting for {what}; windows: {self.counts()}\n{logs}")
            time.sleep(0.2)

    def windows(self, name: str) -> list[dict]:
        return self.store.reads.windows(name)

    def counts(self) -> dict:
        return {name: len(self.windows(name)) for name in ("m", "k")}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.store.close()


def replayed(tmp_path, cluster: Cluster, records) -> dict[str, list[dict]]:
    """The windows of `driftline replay` (one process, SQLite) of the same events."""
    cfg = dict(cluster.cfg, kafka={"group_id": "single"}, store={"url": f"sqlite:///{tmp_path / 'single.db'}"},
               alerts={"console": False, "topic": None, "retrain_topic": None})
    path, data = tmp_path / "single.yaml", tmp_path / "events.jsonl"
    path.write_text(yaml.safe_dump(cfg))
    data.write_bytes(b"\n".join(v for _, v in records) + b"\n")
    done = subprocess.run([sys.executable, "-m", "driftline.cli", "replay", "-c", str(path), str(data),
                           "--database", f"sqlite:///{tmp_path / 'single.db'}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = SqlStore(f"sqlite:///{tmp_path / 'single.db'}")
    try:
        out = {name: store.reads.windows(name) for name in ("m", "k")}
        if closing := [w for w in out["m"] if w["count"] == 1]:  # the window CLOSING opened: open in a live run
            out["m"].remove(closing[0])
        return out | {"alerts": [a for a in store.reads.alert_events()
                                 if not closing or a["window_end"] != closing[0]["end"]]}
    finally:
        store.close()


def assert_same_windows(cluster: Cluster, single: dict, values: list[bytes]) -> None:
    for name in ("m", "k"):
        stored = cluster.windows(name)
        starts = [w["start"] for w in stored]
        assert len(starts) == len(set(starts)), f"{name}: a window stored twice"
        assert sorted(starts) == [w["start"] for w in single[name]]
        assert [w["seq"] for w in sorted(stored, key=lambda w: w["start"])] == list(range(len(stored)))
        by_start = {w["start"]: w for w in single[name]}
        for w in stored:
            same_window(w, by_start[w["start"]], raw_values(values, w["start"], WINDOW_MS, name))


def transitions(rows: list[dict]) -> list[tuple]:
    return sorted((r["fingerprint"], r["status"], r["window_end"]) for r in rows)


@pytest.fixture
def cluster(broker, uid, tmp_path, request):
    made = []

    def make(**kw) -> Cluster:
        made.append(Cluster(broker, uid, tmp_path, empty_postgres(), **kw))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assigned(port: int) -> set[int]:
    """The partitions a worker's /metrics says it owns."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {int(m) for m in re.findall(r'^driftline_assigned_partitions\{partition="(\d+)".*\} 1\.0$', text, re.M)}


def processed(port: int) -> float:
    """The events a worker's /metrics says it decoded."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r'^driftline_process_events_total\{process="([^"]*)"\} (\S+)$', text, re.M)
    return float(found.group(2)) if found else 0.0


def test_three_workers_store_the_windows_one_process_stores(cluster, tmp_path):
    c = cluster()
    records = traffic()
    single = replayed(tmp_path, c, records)
    assert len(single["m"]) == 16 and len(single["k"]) == 8 and single["alerts"]
    ports = {name: free_port() for name in ("w0", "w1", "w2")}
    for name, port in ports.items():
        c.start(name, port)
    c.until(lambda: len(c.owners()) == PARTITIONS and len(set(c.owners().values())) == 3,
            "three workers sharing the six partitions")
    c.until(lambda: sorted(p for port in ports.values() for p in assigned(port)) == list(range(PARTITIONS)),
            "each partition in exactly one worker's metrics")
    assert all(assigned(port) for port in ports.values())
    c.produce(records)
    c.until(lambda: c.counts() == {"m": 16, "k": 8}, "every window merged")
    time.sleep(3)  # nothing more comes
    assert c.counts() == {"m": 16, "k": 8}
    assert_same_windows(c, single, [v for _, v in records])
    assert transitions(c.store.reads.alert_events()) == transitions(single["alerts"])
    assert c.store.partials.pending(c.group) == {}  # every partial merged and deleted
    decoded = {name: processed(port) for name, port in ports.items()}
    assert sum(decoded.values()) == len(records) and all(decoded.values())  # each its share, none twice


def test_a_worker_killed_and_one_added_lose_and_double_nothing(cluster, tmp_path):
    c = cluster()
    records = traffic()
    single = replayed(tmp_path, c, records)
    for name in ("w0", "w1", "w2"):
        c.start(name)
    c.until(lambda: len(set(c.owners().values())) == 3, "three workers sharing the six partitions")
    half = len(records) // 2
    c.produce(records[:half])
    c.until(lambda: c.counts()["m"] >= 5, "the first windows")
    c.procs["w1"].send_signal(signal.SIGKILL)
    c.produce(records[half:])
    c.start("w3")
    c.until(lambda: c.counts() == {"m": 16, "k": 8}, "every window merged after the kill", timeout=60)
    time.sleep(3)
    assert c.counts() == {"m": 16, "k": 8}
    assert_same_windows(c, single, [v for _, v in records])
    fired = transitions(c.store.reads.alert_events())
    assert fired == transitions(single["alerts"]) and any(s == "firing" for _, s, _ in fired)
    outbox = [r for r in c.store.reads.outbox() if r["kind"] == "alert"]
    assert len(outbox) == len(fired)  # one console notification per transition
    c.until(lambda: all(r["status"] == "sent" for r in c.store.reads.outbox()), "every notification delivered")
    printed = sum(c.tmp.joinpath(f"{n}.out").read_text().count("feature_drift") for n in c.procs)
    assert printed >= len(fired)


def test_a_model_on_one_partition_is_not_held_back_by_the_others(cluster, tmp_path):
    c = cluster(partition_idle="10m")  # no help from idleness: only watermarks and carried models count
    m_on_one = [(1, v) for v in M]
    records = sorted([(0, v) for v in K] + m_on_one, key=lambda pv: orjson.loads(pv[1])["ts"])
    c.start("w0")
    c.start("w1")
    c.until(lambda: len(c.owners()) == PARTITIONS, "the partitions assigned")
    c.produce(records)
    # k (partition 0) waits neither for partition 1 (only m) nor for 2–5 (empty); the last window of each
    # stays open: no event after it, and its partition is not idle for ten minutes
    c.until(lambda: c.counts() == {"m": 15, "k": 7}, "every window but the last", timeout=60)
    time.sleep(3)
    assert c.counts() == {"m": 15, "k": 7}


def test_two_workers_store_every_segment_window_one_process_stores(cluster, tmp_path):
    """``segments: [colour]`` on m: each segment's windows (their references built from their rows
    of the reference file by each process) merged once, equal to the replay's, alerts too."""
    c = cluster()
    c.cfg["models"][0]["segments"] = ["colour"]
    records = traffic()
    single = replayed(tmp_path, c, records)
    from driftline.types import to_ms
    ts = orjson.loads(CLOSING[0])["ts"]
    # the window CLOSING opened (its version's and its segment's): open in a live run
    single["m"] = [w for w in single["m"] if to_ms(w["start"].replace("Z", "+00:00")) != ts - ts % WINDOW_MS]
    versions = {w["version"] for w in single["m"]}
    assert versions == {"v1", "v1[colour=red]", "v1[colour=green]", "v1[colour=blue]"}
    for name in ("w0", "w1"):
        c.start(name)
    c.until(lambda: len(c.owners()) == PARTITIONS and len(set(c.owners().values())) == 2, "two workers")
    c.produce(records)
    c.until(lambda: len(c.windows("m")) >= len(single["m"]) and len(c.windows("k")) == 8, "every window merged")
    time.sleep(3)
    stored = c.windows("m")
    assert len(stored) == len(single["m"])
    values = [v for _, v in records]
    for version in versions:
        mine = sorted((w for w in stored if w["version"] == version), key=lambda w: w["start"])
        one = [w for w in single["m"] if w["version"] == version]
        assert [w["start"] for w in mine] == [w["start"] for w in one], version
        assert [w["seq"] for w in mine] == list(range(len(mine)))
        for a, b in zip(mine, one, strict=True):
            same_window(a, b, _raw(values, a))
    assert transitions(c.store.reads.alert_events()) == transitions(single["alerts"])
    assert c.store.partials.pending(c.group) == {}


def _raw(values: list[bytes], w: dict) -> dict:
    raw = raw_values(values, w["start"], WINDOW_MS, "m")
    if "segment" not in w:
        return raw
    from driftline.types import to_ms
    lo = to_ms(w["start"].replace("Z", "+00:00"))
    docs = [d for d in map(orjson.loads, values) if d["model"] == "m" and lo <= d["ts"] < lo + WINDOW_MS]
    keep = [d["features"]["colour"] == w["segment"]["value"] for d in docs]
    return {k: v[keep] for k, v in raw.items()}
