"""Retraining triggers over real HTTP to a local server."""

import hashlib
import hmac
import json

import pytest

from driftline.alerts.console import RecordingSink
from driftline.alerts.webhook import WebhookSink, sign, verify
from driftline.app import build_sinks
from driftline.config import parse_settings
from driftline.errors import ConfigError, DeliveryError, ThrottledError
from tests.helpers import FakeSlack, config

TRIGGER = {"type": "trigger", "event": {
    "specversion": "1.0", "id": "0b5e", "source": "driftline/g", "type": "dev.driftline.retrain.requested",
    "subject": "fraud/v3", "time": "2026-11-24T12:05:00.000Z", "datacontenttype": "application/json",
    "data": {"model": "fraud", "version": "v3", "reason": "feature_drift",
             "window": {"start": "a", "end": "b", "count": 10}, "drifted": {"amount": {"statistic": 0.2}}}}}


def test_cloudevent_is_posted_signed_over_timestamp_and_body_with_an_idempotency_key():
    with FakeSlack() as server:
        WebhookSink(server.url + "/retrain?token=abc", secret="s3cret", clock=lambda: 1_800_000_000.7).send(
            "trigger", TRIGGER, "k")
        (req,) = server.requests
    h = {k.lower(): v for k, v in req["headers"].items()}
    assert h["content-type"] == "application/cloudevents+json" and h["idempotency-key"] == "0b5e"
    mac = hmac.new(b"s3cret", b"1800000000." + req["raw"], hashlib.sha256).hexdigest()
    assert h["x-driftline-signature"] == f"t=1800000000,v1={mac}"
    assert "x-driftline-signature-legacy" not in h  # the replayable form only when asked for
    assert verify("s3cret", h["x-driftline-signature"], req["raw"], now=1_800_000_060)
    assert json.loads(req["raw"]) == TRIGGER["event"]


def test_legacy_signature_only_when_asked_for():
    raw = config(alerts={"retrain_webhooks": [{"url": "http://127.0.0.1:1/h", "secret": "s3cret",
                                               "legacy_signature": True}]})
    (hook,) = [s for n, s in build_sinks(parse_settings(raw, {})).items() if n.startswith("webhook:")]
    with FakeSlack() as server:
        hook.url = server.url + "/h"
        hook.send("trigger", TRIGGER, "k")
        (req,) = server.requests
    h = {k.lower(): v for k, v in req["headers"].items()}
    assert h["x-driftline-signature-legacy"] == "sha256=" + hmac.new(b"s3cret", req["raw"], hashlib.sha256).hexdigest()
    assert h["x-driftline-signature"].startswith("t=")


BODY = b'{"id":"e1","data":{"model":"fraud"}}'
SENT = 1_800_000_000


@pytest.mark.parametrize("secret, body, now, ok", [
    ("s3cret", BODY, SENT + 299, True),                                    # good, within the tolerance
    ("s3cret", BODY, SENT - 299, True),                                    # receiver's clock a little behind
    ("s3cret", BODY.replace(b"fraud", b"fraue"), SENT + 1, False),         # tampered body
    ("s3cret", BODY, SENT + 301, False),                                   # stale: a replay
    ("s3cret", BODY, SENT - 301, False),                                   # from the future
    ("other", BODY, SENT + 1, False),                                      # wrong secret
])
def test_verify(secret, body, now, ok):
    assert verify(secret, sign("s3cret", BODY, SENT), body, now=now) is ok


def test_verify_refuses_a_moved_timestamp_and_malformed_headers():
    header = sign("s3cret", BODY, SENT)
    mac = header.split("v1=")[1]
    assert not verify("s3cret", f"t={SENT + 600},v1={mac}", BODY, now=SENT + 600)  # t is signed too
    assert verify("s3cret", f"t={SENT},v1={'0' * 64},v1={mac}", BODY, now=SENT)  # rotation: any v1
    for bad in ("", "v1=" + mac, f"t=abc,v1={mac}", f"t={SENT}", f"t={SENT},t={SENT},v1={mac}",
                "sha256=" + mac):
        assert not verify("s3cret", bad, BODY, now=SENT), bad


