"""No secret in logs, printed errors or the store, with every kind configured and every sink failing.

The service runs as a real ``driftline`` process at ``--log-level debug``, so the real
logging set-up (and slack-sdk's and urllib's own debug lines) are what is checked.
"""

import io
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest
import yaml

from driftline import logs
from driftline.cli import main
from driftline.redact import Redactor, for_settings
from tests.helpers import FakeSlack, config, events

SECRETS = {  # distinctive parts: none of them may show anywhere
    "slack token": "xoxb-SECRET123-4567",
    "slack webhook path": "T0SECRET/B0SECRET/SLACKHOOKSECRET99",
    "webhook path token": "PATHTOKEN123456",
    "webhook query token": "QUERYTOKEN98765",
    "webhook hmac secret": "HMAC-SECRET-5555",
    "webhook bearer token": "BEARER-TOKEN-3333",
    "dead webhook path token": "DEADPATH424242",
    "dead webhook query token": "DEADQUERY777",
    "dead webhook bearer token": "BEARER-DEAD-1111",
    "kafka sasl password": "KAFKA-SASL-PW-4242",
    "kafka client password": "CLIENT-KEY-PW-777",
    "store password": "STORE-PW-9999",
    "pagerduty routing key": "PDROUTINGKEYSECRET00000000000042",  # 32 characters, as PagerDuty's are
    "alertmanager token": "AM-BEARER-SECRET-8888",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_config(server_url: str, slack_mode: str, db: str) -> dict:
    s = SECRETS
    slack = {"token": s["slack token"], "channel": "#ml", "base_url": server_url + "/api/"} \
        if slack_mode == "token" else {"webhook_url": f"{server_url}/services/{s['slack webhook path']}"}
    hooks = [{"url": f"{server_url}/hooks/{s['webhook path token']}?token={s['webhook query token']}",
              "secret": s["webhook hmac secret"], "token": s["webhook bearer token"], "legacy_signature": True},
             {"url": f"http://127.0.0.1:{closed_port()}/hooks/{s['dead webhook path token']}"
                     f"?api_key={s['dead webhook query token']}", "token": s["dead webhook bearer token"]}]
    return config(
        kafka={"sasl_username": "svc", "sasl_password": s["kafka sasl password"],
               "client": {"security.protocol": "SASL_SSL", "ssl.key.password": s["kafka client password"]}},
        store={"url": f"postgresql://driftline:{s['store password']}@127.0.0.1:{closed_port()}/driftline"},
        alerts={"slack": slack, "retrain_webhooks": hooks, "topic": None, "retrain_topic": None, "group_wait": "0s",
                "pagerduty": {"routing_key": s["pagerduty routing key"], "url": server_url},
                "alertmanager": {"url": server_url, "token": s["alertmanager token"]}})


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("slack_mode, log_format", [("token", "text"), ("webhook", "json")])
def test_debug_run_with_every_secret_and_every_sink_failing_leaks_nothing(tmp_path, slack_mode, log_format):
    db = tmp_path / "d.db"
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(2000, seed=1) + events(2000, start=2000, shift=1.0, seed=2)) + b"\n")
    with FakeSlack(fail=True) as server:  # HTTP 500 to Slack and the first webhook; the second is a closed port
        cfg = tmp_path / "driftline.yaml"
        cfg.write_text(yaml.safe_dump(secret_config(server.url, slack_mode, str(db))))
        replay = run("--log-level", "debug", "--log-format", log_format, "replay", "-c", str(cfg), str(data),
                     "--database", f"sqlite:///{db}", "--notify", "--output", "text")
        listing = run("-vv", "alerts", "-c", str(cfg), "--pending")  # the store URL with its password
    assert replay.returncode == 0, replay.stderr[-3000:]
    # the secrets were really in play: sent to the stand-in, and the sinks failed
    slack_requests = [r for r in server.requests if r["path"].startswith(("/api/chat", "/services/"))]
    assert any(r["path"] == "/v2/enqueue" and SECRETS["pagerduty routing key"] in r["raw"].decode()
               for r in server.requests)
    hook_requests = [r for r in server.requests if r["path"].startswith("/hooks/")]
    assert slack_requests and hook_requests
    if slack_mode == "token":
        assert slack_requests[0]["auth"] == f"Bearer {SECRETS['slack token']}"
    else:
        assert SECRETS["slack webhook path"] in slack_requests[0]["path"]
    assert SECRETS["webhook query token"] in hook_requests[0]["path"]
    assert hook_requests[0]["auth"] == f"Bearer {SECRETS['webhook bearer token']}"
    # debug really is debug, third-party lines included, and they went through the redaction
    err = replay.stderr
    lines = err.splitlines()
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        levels = {(r["level"], r["logger"].split(".")[0]) for r in records}
    else:
        levels = {(line.split()[2], line.split()[3].split(".")[0].rstrip(":")) for line in lines if line[:2] == "20"}
    assert ("DEBUG", "slack_sdk") in levels and ("WARNING", "driftline") in levels
    assert "answered HTTP 500" in err and "unreachable: Connection refused" in err
    assert f"Alertmanager {server.url}/… " in err  # tried with its token (the stand-in drops a list body)
    assert f"{server.url}/…" in err  # endpoints named by host only
    assert leaks(replay.stdout) == [] and leaks(err) == []
    # the listing could not reach the store: a clean error, no password
    assert listing.returncode == 1 and "cannot open the store" in listing.stderr  # a runtime failure
    assert leaks(listing.stdout + listing.stderr) == []
    # the store: every row of every table, and the file's bytes
    with sqlite3.connect(db) as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for table in tables for row in c.execute(f'SELECT * FROM "{table}"')]
        errors = dict(c.execute("SELECT sink, last_error FROM outbox WHERE status = 'pending' "
                                "AND last_error IS NOT NULL"))
    assert len(errors) == 5  # Slack, PagerDuty, Alertmanager and each webhook failed and said why
    assert leaks("\n".join(rows)) == [] and leaks(db.read_bytes().decode("latin-1")) == []


