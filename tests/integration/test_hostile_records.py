"""Each record that used to stop the service, alone in a valid stream, through the
real broker (`driftline run` as a process) and through `driftline replay`: the
service stays up, the record is dead-lettered with its reason (or, for a value
that is only wrong, counted as invalid in its feature), and the windows around it
are complete."""

import re
import subprocess
import sys

import orjson
import pytest
import yaml

from driftline.store import SqlStore
from driftline.streams.kafka import KafkaProducer, ensure_topics, read_topic
from tests.helpers import config, events, start_run, terminate, wait_for_windows

pytestmark = pytest.mark.slow

TS = 1_795_000_030_000


def record(features=None, **fields):
    doc = {"model": "m", "version": "v1", "id": "h", "ts": TS,
           "features": features or {"x": 0.1, "y": 10.0, "colour": "red"}, "prediction": 0.5}
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def nested(depth):
    return b'{"model": "m", "version": "v1", "id": "n", "ts": %d, "features": {"x": %s1%s}}' % (
        TS, b"[" * depth, b"]" * depth)


#: (record, what its dead letter's reason must say); None: accepted, its value counted invalid
HOSTILE = [
    (nested(10_000), r"nested deeper than \d+ levels"),
    (b'{"model": "m", "version": "v1", "id": "t", "ts": 100000000000000000000, '
     b'"features": {"x": 1.0, "y": 1.0, "colour": "red"}}', r"field 'ts' is out of range"),
    (b'{"model": "m", "version": "v1", "id": "d", "ts": %d, "features": {"x": %s, "y": 1.0, '
     b'"colour": "red"}}' % (TS, b"9" * 1000), None),
    (b'{"model": "m", "version": "v1", "id": "s", "ts": %d, "features": {"x": 1.0, "y": 1.0, '
     b'"colour": "\\ud800"}}' % TS, r"lone surrogate"),
    (record({"x": 1.0, "y": 1.0, "colour": "red"}).replace(b'"red"', b'"r\xed\xa0\x80d"'), r"not UTF-8"),
    (b'{"model": "m", "version": "v1", "id": "big", "ts": 1, "features": {"x": "' + b"a" * 1_000_000,
     r"malformed JSON"),
    (record().decode().encode("utf-16"), r"not UTF-8"),
    (record(id=...), r"missing field 'id'"),
    (record(id={"a": 1}), r"field 'id' is a"),
    (record(version=["v1"]), r"field 'version' is a"),
]


def stream():
    """2,000 reference events, 3,000 more; the hostile records after the 2,500th."""
    values = events(5000, seed=1)
    return values[:2500] + [r for r, _ in HOSTILE] + values[2500:]


def check_windows(windows):
    """3,000 events and the record with a huge number: three full windows, the number invalid in one."""
    assert [w["seq"] for w in windows] == list(range(len(windows)))
    assert [w["count"] for w in windows[:3]] == [1000, 1000, 1000]
    assert sum(w["features"]["x"]["invalid"] for w in windows) == 1


def test_driftline_run_stays_up_and_dead_letters_each_hostile_record(broker, uid, tmp_path):
    db = tmp_path / "h.db"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}", "topics": [f"events-{uid}"],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms"},
                 store={"url": f"sqlite:///{db}"}, alerts={"topic": None, "retrain_topic": None})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    conf = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(conf, {f"events-{uid}": 1, f"dlq-{uid}": 1})
    producer = KafkaProducer(conf | {"message.max.bytes": 2_000_000})
    for v in stream():
        producer.produce(f"events-{uid}", v)
    producer.flush()
    proc = start_run(path)
    try:
        wait_for_windows(proc, db, 3, timeout=90)
        expected = [(i, want) for i, (_, want) in enumerate(HOSTILE) if want]
        dead = read_topic(conf, f"dlq-{uid}", len(expected))
        out, err = terminate(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    by_offset = {int(d["headers"]["driftline.source.offset"]): d for d in dead}
    assert sorted(by_offset) == [2500 + i for i, _ in expected]
    for i, want in expected:
        d = by_offset[2500 + i]
        assert re.search(want, d["headers"]["driftline.reason"]), (i, d["headers"]["driftline.reason"])
        assert d["key"] == f"events-{uid}:0:{2500 + i}".encode()
    big = by_offset[2505]
    assert big["headers"]["driftline.original.size"] == str(len(HOSTILE[5][0]))
    assert "Traceback" not in err
    check_windows(SqlStore(f"sqlite:///{db}").reads.windows("m"))


def test_driftline_replay_reports_each_hostile_record_and_flushes_the_last_window(tmp_path):
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(stream()) + b"\n")
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(config()))
    db = tmp_path / "r.db"
    proc = subprocess.run([sys.executable, "-m", "driftline.cli", "replay", "-c", str(path), str(data),
                           "--database", f"sqlite:///{db}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    bad = re.findall(r"bad record at file:[^:]+:0:(\d+): (.*)", proc.stderr)
    expected = [(2500 + i, want) for i, (_, want) in enumerate(HOSTILE) if want]
    assert [int(line) for line, _ in bad] == [line for line, _ in expected]
    for (_, reason), (_, want) in zip(bad, expected):
        assert re.search(want, reason), reason
    windows = [orjson.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"type":"window"')]
    assert [w["count"] for w in windows] == [1000, 1000, 1000, 1]
    assert windows[-1]["closed_by"] == "end_of_input"
    check_windows(windows)
