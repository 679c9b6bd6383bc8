"""`driftline silence add|list|expire` as processes, over a SQLite file and PostgreSQL: a silence
mutes the alert of a replay into the same store (its trigger is still sent), the HTTP API
shows it with its matchers as text, and once expired it mutes nothing."""

import os
import subprocess
import sys

import httpx
import orjson
import pytest
import yaml

from driftline.app import build_http
from driftline.config import parse_settings
from driftline.store import SqlStore
from tests.helpers import config, events


def driftline(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "USER"} | ({"USER": user} if user else {})
    return subprocess.run([sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def setup(tmp_path, store_url):
    raw = config(store={"url": store_url}, alerts={"topic": None, "retrain_topic": None})
    cfg = tmp_path / "driftline.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events(3000, seed=1) + events(2000, start=3000, shift=1.5, seed=2)) + b"\n")
    return str(cfg), str(data), store_url, raw


def statuses(url: str) -> dict[str, str]:
    store = SqlStore(url)
    out = {r["kind"]: r["status"] for r in store.reads.outbox()}
    store.close()
    return out


def test_add_mutes_a_replay_list_shows_it_expire_ends_it(setup):
    cfg, data, url, raw = setup
    added = driftline("silence", "add", "-c", cfg, "model=m", "rule=~feature_.*", "--for", "2h",
                      "--comment", "backfill", user="ana")
    assert added.returncode == 0, added.stderr
    sid = int(added.stdout.strip())
    later = driftline("silence", "add", "-c", cfg, 'version="v2"', "--starts", "2999-01-01T00:00:00Z",
                      "--for", "1h", "--author", "bo", "--comment", "next release")
    assert later.returncode == 0, later.stderr

    replay = driftline("replay", "-c", cfg, data, "--database", url, "--output", "jsonl")
    assert replay.returncode == 0, replay.stderr
    assert statuses(url) == {"alert": "silenced", "trigger": "sent"}  # triggers are never silenced

    listed = driftline("silence", "list", "-c", cfg, "--json")
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["state"], r["author"], r["matchers"], r["comment"]) for r in rows] == [
        (sid, "active", "ana", ['model="m"', 'rule=~"feature_.*"'], "backfill"),
        (int(later.stdout), "pending", "bo", ['version="v2"'], "next release")]

    server = build_http(parse_settings(raw, {}), port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            items = api.get("/api/v1/silences").json()["items"]
            assert [(s["id"], s["matchers"], s["state"]) for s in items] == [(r["id"], r["matchers"], r["state"])
                                                                             for r in rows]
            assert {"starts_at_iso", "ends_at_iso", "created_at", "expired_at", "author", "comment"} <= set(items[0])
            assert [s["id"] for s in api.get("/api/v1/silences", params={"model": "other"}).json()["items"]] == \
                [int(later.stdout)]  # no model matcher: it may mute any model
            assert api.get("/api/v1/silences", params={"all": "maybe"}).status_code == 400
            params = {p["name"] for p in api.get("/api/v1/openapi.json").json()["paths"]["/api/v1/silences"]["get"]
                      ["parameters"]}
            assert params == {"model", "all"}

            expired = driftline("silence", "expire", "-c", cfg, str(sid))
            assert (expired.returncode, expired.stdout.strip()) == (0, f"expired silence {sid}")
            assert [s["id"] for s in api.get("/api/v1/silences").json()["items"]] == [int(later.stdout)]
            everything = api.get("/api/v1/silences", params={"all": "1"}).json()["items"]
            assert {s["id"]: s["state"] for s in everything} == {sid: "expired", int(later.stdout): "pending"}
            assert everything[0]["expired_at"] is not None
    finally:
        server.stop()
    again = driftline("silence", "expire", "-c", cfg, str(sid))
    assert again.returncode == 2 and "ID: no active or pending silence" in again.stderr


def test_an_expired_silence_mutes_nothing(setup):
    cfg, data, url, _ = setup
    sid = driftline("silence", "add", "-c", cfg, "model=m", "--for", "1h", "--author", "ana", "--comment", "x")
    assert driftline("silence", "expire", "-c", cfg, sid.stdout.strip()).returncode == 0
    assert driftline("replay", "-c", cfg, data, "--database", url).returncode == 0
    assert statuses(url) == {"alert": "sent", "trigger": "sent"}


def test_the_deprecated_form_still_mutes(setup):
    cfg, data, url, _ = setup
    old = driftline("silence", "-c", cfg, "m", "--for", "2h", "--rule", "feature_drift", "--reason", "backfill")
    assert old.returncode == 0 and old.stdout.strip() == "silenced m feature_drift for 2h"
    assert "deprecated" in old.stderr
    assert driftline("replay", "-c", cfg, data, "--database", url).returncode == 0
    assert statuses(url) == {"alert": "silenced", "trigger": "sent"}


def test_without_author_or_user_it_is_exit_2(setup):
    cfg, *_ = setup
    done = driftline("silence", "add", "-c", cfg, "model=m", "--for", "1h", "--comment", "x")
    assert done.returncode == 2 and "--author: required when $USER is not set" in done.stderr
