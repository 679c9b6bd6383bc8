"""Several dispatchers over one outbox (docs/alerting.md, "Several processes"): a real SQLite
file and PostgreSQL (``store_url``), real HTTP stand-ins for Slack, PagerDuty and a webhook,
and real processes killed with SIGKILL. Every row is delivered once, a dead holder's rows are
taken over once its lease has passed, and one process at a time owns an incident's rows to a sink."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.pagerduty import PagerDutySink
from driftline.alerts.slack import SlackSink
from driftline.alerts.webhook import WebhookSink
from driftline.store import SqlStore, migrate
from driftline.types import CommitUnit, Notification
from tests.helpers import FakeSlack
from tests.http_standin import HttpStandIn
from tests.standins import FakePagerDuty
from tests.unit.test_slack_incidents import CHANNEL, CHANNEL_ID, TOKEN, incident, key, trigger

ROOT = Path(__file__).resolve().parents[2]
ROUTING_KEY = "R" * 32


def slack_note(payload: dict, not_before: float = 0.0) -> Notification:
    return Notification(key(payload), "slack", "incident", payload, not_before)


def slack_sink(slack: FakeSlack, **kw) -> SlackSink:
    return SlackSink(token=TOKEN, channel=CHANNEL_ID, base_url=slack.url + "/api/", **kw)


def wait_until(done, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class SlowHook(HttpStandIn):
    """A webhook receiver that takes ``delay`` seconds per request (so both dispatchers get work)."""

    def __init__(self, delay: float = 0.01):
        super().__init__()
        self.delay = delay

    def answer(self, request: dict):
        time.sleep(self.delay)
        return 200, b"ok", {}


def test_two_dispatchers_on_their_own_connections_deliver_every_row_exactly_once(store_url):
    """300 triggers to a webhook and 5 incidents (opened, updated) to Slack, two
    dispatchers on two stores, each on its delivery thread: every webhook key arrives once,
    every Slack message is posted once, every update in its root's thread."""
    stores = [SqlStore(store_url), SqlStore(store_url)]
    incidents = [f"{i:020x}" for i in range(5)]  # Slack posts at most one a second to a channel
    with SlowHook() as hook, FakeSlack(channel_ids={CHANNEL: CHANNEL_ID}, first_ts=time.time()) as slack:
        notes = [Notification(f"trigger:{i}", "webhook:x", "trigger",
                              trigger() | {"incident": None, "event": trigger()["event"] | {"id": f"ce-{i}"}})
                 for i in range(300)]
        for inc in incidents:
            notes += [slack_note(incident("opened", id=inc)),
                      slack_note(incident("updated", id=inc, updated_at="2026-11-18T11:09:02.000Z"))]
        dispatchers = [Dispatcher(s, {"webhook:x": WebhookSink(hook.url + "/retrain"), "slack": slack_sink(slack)},
                                  poll_interval=0.1, lease=10.0) for s in stores]
        for d in dispatchers:
            d.start()
        stores[0].commit("g", CommitUnit(notifications=notes))
        for d in dispatchers:
            d.wake()
        wait_until(lambda: {r["status"] for r in stores[0].reads.outbox()} == {"sent"}, 120, "every row sent")
        for d in dispatchers:
            assert d.close() is True
        rows = stores[0].reads.outbox()
        ids = [r["headers"]["idempotency-key"] for r in hook.requests]
        posted = slack.posted()
    for s in stores:
        s.close()
    assert sorted(ids) == sorted(f"ce-{i}" for i in range(300))  # each once
    assert len(slack.posted_keys()) == len(set(slack.posted_keys())) == 10
    roots = {m["metadata"]["event_payload"]["incident"]: m["ts"] for m in posted if m.get("thread_ts", m["ts"]) == m["ts"]}
    replies = [m for m in posted if m.get("thread_ts", m["ts"]) != m["ts"]]
    assert len(roots) == 5 and len(replies) == 5
    assert all(m["thread_ts"] == roots[m["metadata"]["event_payload"]["incident"]] for m in replies)
    by = {d.owner: sum(r["claimed_by"] == d.owner for r in rows) for d in dispatchers}
    assert all(n > 0 for n in by.values()), by  # both delivered; claimed_by: who delivered a row
    assert all(r["claimed_until"] is None for r in rows)  # every lease ended


def _claim_all(url: str, name: str, got: list, start: threading.Barrier) -> None:
    """Claim 7 at a time, each claim as another owner that never releases, until nothing is left."""
    store = SqlStore(url)
    start.wait()
    try:
        for n in range(10_000):
            time.sleep(0.002)  # SQLite: let the others' busy handlers get the lock too
            claimed = store.outbox.claim(f"{name}-{n}", time.time(), time.time() + 600, limit=7)
            if not claimed:
                return
            got.extend((f"{name}-{n}", i.id) for i in claimed)
    finally:
        store.close()


