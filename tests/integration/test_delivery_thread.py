"""Delivery on its own thread, over a real SQLite file or PostgreSQL and a real HTTP server
standing in for Slack (slack-sdk's client with its 10 s timeout): a Slack that hangs never
stops consumption, shutdown waits a bounded time, receipts are stored."""

import threading
import time

import pytest

from driftline.alerts.console import RecordingSink
from driftline.alerts.outbox import Dispatcher
from driftline.alerts.slack import SlackSink
from driftline.alerts.webhook import WebhookSink
from driftline.app import build_service, build_sinks
from driftline.config import parse_settings
from driftline.ports import NoDeadLetters
from driftline.runtime import run_to_end
from driftline.store import SqlStore
from driftline.streams.memory import MemorySource
from driftline.types import CommitUnit, Notification
from tests.helpers import FakeSlack, config, events
from tests.unit.test_slack import ALERT
from tests.unit.test_webhook import TRIGGER


class EndlessSource(MemorySource):
    """2,000 reference events, then shifted traffic without end, one batch per ``pause``."""

    def __init__(self, pause: float = 0.05):
        super().__init__(events(2000, seed=1), batch_size=500)
        self.pause = pause

    def poll(self):
        time.sleep(self.pause)
        if self.next + self.batch_size > len(self.values):
            n = len(self.values)
            self.values = self.values + events(5000, start=n, shift=1.5, seed=n)
        return super().poll()


def slack_settings(slack, store_url):
    raw = config(store={"url": store_url},
                 alerts={"console": False, "group_wait": "0s",
                         "slack": {"token": "${SLACK_BOT_TOKEN}", "channel": "#ml-oncall",
                                                     "base_url": slack.url + "/api/"}})
    return parse_settings(raw, {"SLACK_BOT_TOKEN": "xoxb-test"})


def slack_service(slack, store_url, shutdown_wait=10.0):
    settings = slack_settings(slack, store_url)
    store = SqlStore(store_url)
    sinks = build_sinks(settings)
    svc = build_service(settings, store, EndlessSource(), NoDeadLetters(), sinks, lambda _w: None)
    svc.dispatcher = Dispatcher(store, sinks, poll_interval=0.2, shutdown_wait=shutdown_wait)
    return svc, store