def test_errors_name_the_endpoint_by_host_only():
    with FakeSlack(fail=True) as server:
        url = server.url + "/hooks/Tok3nInPath99?token=Qu3ryTok3n"
        with pytest.raises(DeliveryError) as info:
            WebhookSink(url).send("trigger", TRIGGER, "k")
    assert str(info.value) == f"webhook {server.url}/… answered HTTP 500"
    with pytest.raises(DeliveryError) as info:
        WebhookSink("http://127.0.0.1:9/hooks/Tok3nInPath99?token=Qu3ryTok3n").send("trigger", TRIGGER, "k")
    assert str(info.value) == "webhook http://127.0.0.1:9/… unreachable: Connection refused"


def test_github_preset_sends_a_repository_dispatch():
    with FakeSlack() as server:
        WebhookSink(server.url + "/repos/acme/models/dispatches", "github", token="ghp_x").send(
            "trigger", TRIGGER, "k")
        (req,) = server.requests
    assert req["auth"] == "Bearer ghp_x"
    assert req["body"]["event_type"] == "driftline-retrain"
    assert req["body"]["client_payload"]["model"] == "fraud"
    assert req["body"]["client_payload"]["cloudevent_id"] == "0b5e"


def test_throttling_and_failures_are_delivery_errors():
    with FakeSlack(throttle=1, retry_after=30) as server:
        sink = WebhookSink(server.url + "/hook")
        with pytest.raises(ThrottledError) as info:
            sink.send("trigger", TRIGGER, "k")
        assert info.value.retry_after == 30
    with FakeSlack(fail=True) as server, pytest.raises(DeliveryError, match="HTTP 500"):
        WebhookSink(server.url + "/hook").send("trigger", TRIGGER, "k")


def test_webhooks_are_configured_and_receive_triggers_only():
    raw = config(alerts={"retrain_webhooks": [{"url": "${HOOK}", "preset": "airflow", "secret": "${S:-}"}]})
    settings = parse_settings(raw, {"HOOK": "http://127.0.0.1:1/api/v1/dags/retrain/dagRuns"})
    (name,) = [n for n in build_sinks(settings) if n.startswith("webhook:")]
    hook = build_sinks(settings)[name]
    assert hook.accepts == {"trigger"} and hook.secret is None
    assert "dagRuns" not in name  # the sink's name never shows the address
    with pytest.raises(ConfigError, match=r"alerts.retrain_webhooks\[0\].preset: unknown preset 'gitlab'"):
        parse_settings(config(alerts={"retrain_webhooks": [{"url": "x", "preset": "gitlab"}]}), {})


def test_pipeline_routes_alerts_and_triggers_by_what_each_sink_accepts():
    from driftline.app import build_service
    from driftline.ports import NoDeadLetters
    from driftline.store import SqlStore
    from driftline.streams.memory import MemorySource
    from tests.helpers import events
    everything, triggers_only = RecordingSink(), RecordingSink(frozenset({"trigger"}))
    src = MemorySource(events(2000, seed=1) + events(2000, start=2000, shift=1.0, seed=2), 700)
    svc = build_service(parse_settings(config(), {}), SqlStore("sqlite://"), src, NoDeadLetters(),
                        {"console": everything, "hook": triggers_only}, lambda w: None)
    svc.run(until=lambda: src.done)
    assert [k for k, _, _ in everything.sent] == ["alert", "trigger"]
    assert [k for k, _, _ in triggers_only.sent] == ["trigger"]


def test_the_readme_verification_snippet_accepts_our_signature_and_refuses_a_replay():
    import re
    import time
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify" in c]
    namespace: dict = {}
    exec(code, namespace)  # stdlib only: nothing of driftline is imported
    snippet, body = namespace["verify"], b'{"id":"e1"}'
    assert snippet("s3cret", sign("s3cret", body, time.time()), body)
    assert not snippet("s3cret", sign("s3cret", body, time.time()), body + b" ")
    assert not snippet("s3cret", sign("s3cret", body, time.time() - 301), body)
    assert not snippet("other", sign("s3cret", body, time.time()), body)
    assert "import driftline" not in code and "from driftline" not in code


def test_a_webhook_url_that_is_not_http_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as info:
        parse_settings(config(alerts={"retrain_webhooks": [{"url": "hooks.example/Tok3nInPath99"}]}), {})
    assert "alerts.retrain_webhooks[0].url: expected an http:// or https:// URL" in str(info.value)
    assert "Tok3nInPath99" not in str(info.value)
