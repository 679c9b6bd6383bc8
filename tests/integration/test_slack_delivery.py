"""Incidents to Slack through the outbox: a real store (SQLite file, PostgreSQL when set),
the real dispatcher, slack-sdk's client and FakeSlack (a real HTTP server)."""

from __future__ import annotations

import time

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.slack import SlackSink
from driftline.store import SqlStore
from driftline.types import CommitUnit, Notification
from tests.helpers import FakeSlack
from tests.unit.test_slack_incidents import CHANNEL, CHANNEL_ID, TOKEN, incident, key


def sink(slack: FakeSlack, channel: str = CHANNEL_ID, **kw) -> SlackSink:
    return SlackSink(token=TOKEN, channel=channel, base_url=slack.url + "/api/", **kw)


def note(payload: dict) -> Notification:
    return Notification(key(payload), "slack", "incident", payload)


def test_a_root_slack_posted_whose_answer_was_lost_is_found_after_a_restart_not_posted_twice(store_url):
    """The first attempt times out after Slack posted; the service restarts (new store
    connection, new sink that knows nothing) and retries: the look-up finds the message."""
    opened = incident()
    now = [time.time()]
    with FakeSlack(channel_ids={CHANNEL: CHANNEL_ID}, first_ts=now[0], hang=3, hang_posts=True) as slack:
        store = SqlStore(store_url)
        store.commit("g", CommitUnit(notifications=[note(opened)]))
        assert Dispatcher(store, {"slack": sink(slack, timeout=1)}, clock=lambda: now[0]).deliver_due() == 0
        (row,) = store.reads.outbox()
        assert row["status"] == "pending" and row["attempts"] == 1 and "Slack unreachable" in row["last_error"]
        store.close()

        now[0] += 10  # past the first backoff
        restarted = SqlStore(store_url)
        assert Dispatcher(restarted, {"slack": sink(slack)}, clock=lambda: now[0]).deliver_due() == 1
        (row,) = restarted.reads.outbox()
        (posted,) = slack.posted()
        asked = [r["method"] for r in slack.requests]
        restarted.close()
    assert asked == ["chat.postMessage", "conversations.history"]
    assert row["status"] == "sent"
    assert row["receipt"] == {"channel": CHANNEL_ID, "ts": posted["ts"], "found": True, "severity": "warning"}
    assert posted["metadata"]["event_payload"] == {"key": key(opened), "incident": opened["incident"]["id"]}


def test_through_the_outbox_an_update_replies_in_the_incidents_thread(store_url):
    opened, updated = incident(), incident("updated", updated_at="2026-11-18T11:09:02.000Z")
    with FakeSlack(channel_ids={CHANNEL: CHANNEL_ID}, first_ts=time.time()) as slack:
        store = SqlStore(store_url)
        d = Dispatcher(store, {"slack": sink(slack, channel=CHANNEL)})
        store.commit("g", CommitUnit(notifications=[note(opened)]))
        assert d.deliver_due() == 1
        store.commit("g", CommitUnit(notifications=[note(updated)]))
        assert d.deliver_due() == 1
        root, reply = slack.posted()
        store.close()
    assert reply["thread_ts"] == root["ts"] and root.get("thread_ts", root["ts"]) == root["ts"]