def test_redaction_is_built_from_every_secret_in_the_settings():
    from driftline.config import parse_settings
    r = for_settings(parse_settings(secret_config("https://hooks.example.com:8443", "token", "x"), {}))
    every = " ".join(str(v) for v in SECRETS.values() if "SLACK" not in v)
    assert leaks(r(every)) == []
    r = for_settings(parse_settings(secret_config("https://hooks.example.com:8443", "webhook", "x"), {}))
    slack_url = f"https://hooks.example.com:8443/services/{SECRETS['slack webhook path']}"
    assert r(f"POST {slack_url} failed") == "POST https://hooks.example.com:8443/… failed"
    assert r("retrain?token=QUERYTOKEN98765") == "retrain?***"
    assert r("value QUERYTOKEN98765 refused") == "value *** refused"
    assert r("QUERYTOKEN98765".replace("-", "%2D")) == "***"
    assert r("nothing secret: model fraud v3") == "nothing secret: model fraud v3"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    level, hooks = root.level, (sys.excepthook, threading.excepthook)
    yield
    for h in [h for h in root.handlers if getattr(h, "_driftline", False)]:
        root.removeHandler(h)
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks


def test_levels_come_from_the_option_then_v_then_the_environment(restore_logging, tmp_path, monkeypatch, capsys):
    assert logs.resolve_level(None, 0, {}) == logging.WARNING
    assert logs.resolve_level(None, 1, {}) == logging.INFO
    assert logs.resolve_level(None, 2, {}) == logging.DEBUG
    assert logs.resolve_level(None, 0, {"DRIFTLINE_LOG_LEVEL": "DEBUG"}) == logging.DEBUG
    assert logs.resolve_level("error", 2, {"DRIFTLINE_LOG_LEVEL": "debug"}) == logging.ERROR
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.resolve_level(None, 0, {"DRIFTLINE_LOG_LEVEL": "loud"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(alerts={"slack": {"token": "xoxb-SECRET123-4567", "channel": "#c"}})))
    monkeypatch.setenv("DRIFTLINE_LOG_LEVEL", "debug")
    assert main(["check-config", str(cfg)]) == 0
    logging.getLogger("urllib3.connectionpool").debug("sent Authorization: Bearer xoxb-SECRET123-4567")
    err = capsys.readouterr().err
    assert "DEBUG urllib3.connectionpool: sent Authorization: Bearer ***" in err
    monkeypatch.setenv("DRIFTLINE_LOG_LEVEL", "loud")
    assert main(["check-config", str(cfg)]) == 2
    assert "unknown log level 'loud'" in capsys.readouterr().err


def test_json_lines_carry_the_exception_text_redacted(restore_logging):
    stream = io.StringIO()
    logs.setup(logging.INFO, "json", stream)
    logs.protect(Redactor(["HMAC-SECRET-5555"]))
    try:
        raise RuntimeError("signing with HMAC-SECRET-5555 failed")
    except RuntimeError:
        logging.getLogger("driftline.x").exception("could not sign for %s", "HMAC-SECRET-5555")
    logging.getLogger("driftline.x").debug("not shown at info")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["logger"] == "driftline.x"
    assert record["message"] == "could not sign for ***"
    assert "RuntimeError: signing with *** failed" in record["exception"] and "Traceback" in record["exception"]
    assert record["time"].endswith("+00:00")


def test_handlers_already_on_the_root_logger_are_redacted_too(restore_logging):
    theirs = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(theirs)
    try:
        logs.setup(logging.INFO, "text", io.StringIO())
        logs.protect(Redactor(["BEARER-TOKEN-3333"]))
        logging.getLogger("urllib3").warning("header Authorization: Bearer BEARER-TOKEN-3333")
    finally:
        root.removeHandler(theirs)
    assert theirs.stream.getvalue() == "header Authorization: Bearer ***\n"
