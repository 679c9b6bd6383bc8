"""Slack through slack-sdk's own client, against a local HTTP server standing in for Slack."""

import pytest

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.slack import SlackSink
from driftline.errors import ThrottledError
from driftline.store import SqlStore
from driftline.types import CommitUnit, Notification
from tests.helpers import FakeSlack

ALERT = {"type": "alert", "status": "firing", "fingerprint": "abc123", "model": "fraud",
         "version": "v3", "rule": "feature_drift", "subject": "amount, country", "severity": "warning",
         "value": 0.5, "threshold": 0.3, "since": "2026-11-24T12:00:00.000Z",
         "window_start": "2026-11-24T12:00:00.000Z", "window_end": "2026-11-24T12:05:00.000Z",
         "features": {"amount": {"method": "wasserstein", "statistic": 0.13, "p_value": None,
                                 "threshold": 0.1, "drifted": True},
                      "country": {"method": "chisquare", "statistic": 88.0, "p_value": 1e-9,
                                  "threshold": 0.01, "drifted": True}}}


def test_bot_token_posts_blocks_and_fallback_text():
    with FakeSlack() as slack:
        SlackSink(token="xoxb-test", channel="#ml-oncall", base_url=slack.url + "/api/").send(
            "alert", ALERT, "k1")
        (req,) = slack.requests
    assert req["path"] == "/api/chat.postMessage" and req["auth"] == "Bearer xoxb-test"
    body = req["body"]
    assert body["channel"] == "#ml-oncall"
    assert "fraud v3" in body["text"] and "amount: wasserstein 0.13 (threshold 0.1)" in body["text"]
    blocks = body["blocks"]
    assert blocks[0]["type"] == "header" and "feature_drift firing" in blocks[0]["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[1]["fields"]}
    assert fields["*Model*"] == "fraud v3" and fields["*Value*"] == "0.5 (threshold 0.3)"
    assert "country: chisquare 88 (threshold 0.01, p=1e-09)" in blocks[2]["text"]["text"]
    assert body["metadata"]["event_payload"] == {"key": "k1"}


def test_incoming_webhook_posts_the_same_message():
    with FakeSlack() as slack:
        receipt = SlackSink(webhook_url=slack.url + "/services/T/B/X").send("alert", ALERT, "k1")
        (req,) = slack.requests
    assert receipt.detail["status"] == 200 and receipt.detail["ts"] is None  # a webhook gives no ts
    assert "no message ts" in receipt.detail["note"]
    assert req["path"] == "/services/T/B/X"
    assert req["body"]["blocks"][0]["type"] == "header" and "fraud v3" in req["body"]["text"]


@pytest.mark.parametrize("mode", ["token", "webhook"])
def test_rate_limit_raises_with_retry_after(mode):
    with FakeSlack(throttle=1, retry_after=7) as slack:
        sink = (SlackSink(token="x", channel="#c", base_url=slack.url + "/api/") if mode == "token"
                else SlackSink(webhook_url=slack.url + "/hook"))
        with pytest.raises(ThrottledError) as info:
            sink.send("alert", ALERT, "k")
    assert info.value.retry_after == 7


def test_outbox_honours_retry_after_and_never_pages_twice():
    store = SqlStore("sqlite://")
    note = Notification("fp:firing:end:slack", "slack", "alert", ALERT)
    store.commit("g", CommitUnit(notifications=[note]))
    store.commit("g", CommitUnit(notifications=[note]))  # a replayed unit: same key, kept once
    now = [1000.0]
    with FakeSlack(throttle=1, retry_after=7) as slack:
        sink = SlackSink(token="x", channel="#c", base_url=slack.url + "/api/")
        d = Dispatcher(store, {"slack": sink}, clock=lambda: now[0])
        assert d.deliver_due() == 0  # throttled
        (row,) = store.reads.outbox()
        assert row["next_attempt_at"] == 1007.0 and row["attempts"] == 1
        now[0] = 1006.0
        assert d.deliver_due() == 0 and len(slack.requests) == 1  # not yet due
        now[0] = 1007.0
        assert d.deliver_due() == 1
        assert d.deliver_due() == 0
        assert len(slack.messages()) == 2  # one throttled attempt, one delivery
    assert store.reads.outbox()[0]["status"] == "sent"


def test_silenced_model_is_not_paged():
    store = SqlStore("sqlite://")
    store.outbox.add_silence(["model=fraud"], 1000.0, 2000.0, "ana", "maintenance", now=1000.0)
    store.commit("g", CommitUnit(notifications=[Notification("k", "slack", "alert", ALERT)]))
    with FakeSlack() as slack:
        sink = SlackSink(token="x", channel="#c", base_url=slack.url + "/api/")
        Dispatcher(store, {"slack": sink}, clock=lambda: 1500.0).deliver_due()
        assert slack.requests == []
    assert store.reads.outbox()[0]["status"] == "silenced"