def test_concurrent_claimers_never_share_a_unit(store_url):
    """Four threads, each on its own store, claim 50 incidents × 3 rows to one sink and 40 rows
    of no incident, 7 rows a claim, each claim as an owner that never lets go: no row is claimed
    twice, every row of no incident is claimed, and an incident's claimed rows all have one owner
    (without the unit lock, two claimers that each saw the unit free would share it); what is
    left unclaimed belongs to an incident somebody holds."""
    store = SqlStore(store_url)
    notes = [slack_note(incident(event, id=f"{i:020x}", updated_at=f"2026-11-18T11:0{n}:02.000Z"))
             for i in range(50) for n, event in enumerate(("opened", "updated", "repeat"))]
    notes += [Notification(f"alert:{i}", "console", "alert", {"n": i}) for i in range(40)]
    store.commit("g", CommitUnit(notifications=notes))
    got: list = []
    start = threading.Barrier(4)
    threads = [threading.Thread(target=_claim_all, args=(store_url, f"claimer{n}", got, start)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows = {r["id"]: r for r in store.reads.outbox()}
    store.close()
    claimed = [i for _, i in got]
    assert len(claimed) == len(set(claimed))
    assert {i for i, r in rows.items() if r["incident"] is None} <= set(claimed)
    owners: dict[str, set] = {}
    for owner, row_id in got:
        owners.setdefault(rows[row_id]["incident"] or f"row {row_id}", set()).add(owner)
    assert all(len(o) == 1 for o in owners.values()), {k: o for k, o in owners.items() if len(o) > 1}
    assert {r["incident"] for i, r in rows.items() if i not in set(claimed)} <= set(owners)
    assert len({o.split("-")[0] for o, _ in got}) > 1  # the threads shared the work


# -- a real process killed with SIGKILL --------------------------------------------------------

CHILD = r"""
import sys, time
from driftline.alerts.outbox import Dispatcher
from driftline.alerts.pagerduty import PagerDutySink
from driftline.alerts.slack import SlackSink
from driftline.store import SqlStore
mode, url, sink_url, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
store = SqlStore(url)
if mode == "claim":  # claims, then dies before sending (the parent kills it)
    items = store.outbox.claim("child", time.time(), time.time() + lease)
    print("claimed", len(items), flush=True)
    time.sleep(600)
sinks = {"slack": SlackSink(token=sys.argv[5], channel=sys.argv[6], base_url=sink_url + "/api/", timeout=600),
         "pagerduty": PagerDutySink("R" * 32, url=sink_url, timeout=600)}
Dispatcher(store, {mode: sinks[mode]}, lease=lease, owner="child").deliver_due()
"""


def child(mode: str, url: str, sink_url: str, lease: float) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, url, sink_url, str(lease), TOKEN, CHANNEL_ID],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def lease_passed(store: SqlStore) -> bool:
    return all(r["claimed_until"] is None or r["claimed_until"] < time.time() for r in store.reads.outbox())


def test_a_process_killed_after_claiming_before_sending_is_taken_over_after_its_lease(store_url):
    now = time.time()
    with FakeSlack(channel_ids={CHANNEL: CHANNEL_ID}, first_ts=now) as slack:
        store = SqlStore(store_url)
        store.commit("g", CommitUnit(notifications=[slack_note(incident())]))
        proc = child("claim", store_url, slack.url, lease=3.0)
        assert proc.stdout.readline().split() == ["claimed", "1"]
        kill(proc)
        (row,) = store.reads.outbox()
        assert row["claimed_by"] == "child" and row["claimed_until"] > time.time()
        d = Dispatcher(store, {"slack": slack_sink(slack)}, lease=3.0)
        assert d.deliver_due() == 0 and slack.requests == []  # the dead holder's lease still runs
        wait_until(lambda: lease_passed(store), 10, "the lease to pass")
        assert d.deliver_due() == 1
        (row,) = store.reads.outbox()
        store.close()
    assert (row["status"], row["attempts"], row["claimed_by"]) == ("sent", 1, d.owner)
    assert [r["method"] for r in slack.requests] == ["chat.postMessage"]  # never attempted: no look-up
    assert len(slack.posted()) == 1


def test_a_process_killed_after_slack_posted_is_taken_over_and_not_posted_twice(store_url):
    """The child's post reaches Slack, which posts and never answers; the child renews its lease
    meanwhile (no takeover while it lives), then is killed. The takeover knows an attempt was
    made, looks its key up in the channel and finds the message: one message in Slack."""
    now = time.time()
    opened = incident()
    with FakeSlack(channel_ids={CHANNEL: CHANNEL_ID}, first_ts=now, hang=600, hang_posts=True) as slack:
        store = SqlStore(store_url)
        store.commit("g", CommitUnit(notifications=[slack_note(opened)]))
        proc = child("slack", store_url, slack.url, lease=1.5)
        wait_until(lambda: slack.hung, 30, "the child's post")
        d = Dispatcher(store, {"slack": slack_sink(slack)}, lease=1.5)
        time.sleep(2.5)  # longer than the lease: renewed by the living child
        assert d.deliver_due() == 0
        kill(proc)
        wait_until(lambda: lease_passed(store), 10, "the lease to pass")
        assert d.deliver_due() == 1
        (row,) = store.reads.outbox()
        (posted,) = slack.posted()
        asked = [r["method"] for r in slack.requests]
        store.close()
    assert asked == ["chat.postMessage", "conversations.history"]
    assert row["status"] == "sent" and row["attempts"] == 2 and row["receipt"]["found"] is True
    assert row["receipt"]["ts"] == posted["ts"]


class FirstHangs(FakePagerDuty):
    """PagerDuty that takes the first event (it is recorded) and never answers it."""

    def hangs(self, request: dict) -> bool:
        return len(self.requests) == 1


def test_a_process_killed_while_pagerduty_had_the_event_is_resent_with_the_same_dedup_key(store_url):
    opened = incident()
    note = Notification(key(opened)[:-len("slack")] + "pagerduty", "pagerduty", "incident", opened)
    with FirstHangs(hang=600) as pd:
        store = SqlStore(store_url)
        store.commit("g", CommitUnit(notifications=[note]))
        proc = child("pagerduty", store_url, pd.url, lease=1.5)
        wait_until(lambda: pd.requests, 30, "the child's event")
        kill(proc)
        d = Dispatcher(store, {"pagerduty": PagerDutySink(ROUTING_KEY, url=pd.url)}, lease=1.5)
        wait_until(lambda: lease_passed(store), 10, "the lease to pass")
        assert d.deliver_due() == 1
        (row,) = store.reads.outbox()
        store.close()
    events = pd.bodies()
    assert len(events) == 2 and {e["dedup_key"] for e in events} == {opened["incident"]["id"]}
    assert {e["event_action"] for e in events} == {"trigger"}  # the same trigger: PagerDuty keeps one incident
    assert row["status"] == "sent" and row["attempts"] == 2


def test_a_holder_stalled_past_its_lease_and_taken_over_may_neither_send_nor_reschedule(store_url):
    """Its ``mark_attempt`` (the dispatcher's permission to send) and ``mark_retry`` are refused."""
    now = time.time()
    store = SqlStore(store_url)
    store.commit("g", CommitUnit(notifications=[slack_note(incident())]))
    (item,) = store.outbox.claim("stalled", now, now + 1)
    assert store.outbox.claim("other", now + 2, now + 30)  # the lease passed: taken over
    assert store.outbox.mark_attempt(item.id, 1, "stalled", now + 3) is False
    assert store.outbox.mark_retry(item.id, 1, now + 9, "boom", give_up=False, owner="stalled", now=now + 2) is False
    assert store.outbox.mark_attempt(item.id, 1, "other", now + 33) is True
    (row,) = store.reads.outbox()
    store.close()
    assert (row["claimed_by"], row["attempts"], row["last_error"]) == ("other", 1, None)


# -- migration 0010 --------------------------------------------------------------------------

def test_migration_0010_fills_incident_for_undelivered_rows_and_downgrades(store_url):
    from alembic import command
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.upgrade(engine, "0009")
    rows = [("inc-pending", "incident", "pending", '{"incident": {"id": "abc"}}'),
            ("trig-failed", "trigger", "failed", '{"incident": "abc"}'),
            ("inc-sent", "incident", "sent", '{"incident": {"id": "abc"}}'),
            ("alert", "alert", "pending", '{"incident": "abc"}'),
            ("odd", "incident", "pending", '{"incident": ["not", "a", "dict"]}')]
    with engine.begin() as c:
        for k, kind, status, payload in rows:
            c.execute(text("INSERT INTO outbox (key, sink, kind, payload, status, attempts, next_attempt_at, "
                           "created_at) VALUES (:k, 'slack', :kind, :p, :s, 0, 0, 0)"),
                      {"k": k, "kind": kind, "p": payload, "s": status})
    engine.dispose()
    store = SqlStore(store_url, upgrade=True)
    got = {r["key"]: r for r in store.reads.outbox()}
    assert {k: r["incident"] for k, r in got.items()} == {"inc-pending": "abc", "trig-failed": "abc", "inc-sent": None,
                                                          "alert": None, "odd": None}
    assert all(r["claimed_by"] is None and r["claimed_until"] is None for r in got.values())
    assert [i.key for i in store.outbox.claim("me", 1.0, 31.0)] == ["inc-pending", "alert", "odd"]
    with store.engine.begin() as c:
        command.downgrade(migrate._config(c), "0009")
    columns = {col["name"] for col in inspect(store.engine).get_columns("outbox")}
    indexes = {ix["name"] for ix in inspect(store.engine).get_indexes("outbox")}
    assert not columns & {"incident", "claimed_by", "claimed_until"} and "ix_outbox_incident" not in indexes
    with store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM outbox")).scalar() == 5
    migrate.upgrade(store.engine)
    assert store.schema_version() == migrate.head()
    store.close()
