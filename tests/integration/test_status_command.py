"""`driftline status` and `driftline windows` over a store filled by a real run: a replay into
SQLite and PostgreSQL, and `driftline run` over the embedded broker (status asked mid-run);
`driftline init --topic` sampling the broker."""

import signal
import time

import orjson
import pytest
import yaml

from driftline.cli import main
from driftline.streams.kafka import KafkaProducer, ensure_topics
from tests.helpers import config, events, start_run, wait_for_windows


def recent_events() -> bytes:
    """Normal traffic then drifted traffic, stamped in the last half hour."""
    start = int(time.time() * 1000) - 1_800_000
    bad = b'{"model": "m", "version": "v1", "id": "z", "ts": "never", "features": {}}'  # invalid in m v1
    lines = events(3000, seed=1, start_ms=start) + [bad] \
        + events(2000, start=3000, shift=1.5, seed=2, start_ms=start)
    return b"\n".join(lines) + b"\n"


def filled(tmp_path, store_url, capsys) -> str:
    cfg = tmp_path / "driftline.yaml"
    # batches of 500: the invalid record arrives once windows are open (in one batch with the
    # reference's events it would be dead-lettered but in no window's count)
    cfg.write_text(yaml.safe_dump(config(store={"url": store_url}, kafka={"batch_size": 500},
                                         alerts={"topic": None, "retrain_topic": None})))
    data = tmp_path / "events.jsonl"
    data.write_bytes(recent_events())
    assert main(["replay", "-c", str(cfg), str(data), "--database", store_url]) == 0
    capsys.readouterr()
    return str(cfg)


def test_status_and_windows_on_a_replayed_store(tmp_path, store_url, capsys):
    cfg = filled(tmp_path, store_url, capsys)
    assert main(["status", "-c", cfg, "--json"]) == 0
    (row,) = orjson.loads(capsys.readouterr().out)
    assert row["model"] == "m" and row["version"] == "v1" and row["last_window_seq"] == 2
    assert row["events_1h"] == 3000 and row["invalid_1h"] == pytest.approx(1 / 3001, abs=1e-4)
    assert "x" in row["drifted_now"]
    assert [a["rule"] for a in row["firing"]] == ["feature_drift"] and row["firing"][0]["since"]
    assert row["pending"] == 0  # the console sink delivered on the calling thread
    assert main(["status", "-c", cfg]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["model", "version", "last_window_end", "events_1h", "invalid_1h", "drifted_now",
                                "firing", "pending"]
    assert table[1].startswith("m") and "feature_drift since" in table[1] and "0.03%" in table[1]

    assert main(["windows", "-c", cfg, "m", "--feature", "x", "--json"]) == 0
    rows = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["count"] for r in rows] == [1000, 1000, 1000]
    assert [r["drifted"] for r in rows] == [False, True, True]
    assert all(r["feature"] == "x" and r["statistic"] is not None and r["threshold"] > 0 for r in rows)
    assert rows == sorted(rows, key=lambda r: r["end"])
    assert main(["windows", "-c", cfg, "m", "--last", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:4] == ["version", "end", "count", "invalid"]
    assert main(["windows", "-c", cfg, "m", "--feature", "nope"]) == 2
    assert "unknown feature 'nope'" in capsys.readouterr().err


def test_status_on_an_empty_store_and_on_a_mistyped_path(tmp_path, capsys):
    from driftline.store import SqlStore
    cfg = tmp_path / "driftline.yaml"
    cfg.write_text(yaml.safe_dump(config(store={"url": f"sqlite:///{tmp_path / 'nosuch' / 'x.db'}"})))
    assert main(["status", "-c", str(cfg)]) == 2  # a read-only command creates nothing
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "nosuch").exists()
    SqlStore(f"sqlite:///{tmp_path / 'x.db'}", upgrade=True).close()  # what a first start leaves
    cfg.write_text(yaml.safe_dump(config(store={"url": f"sqlite:///{tmp_path / 'x.db'}"})))
    assert main(["status", "-c", str(cfg)]) == 0
    assert "no windows stored yet" in capsys.readouterr().out
    assert main(["status", "-c", str(cfg), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []


@pytest.mark.slow
def test_status_during_a_run_and_init_from_a_topic(broker, uid, tmp_path, capsys):
    db = tmp_path / "run.db"
    topic = f"events-{uid}"
    cfg = config(kafka={"bootstrap_servers": broker.bootstrap, "group_id": f"g-{uid}", "topics": [topic],
                        "dead_letter_topic": f"dlq-{uid}", "poll_timeout": "100ms"},
                 store={"url": f"sqlite:///{db}"}, alerts={"topic": f"alerts-{uid}", "retrain_topic": f"retrain-{uid}"})
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 1})
    producer = KafkaProducer({"bootstrap.servers": broker.bootstrap})
    for v in events(4500, seed=1, start_ms=int(time.time() * 1000) - 600_000):
        producer.produce(topic, v)
    producer.flush()

    proposed = tmp_path / "proposed.yaml"
    assert main(["init", "--topic", topic, "--bootstrap", broker.bootstrap, "--sample-for", "8s",
                 "-o", str(proposed)]) == 0
    out = capsys.readouterr().out
    assert "model m:" in out and "colour: categorical, top_k 3" in out
    written = yaml.safe_load(proposed.read_text())
    assert written["kafka"] == {"bootstrap_servers": broker.bootstrap, "topics": [topic]}
    assert main(["check-config", str(proposed)]) == 0
    capsys.readouterr()

    proc = start_run(path)
    try:
        wait_for_windows(proc, db, 2, timeout=60)
        assert main(["status", "-c", str(path), "--json"]) == 0
        (row,) = orjson.loads(capsys.readouterr().out)
        assert row["model"] == "m" and row["events_1h"] >= 2000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert main(["init", "--topic", f"missing-{uid}", "--bootstrap", broker.bootstrap, "-o",
                 str(tmp_path / "x.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
