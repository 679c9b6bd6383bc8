"""`driftline triggers`: trigger history with each sink's delivery, from a store filled by a real
replay (a webhook answered by a local HTTP server) and from triggers and outbox rows committed the
way the pipeline commits them, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest
import yaml

from driftline.cli import main
from driftline.store import SqlStore
from driftline.types import CommitUnit, Notification, Receipt
from tests.helpers import config, events
from tests.unit.test_webhook_presets import Endpoint


def cloud_event(version: str, end: str, n: int) -> dict:
    return {"specversion": "1.0", "id": f"00000000-0000-5000-8000-00000000000{n}", "source": "driftline/g",
            "type": "dev.driftline.retrain.requested", "subject": f"m/{version}", "time": end,
            "datacontenttype": "application/json",
            "data": {"model": "m", "version": version, "reason": "feature_drift", "alert": f"fp{n}",
                     "severity": "warning", "window": {"start": end, "end": end, "count": 1000},
                     "drifted": {"x": {"method": "ks", "statistic": 0.3, "p_value": 1e-9, "threshold": 0.1}}}}


def write_config(tmp_path, store_url: str, **alerts) -> str:
    cfg = tmp_path / "driftline.yaml"
    cfg.write_text(yaml.safe_dump(config(store={"url": store_url},
                                         alerts={"topic": None, "retrain_topic": None, **alerts})))
    return str(cfg)


def fill(store_url: str) -> list[dict]:
    """Three triggers (one with its incident beside the event, as the incident router writes it)
    and their outbox rows in each status a delivery can end in."""
    store = SqlStore(store_url)
    old, mid, new = (cloud_event("v1", "2026-11-18T10:00:00.000Z", 1), cloud_event("v2", "2026-11-18T11:00:00.000Z", 2),
                     cloud_event("v1", "2026-11-18T12:00:00.000Z", 3))
    with_incident = {"type": "trigger", "model": "m", "version": "v1", "time": new["time"],
                     "incident": "9f1c0a7e5b2d4c3a1e0f", "event": new}
    notes = [Notification(f"trigger:fp1:{old['time']}:console", "console", "trigger", {"type": "trigger", "event": old}),
             Notification(f"trigger:fp2:{mid['time']}:webhook:a", "webhook:a", "trigger", {"type": "trigger", "event": mid}),
             Notification(f"trigger:9f1c:{new['time']}:webhook:a", "webhook:a", "trigger", with_incident),
             Notification(f"trigger:9f1c:{new['time']}:slack", "slack", "trigger", with_incident),
             Notification("fp3:firing:x:console", "console", "alert", {"type": "alert", "fingerprint": "fp3"})]
    store.commit("g", CommitUnit(triggers=[{"type": "trigger", "event": e} for e in (old, mid)] + [with_incident],
                                 notifications=notes))
    rows = {r["key"]: r["id"] for r in store.reads.outbox()}
    store.outbox.mark_sent(rows[notes[0].key])
    store.outbox.mark_retry(rows[notes[1].key], 7, time.time(), "webhook https://airflow.example/… answered HTTP 500",
                            give_up=True)
    store.outbox.mark_sent(rows[notes[2].key], receipt=Receipt(detail={"status": 409, "note": "already triggered"}))
    store.outbox.mark_sent(rows[notes[3].key], status="silenced")
    store.close()
    return [old, mid, new]


def test_history_newest_first_with_incident_and_each_sinks_delivery(tmp_path, store_url, capsys):
    old, mid, new = fill(store_url)
    cfg = write_config(tmp_path, store_url)
    assert main(["triggers", "-c", cfg, "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["cloudevent_id"] for r in rows] == [new["id"], mid["id"], old["id"]]
    first = rows[0]
    assert (first["model"], first["version"], first["window_end"]) == ("m", "v1", "2026-11-18T12:00:00.000Z")
    assert first["incident"] == "9f1c0a7e5b2d4c3a1e0f" and first["event"] == new
    assert [(d["sink"], d["status"], d["attempts"], d["receipt_status"]) for d in first["deliveries"]] == [
        ("webhook:a", "sent", 0, 409), ("slack", "silenced", 0, None)]
    assert first["deliveries"][0]["receipt"] == {"status": 409, "note": "already triggered"}
    assert rows[1]["incident"] is None
    (failed,) = rows[1]["deliveries"]
    assert (failed["status"], failed["attempts"]) == ("failed", 7)
    assert failed["last_error"] == "webhook https://airflow.example/… answered HTTP 500"
    assert [(d["sink"], d["status"]) for d in rows[2]["deliveries"]] == [("console", "sent")]  # not the alert

    assert main(["triggers", "-c", cfg, "--model", "m", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["window_end", "model", "version", "cloudevent_id", "incident", "sink", "status",
                                "attempts", "receipt", "last_error"]
    assert [line.split()[5:9] for line in lines[1:]] == [["webhook:a", "sent", "0", "409"],
                                                         ["slack", "silenced", "0", "-"]]
    assert all(line.split()[:5] == ["2026-11-18T12:00:00.000Z", "m", "v1", new["id"], "9f1c0a7e5b2d4c3a1e0f"]
               for line in lines[1:])

    # the same as a process, the way an operator runs it
    done = subprocess.run([sys.executable, "-m", "driftline.cli", "triggers", "-c", cfg, "--limit", "2"],
                          capture_output=True, text=True, timeout=60, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert len(table) == 4 and "failed" in table[3] and "answered HTTP 500" in table[3]


def test_a_replay_through_a_webhook_shows_the_trigger_delivered(tmp_path, store_url, capsys):
    with Endpoint(default=(200, {}, {"dag_run_id": "x", "state": "queued"})) as airflow:
        cfg = write_config(tmp_path, store_url, retrain_webhooks=[
            {"url": airflow.url + "/api/v2/dags/retrain_m/dagRuns", "preset": "airflow3", "token": "jwt-t0ken"}])
        data = tmp_path / "events.jsonl"
        data.write_bytes(b"\n".join(events(3000, seed=1) + events(2000, start=3000, shift=1.5, seed=2)) + b"\n")
        assert main(["replay", "-c", cfg, str(data), "--database", store_url, "--output", "text"]) == 0
        capsys.readouterr()
        (request,) = airflow.requests
    assert main(["triggers", "-c", cfg, "--json"]) == 0
    (row,) = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["cloudevent_id"] == request["headers"]["idempotency-key"]
    assert request["body"]["dag_run_id"] == f"driftline-{row['cloudevent_id']}"
    assert (row["model"], row["version"]) == ("m", "v1") and row["window_end"] == row["event"]["time"]
    by_sink = {d["sink"].split(":")[0]: d for d in row["deliveries"]}
    assert set(by_sink) == {"console", "webhook"}
    assert (by_sink["webhook"]["status"], by_sink["webhook"]["receipt_status"]) == ("sent", 200)
    assert by_sink["console"]["status"] == "sent"


def test_no_triggers_an_unknown_model_and_a_mistyped_store(tmp_path, capsys):
    db = tmp_path / "x.db"
    SqlStore(f"sqlite:///{db}", upgrade=True).close()
    cfg = write_config(tmp_path, f"sqlite:///{db}")
    assert main(["triggers", "-c", cfg]) == 0
    assert capsys.readouterr().out.strip() == "no retraining triggers stored yet"
    assert main(["triggers", "-c", cfg, "--json"]) == 0 and capsys.readouterr().out == ""
    assert main(["triggers", "-c", cfg, "--model", "nope"]) == 2
    assert "unknown model 'nope' (configured: m)" in capsys.readouterr().err
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'nosuch' / 'x.db'}")
    assert main(["triggers", "-c", cfg]) == 2
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "nosuch").exists()
    with pytest.raises(SystemExit):
        main(["triggers", "-c", cfg, "--limit", "0"])