def wait_until(done, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done()


@pytest.mark.slow
def test_a_slack_that_hangs_30s_never_stops_consumption_and_is_posted_once(tmp_path):
    """The first chat.postMessage hangs for 30 s and is never posted (see FakeSlack): the client
    gives up at 10 s, the notification is retried (1 s backoff) and posted. Meanwhile windows
    keep closing and are stored. "Once" here: one post of each message, two requests for the
    incident (the hung one and the retry, which first looks for its key in the channel), both
    with the same driftline key."""
    with FakeSlack(hang=30) as slack:
        svc, store = slack_service(slack, f"sqlite:///{tmp_path / 'd.db'}")
        counts = []  # (monotonic time, windows stored) after every step

        def posted_alert() -> bool:
            counts.append((time.monotonic(), len(store.reads.windows("m"))))
            return len(slack.delivered) >= 2  # the alert and the retraining request

        svc.run(until=posted_alert, duration=60)
        (hung,) = slack.hung
        hung_key = hung["body"]["metadata"]["event_payload"]["key"]
        held = [n for t, n in counts if hung["hung_at"] <= t <= hung["hung_at"] + 9.5]
        assert held[-1] - held[0] >= 10, held  # windows closed and stored while the request hung
        posted = slack.posted_keys()
        assert sorted(posted) == sorted(set(posted)) and hung_key in posted  # each posted once
        methods = [r["method"] for r in slack.requests]
        asked = [r["body"]["metadata"]["event_payload"]["key"] for r in slack.requests
                 if r["method"] == "chat.postMessage"]
        assert asked.count(hung_key) == 2 and len(asked) == 3  # the incident twice, its trigger once
        assert methods.count("conversations.history") == 1  # the retry looked for it before posting
        rows = {r["key"]: r for r in store.reads.outbox()}
        opened = rows[hung_key]
        assert opened["status"] == "sent" and opened["attempts"] == 2  # the hung one and the one posted
        assert "Slack unreachable" in opened["last_error"]  # the timed-out attempt, redacted
        assert opened["receipt"] == {"channel": "#ml-oncall", "ts": "1.000", "severity": "warning"}
        assert {r["status"] for r in rows.values()} == {"sent"}
        assert len(slack.requests) == 4  # shut down: nothing more was asked


def test_shutdown_waits_a_bounded_time_for_a_hanging_slack_and_leaves_it_pending(tmp_path):
    with FakeSlack(hang=30) as slack:
        svc, store = slack_service(slack, f"sqlite:///{tmp_path / 'd.db'}", shutdown_wait=1.0)
        svc.run(until=lambda: bool(slack.hung), duration=60)  # shutdown() right after the hang began
        shutdown_returned = time.monotonic()
        assert shutdown_returned - slack.hung[0]["hung_at"] < 5  # 1 s bound; the client waits 10 s
        rows = SqlStore(f"sqlite:///{tmp_path / 'd.db'}").reads.outbox()
        assert rows and {r["status"] for r in rows} == {"pending"}
        assert slack.delivered == []


class ThreadNoting:
    """A real sink, and the name of the thread each send ran on."""

    def __init__(self, sink):
        self.sink, self.threads = sink, []
        self.accepts = sink.accepts

    def send(self, kind, payload, key, ctx=None):
        self.threads.append(threading.current_thread().name)
        return self.sink.send(kind, payload, key)


def test_the_thread_delivers_on_its_own_connection_and_stores_receipts(store_url):
    store = SqlStore(store_url)
    with FakeSlack() as slack:
        sinks = {"slack": ThreadNoting(SlackSink(token="x", channel="#c", base_url=slack.url + "/api/")),
                 "webhook:x": ThreadNoting(WebhookSink(slack.url + "/hooks/retrain"))}
        d = Dispatcher(store, sinks, poll_interval=0.2)
        d.start()
        assert d.threaded and d.outbox.engine is not store.engine
        assert d.outbox.engine.url == store.engine.url  # the same database, its own engine and pool
        store.commit("g", CommitUnit(notifications=[Notification("a", "slack", "alert", ALERT),
                                                    Notification("t", "webhook:x", "trigger", TRIGGER)]))
        d.wake()
        wait_until(lambda: {r["status"] for r in store.reads.outbox()} == {"sent"})
        assert d.close() is True
    rows = {r["key"]: r for r in store.reads.outbox()}
    assert rows["a"]["receipt"] == {"channel": "#c", "ts": "1.000"}
    assert rows["t"]["receipt"] == {"status": 200}
    assert sinks["slack"].threads == sinks["webhook:x"].threads == ["driftline-delivery"]
    store.close()


def test_an_in_memory_store_is_delivered_on_the_calling_thread():
    """``sqlite://`` is one database per connection: no thread, no second engine."""
    store = SqlStore("sqlite://")
    sink = ThreadNoting(RecordingSink())
    d = Dispatcher(store, {"console": sink})
    d.start()
    assert not d.threaded and d.outbox is store.outbox
    store.commit("g", CommitUnit(notifications=[Notification("a", "console", "alert", ALERT)]))
    d.wake()
    assert sink.threads == [threading.current_thread().name]
    assert store.reads.outbox()[0]["status"] == "sent" and store.reads.outbox()[0]["receipt"] == {}


def test_replay_delivers_what_its_windows_produced_before_it_returns(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    store = SqlStore(url)
    sink = RecordingSink()
    values = events(2000, seed=1) + events(3000, start=2000, shift=1.0, seed=2)
    source = MemorySource(values, batch_size=700)
    svc = build_service(parse_settings(config(), {}), store, source, NoDeadLetters(), {"console": sink},
                        lambda _w: None)
    run_to_end(svc, source)
    assert svc.dispatcher.threaded  # a file store: delivered by the thread, waited for at the end
    assert [k for k, _p, _key in sink.sent] == ["alert", "trigger"]
    assert {r["status"] for r in SqlStore(url).reads.outbox()} == {"sent"}


def test_on_sqlite_a_delivery_write_during_the_consumers_transaction_waits_for_it(tmp_path):
    """Two engines on one SQLite file: the thread's mark_sent while a checkpoint's transaction
    is open waits for it (SQLite's busy timeout) instead of failing, since no transaction
    reads before it writes (insert-or-ignore, not select-then-insert)."""
    from driftline.store import schema as t
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.commit("g", CommitUnit(notifications=[Notification("a", "slack", "alert", ALERT)]))
    (row,) = store.reads.outbox()
    thread_outbox, errors = store.outbox_for_thread(), []

    def mark() -> None:
        try:
            thread_outbox.mark_sent(row["id"])
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)

    with store.engine.begin() as c:  # a checkpoint in progress, holding SQLite's write lock
        c.execute(t.silences.insert().values(matchers=[["model", "=", "m"]], starts_at=0.0, ends_at=1.0,
                                             author="a", comment="", created_at=0.0))
        worker = threading.Thread(target=mark)
        worker.start()
        worker.join(0.3)
        assert worker.is_alive()  # waiting for the lock
    worker.join(5)
    assert errors == [] and store.reads.outbox()[0]["status"] == "sent"
    thread_outbox.close()
    store.close()
