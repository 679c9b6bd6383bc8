"""A stream with a 10-minute gap, replayed: the gap is empty windows in the store and the
JSON lines, and the no-data rule fires and resolves (by event time, once events return)."""

import orjson

from driftline.cli import main
from driftline.store import SqlStore
from tests.helpers import config, events
from tests.unit.test_cli import write

T0 = 1_795_000_000_000


def test_a_ten_minute_gap_gives_empty_windows_and_a_no_data_alert_that_resolves(tmp_path, capsys):
    before = events(3000, seed=1)  # 10 ms apart: 30 s of events
    after = events(2000, start=3000, seed=2, start_ms=T0 + 600_000)  # the next one 10 minutes later
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(before + after) + b"\n")
    db = f"sqlite:///{tmp_path / 'gap.db'}"
    cfg = config(model={"window": {"duration": "1m", "min_count": 200},
                        "rules": [{"name": "no_data", "no_data": "5m", "severity": "critical"},
                                  {"name": "feature_drift", "share": 0.5}]},
                 alerts={"group_wait": "0s"})
    assert main(["replay", "-c", write(tmp_path, cfg), str(data), "--database", db, "--output", "jsonl"]) == 0
    out = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    windows = [x for x in out if x["type"] == "window"]
    empty = [w for w in windows if w["count"] == 0]
    assert len(empty) >= 9 and all(not w["tests_run"] for w in empty)  # the minutes without an event
    starts = [w["start"] for w in windows]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    alerts = [x for x in out if x["type"] == "alert" and x["rule"] == "no_data"]
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert alerts[0]["severity"] == "critical" and alerts[0]["subject"].startswith("no events for 10m")
    assert alerts[0]["value"] >= 600 - 1
    stored = SqlStore(db)
    assert sum(1 for w in stored.reads.windows("m") if w["count"] == 0) == len(empty)
    assert [e["status"] for e in stored.reads.alert_events() if e["rule"] == "no_data"] == ["firing", "resolved"]


def test_a_replay_delivers_its_incidents_before_it_exits_despite_group_wait(tmp_path, capsys):
    """The default group_wait (30 s) holds an incident's first message back; at the end of a
    replay no later pass comes, so it goes out then rather than never."""
    from tests.helpers import FakeSlack
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(3000, seed=1) + events(2000, start=3000, shift=1.0, seed=2)) + b"\n")
    with FakeSlack() as slack:
        cfg = config(alerts={"slack": {"token": "xoxb-test", "channel": "#ml", "base_url": slack.url + "/api/"},
                             "console": False})
        assert main(["replay", "-c", write(tmp_path, cfg), str(data), "--notify"]) == 0
        roots = [m for m in slack.messages() if "thread_ts" not in m]
    assert len(roots) == 1 and roots[0]["text"].startswith("[WARNING] m v1: feature_drift")
