"""The command line: check-config, replay's JSON lines, and the compose file's config."""

import re
from pathlib import Path

import orjson
import yaml

from driftline.cli import main
from tests.helpers import config, events

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, raw) -> str:
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_check_config_prints_every_error_with_its_path(tmp_path, capsys):
    path = write(tmp_path, config(model={"features": {"amount": "numerc"}}, kafka={"bogus": 1}))
    assert main(["check-config", path]) == 2
    err = capsys.readouterr().err
    assert "models[0].features.amount: unknown kind 'numerc' (expected numeric, categorical, boolean)" in err
    assert "kafka.bogus: unknown key" in err


def test_check_config_masks_secrets_when_printing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    path = write(tmp_path, config(alerts={"slack": {"token": "${SLACK_BOT_TOKEN}", "channel": "#c"}}))
    assert main(["check-config", path, "--print"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "xoxb-very-secret" not in out and "'**********'" in out


def test_check_config_says_a_scale_out_model_needs_a_stored_reference(tmp_path, capsys):
    pg = "postgresql://u:p@127.0.0.1:5432/d"
    path = write(tmp_path, config(model={"window": {"duration": "5s"}}, kafka={"scale_out": True}, store={"url": pg}))
    assert main(["check-config", path]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "note: models[0].reference: kafka.scale_out cannot collect model m's reference" in out
    assert f"driftline reference -c {path} m DATA" in out
    path = write(tmp_path, config(model={"window": {"duration": "5s"}}, store={"url": pg}))
    assert main(["check-config", path]) == 0
    assert "note:" not in capsys.readouterr().out  # one process collects it from the stream


def test_replay_prints_contract_lines(tmp_path, capsys):
    data = tmp_path / "events.jsonl"
    lines = events(2000, seed=1) + events(2000, start=2000, seed=2) + [b"not json"] \
        + events(2000, start=4000, shift=1.0, seed=3)
    data.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["replay", "-c", write(tmp_path, config()), str(data)]) == 0
    captured = capsys.readouterr()
    out = [orjson.loads(x) for x in captured.out.splitlines()]
    assert re.search(r"bad record at file:events\.jsonl@[0-9a-f]{12}:0:4000: malformed JSON", captured.err)
    windows = [x for x in out if x["type"] == "window"]
    assert len(windows) == 4
    w = windows[0]
    for key in ("model", "version", "start", "end", "count", "invalid", "late", "features"):
        assert key in w
    x = w["features"]["x"]
    assert {"kind", "count", "missing", "mean", "std", "min", "max", "quantiles", "drift"} <= set(x)
    assert set(x["drift"]) >= {"method", "statistic", "p_value", "threshold", "drifted"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", w["start"])
    alert = next(x for x in out if x["type"] == "alert")
    assert alert["status"] == "firing" and alert["model"] == "m"
    for key in ("fingerprint", "version", "rule", "subject", "severity", "value", "threshold",
                "since", "window_end"):
        assert key in alert
    trigger = next(x for x in out if x["type"] == "trigger")
    assert trigger["event"]["specversion"] == "1.0"


def test_reference_from_a_csv_file(tmp_path, capsys):
    import numpy as np
    rng = np.random.default_rng(0)
    csv = tmp_path / "ref.csv"
    x = rng.normal(size=3000)
    colour = rng.choice(["red", "green", "blue"], 3000, p=[0.5, 0.3, 0.2])
    rows = ["x,y,colour,prediction"] + [f"{a:.4f},{b:.4f},{c},{p:.4f}" for a, b, c, p in zip(
        x, rng.normal(10, 2, 3000), colour, 1 / (1 + np.exp(-x)))]
    csv.write_text("\n".join(rows))
    raw = config(model={"reference": {"path": str(csv)}})
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(1000, seed=4)) + b"\n")
    assert main(["replay", "-c", write(tmp_path, raw), str(data)]) == 0
    (w,) = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert w["tests_run"] and w["features"]["x"]["drift"]["n_ref"] == 3000
    assert w["drifted"] == []  # same distribution as the reference file


def test_compose_mounts_a_config_that_passes_check_config(capsys):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["driftline"]
    host, container, *_ = svc["volumes"][0].split(":")
    assert container == svc["command"][-1]
    env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in svc["environment"].items()}
    from driftline.config import load_settings
    settings = load_settings(ROOT / host, env)
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.store.url.startswith("postgresql://driftline:")
    assert not settings.alerts.slack.enabled  # no token in the environment: Slack stays off


def test_reference_tables_read_the_same_from_csv_jsonl_and_parquet(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.streams.files import read_table
    x, c = [1.5, None, 3.25], ["a", "b", None]
    (tmp_path / "r.csv").write_text("x,c\n1.5,a\n,b\n3.25,\n")
    (tmp_path / "r.jsonl").write_bytes(b"\n".join(orjson.dumps({"features": {"x": a, "c": b}})
                                                  for a, b in zip(x, c)))
    pq.write_table(pa.table({"x": x, "c": c}), tmp_path / "r.parquet")
    for name in ("r.csv", "r.jsonl", "r.parquet"):
        cols = read_table(tmp_path / name)
        assert np.array_equal(cols["x"], np.array([1.5, np.nan, 3.25]), equal_nan=True), name
        assert list(cols["c"]) == c, name


def test_demo_posts_to_slack_when_a_token_or_webhook_is_set(tmp_path):
    from driftline.demo import demo_settings
    off = demo_settings("127.0.0.1:1", tmp_path, env={})
    bot = demo_settings("127.0.0.1:1", tmp_path, env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#x"})
    hook = demo_settings("127.0.0.1:1", tmp_path, env={"SLACK_WEBHOOK_URL": "https://hooks.example/x"})
    assert not off.alerts.slack.enabled
    assert bot.alerts.slack.token.get_secret_value() == "xoxb-1" and bot.alerts.slack.channel == "#x"
    assert hook.alerts.slack.webhook_url.get_secret_value() == "https://hooks.example/x"


def test_reference_alerts_and_silence_commands(tmp_path, capsys):
    import numpy as np
    db = tmp_path / "cli.db"
    raw = config(store={"url": f"sqlite:///{db}"}, model={"reference": {"first_n": 5000}})
    cfg = write(tmp_path, raw)
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b"\n".join(events(3000, seed=7)))
    assert main(["reference", "-c", cfg, "m", str(ref)]) == 0
    assert "reference for m: 3000 rows, 4 features" in capsys.readouterr().out
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(2000, start=3000, shift=1.0, seed=8)) + b"\n")
    assert main(["replay", "-c", cfg, str(data), "--database", f"sqlite:///{db}"]) == 0
    capsys.readouterr()
    assert main(["alerts", "-c", cfg]) == 0
    out = capsys.readouterr().out
    assert "firing" in out and "m v1 feature_drift" in out
    assert main(["silence", "-c", cfg, "m", "--for", "2h", "--reason", "backfill"]) == 0
    from driftline.store import SqlStore
    (silence,) = SqlStore(f"sqlite:///{db}").outbox.silences(now=0)  # the deprecated form: model=m
    assert [str(m) for m in silence.matchers] == ['model="m"'] and silence.comment == "backfill"
    assert np.isclose(silence.ends_at - __import__("time").time(), 7200, atol=60)
    assert main(["silence", "-c", cfg, "nope", "--for", "1h"]) == 2


def test_a_missing_reference_file_names_its_yaml_path(tmp_path, capsys):
    raw = config(model={"reference": {"path": str(tmp_path / "nope.parquet")}})
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(10)) + b"\n")
    assert main(["replay", "-c", write(tmp_path, raw), str(data)]) == 2
    assert f"models[0].reference.path: reference file {tmp_path / 'nope.parquet'} does not exist" \
        in capsys.readouterr().err


def replay(tmp_path, capsys, lines, raw=None, *extra) -> list[dict]:
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["replay", "-c", write(tmp_path, raw or config()), str(data), *extra]) == 0
    return [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_replay_closes_the_open_window_at_the_end_of_input(tmp_path, capsys):
    from driftline.types import iso
    out = replay(tmp_path, capsys, events(4500, seed=1))  # 2,000 for the reference, then 2.5 windows
    windows = [x for x in out if x["type"] == "window"]
    assert [(w["count"], w["closed_by"]) for w in windows] == [
        (1000, "size"), (1000, "size"), (500, "end_of_input")]
    assert sum(w["count"] for w in windows) == 2500
    t0 = 1_795_000_000_000
    assert (windows[0]["start"], windows[0]["end"]) == (iso(t0 + 20_000), iso(t0 + 29_991))  # end exclusive
    assert windows[2]["end"] == iso(t0 + 44_991) and windows[2]["tests_run"]


def test_replay_summarises_a_short_last_window_without_testing_it(tmp_path, capsys):
    out = replay(tmp_path, capsys, events(3150, seed=1))
    last = [x for x in out if x["type"] == "window"][-1]
    assert (last["count"], last["closed_by"], last["tests_run"]) == (150, "end_of_input", False)
    assert last["tests_skipped"] == "count 150 < min_count 200"


def test_replay_closes_open_time_windows_at_the_end_of_input(tmp_path, capsys):
    raw = config(model={"window": {"duration": "5s", "min_count": 100}})
    out = replay(tmp_path, capsys, events(4700, seed=1), raw)
    windows = [x for x in out if x["type"] == "window"]
    assert [(w["count"], w["closed_by"]) for w in windows] == [(500, "watermark")] * 5 + [(200, "end_of_input")]


def test_replaying_stored_input_again_is_idempotent_and_a_grown_file_adds_only_new_lines(tmp_path, capsys):
    from driftline.store import SqlStore
    db = f"sqlite:///{tmp_path / 'x.db'}"
    lines = events(4000, seed=1) + events(2500, start=4000, shift=1.0, seed=2)
    first = replay(tmp_path, capsys, lines, None, "--database", db)
    stored = SqlStore(db).reads.windows("m")
    assert [w["seq"] for w in stored] == [w["seq"] for w in first if w["type"] == "window"] == [0, 1, 2, 3, 4]
    fired = [x for x in first if x["type"] == "alert"]
    assert [a["status"] for a in fired] == [a["status"] for a in SqlStore(db).reads.alert_events()] == ["firing"]

    assert replay(tmp_path, capsys, lines, None, "--database", db) == []  # the same file again: nothing new
    assert len(SqlStore(db).reads.windows("m")) == 5 and len(SqlStore(db).reads.alert_events()) == 1

    data = tmp_path / "events.jsonl"
    with data.open("ab") as fh:  # the file grew: only its new lines are processed
        fh.write(b"\n".join(events(1000, start=6500, seed=3)) + b"\n")
    assert main(["replay", "-c", str(tmp_path / "driftline.yaml"), str(data), "--database", db]) == 0
    captured = capsys.readouterr()
    assert "resuming after line 6500" in captured.err
    grown = [orjson.loads(x) for x in captured.out.splitlines()]
    windows = [w for w in grown if w["type"] == "window"]
    assert [(w["seq"], w["count"]) for w in windows] == [(5, 1000)]
    assert [w["seq"] for w in SqlStore(db).reads.windows("m")] == list(range(6))


def test_a_different_file_with_the_same_name_is_replayed_from_its_start(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    replay(tmp_path, capsys, events(3000, seed=1), None, "--database", db)
    other = tmp_path / "other"
    other.mkdir()
    out = replay(other, capsys, events(1000, start=3000, seed=2), None, "--database", db)
    assert [(w["seq"], w["count"]) for w in out if w["type"] == "window"] == [(1, 1000)]


def test_check_config_reads_the_head_of_each_reference_file(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / "ok.csv").write_text("x,y,colour,prediction\n1,2,red,0.5\n")
    (tmp_path / "short.csv").write_text('x,"colour"\n1,red\n')
    pq.write_table(pa.table({"x": [1.0], "y": [2.0], "colour": ["a"]}), tmp_path / "ref.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "events.jsonl").write_bytes(b"\n" + events(1)[0] + b"\n{oops\n")  # only the first record is read
    (tmp_path / "empty.csv").write_text("")

    def check(ref: str) -> tuple[int, str]:
        path = write(tmp_path, config(model={"reference": {"path": str(tmp_path / ref)}}))
        code = main(["check-config", path])
        return code, capsys.readouterr().err

    assert check("ok.csv") == (0, "") and check("events.jsonl") == (0, "")
    cases = {"nope.csv": f"reference file {tmp_path / 'nope.csv'} does not exist",
             "short.csv": f"{tmp_path / 'short.csv'} has no column for declared features y, prediction",
             "ref.parquet": f"{tmp_path / 'ref.parquet'} has no column for declared feature prediction",
             "bad.parquet": f"cannot read reference {tmp_path / 'bad.parquet'}",
             "empty.csv": f"reference {tmp_path / 'empty.csv'} is empty",
             "ref.txt": "unknown format '.txt'"}
    for ref, message in cases.items():
        code, err = check(ref)
        assert code == 2 and "models[0].reference.path: " in err and message in err, (ref, err)


def test_the_readme_shows_the_alert_and_trigger_lines_replay_prints(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("**Alert** and **trigger** lines"):]
    block = block[block.index("```json\n") + 8:]
    block = block[:block.index("\n```")]
    documented = [orjson.loads(line) for line in block.splitlines()]
    lines = events(4000, seed=1) + events(2000, start=4000, shift=1.0, seed=2) + events(2000, start=6000, seed=3)
    printed = [x for x in replay(tmp_path, capsys, lines) if x["type"] != "window"]
    assert [(x["type"], x.get("status")) for x in printed] == [
        (x["type"], x.get("status")) for x in documented] == [("alert", "firing"), ("trigger", None), ("alert", "resolved")]
    for doc, out in zip(documented, printed):
        assert list(doc) == list(out)  # the same keys, in the same order
    assert set(documented[1]["event"]) == set(printed[1]["event"])
    assert set(documented[1]["event"]["data"]) == set(printed[1]["event"]["data"])


def test_replay_into_a_database_whose_group_is_served_is_refused(tmp_path, capsys):
    from driftline.store import SqlStore
    db = f"sqlite:///{tmp_path / 'x.db'}"
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(100)) + b"\n")
    holder = SqlStore(db)
    holder.state.lock_group("driftline")  # a `driftline run` of the same group on the same database
    assert main(["replay", "-c", write(tmp_path, config()), str(data), "--database", db]) == 1
    assert "another driftline process is serving consumer group 'driftline'" in capsys.readouterr().err
    assert SqlStore(db).reads.windows("m") == []
    holder.close()
