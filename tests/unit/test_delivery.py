"""Delivery by deadline: retries through throttling and outages, give-ups that show, retry by command.

Slack goes through slack-sdk's real client and the retraining webhook through urllib, both
to FakeSlack (a real HTTP server) whose answers follow a fake clock the test advances; the
Dispatcher reads the same clock. Nothing sleeps.
"""

import re
import time
from collections import Counter

import pytest
import yaml
from sqlalchemy import update

from driftline.alerts.outbox import Dispatcher
from driftline.alerts.slack import SlackSink
from driftline.alerts.webhook import WebhookSink
from driftline.cli import main
from driftline.config import parse_settings
from driftline.errors import ConfigError
from driftline.metrics import Metrics
from driftline.store import SqlStore
from driftline.store import schema as t
from driftline.types import CommitUnit, Notification
from tests.helpers import FakeSlack, config
from tests.unit.test_slack import ALERT
from tests.unit.test_webhook import TRIGGER

MIN = 60.0


def notifications() -> list[Notification]:
    alerts = [Notification(f"fp{i}:firing:end:slack", "slack", "alert", {**ALERT, "fingerprint": f"fp{i}"})
              for i in range(3)]
    return alerts + [Notification("t1:slack", "slack", "trigger", TRIGGER),
                     Notification("t1:webhook", "webhook:x", "trigger", TRIGGER)]


def sinks(server, clock) -> dict:
    return {"slack": SlackSink(token="xoxb-t", channel="#c", base_url=server.url + "/api/"),
            "webhook:x": WebhookSink(server.url + "/hooks/retrain?token=abc", secret="s", clock=clock)}


def delivered_keys(server) -> Counter:
    keys = Counter()
    for r in server.delivered:
        if r["path"].startswith("/api/chat.postMessage"):
            keys[r["body"]["metadata"]["event_payload"]["key"]] += 1
        else:
            keys[r["headers"]["Idempotency-Key"] + ":webhook"] += 1
    return keys


def metric(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def no_sleep(monkeypatch):
    def forbidden(seconds):
        raise AssertionError(f"delivery slept {seconds}s on the consumer thread")
    monkeypatch.setattr(time, "sleep", forbidden)


def test_ten_minutes_of_429_then_ten_of_500_and_everything_is_delivered_once(tmp_path, no_sleep):
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.commit("g", CommitUnit(notifications=notifications()))
    t0 = time.time()
    now = [t0]
    clock = lambda: now[0]  # noqa: E731
    metrics = Metrics()
    with FakeSlack(phases=[(t0 + 10 * MIN, 429), (t0 + 20 * MIN, 500)], retry_after=5, clock=clock) as server:
        d = Dispatcher(store, sinks(server, clock), clock=clock, metrics=metrics)
        throttled_at = []
        while now[0] < t0 + 60 * MIN and len(server.delivered) < 5:
            seen = len(server.requests)
            d.deliver_due()
            if server.phase() == 429:
                throttled_at += [now[0]] * sum(r["path"].startswith("/api/") for r in server.requests[seen:])
            now[0] += 1.0
        done_at = now[0]
    assert delivered_keys(server) == Counter({"fp0:firing:end:slack": 1, "fp1:firing:end:slack": 1,
                                              "fp2:firing:end:slack": 1, "t1:slack": 1, "0b5e:webhook": 1})
    assert {r["status"] for r in store.reads.outbox()} == {"sent"}
    # Retry-After honoured, one probe per wait for the whole sink: ~10 min / 5 s requests, not 4x that
    assert min(b - a for a, b in zip(throttled_at, throttled_at[1:])) >= 5
    assert 100 <= len(throttled_at) <= 121
    # after the outage, delivered within the backoff cap (5 min), not at some later count
    assert t0 + 20 * MIN < done_at <= t0 + 25 * MIN + 2
    assert metric(metrics, "driftline_notifications_failed_total", sink="slack") == 0
    assert metric(metrics, "driftline_notifications_sent_total", sink="slack") == 4
    assert metric(metrics, "driftline_notifications_sent_total", sink="webhook:x") == 1
    assert metric(metrics, "driftline_notification_retries_total", sink="slack") > 100
    assert metric(metrics, "driftline_notifications_pending") == 0


def test_a_restart_retries_what_is_within_its_deadline(tmp_path, no_sleep):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    store = SqlStore(url)
    store.commit("g", CommitUnit(notifications=notifications()))
    now = [time.time()]
    clock = lambda: now[0]  # noqa: E731
    with FakeSlack(fail=True) as server:
        for _ in range(20):
            Dispatcher(store, sinks(server, clock), clock=clock).deliver_due()
            now[0] += 10 * MIN
    store.close()
    assert {r["status"] for r in SqlStore(url).reads.outbox()} == {"pending"}  # 200 min of HTTP 500: still trying
    with FakeSlack() as server:
        store = SqlStore(url)
        assert Dispatcher(store, sinks(server, clock), clock=clock).deliver_due() == 5
    assert {r["status"] for r in store.reads.outbox()} == {"sent"}


def test_past_its_deadline_it_is_given_up_listed_and_retried_by_command(tmp_path, capsys, no_sleep):
    db = tmp_path / "d.db"
    cfg = tmp_path / "driftline.yaml"
    cfg.write_text(yaml.safe_dump(config(store={"url": f"sqlite:///{db}"},
                                         alerts={"delivery_deadline": "1h"})))
    settings = parse_settings(yaml.safe_load(cfg.read_text()), {})
    store = SqlStore(settings.store.url)
    store.commit("g", CommitUnit(notifications=notifications()[:2]))
    t0 = time.time() - 3 * 3600  # the notifications were created three hours ago
    with store.engine.begin() as c:
        c.execute(update(t.outbox).values(created_at=t0))
    now = [t0]
    clock = lambda: now[0]  # noqa: E731
    metrics = Metrics()
    with FakeSlack(phases=[(t0 + 2 * 3600, 500)], clock=clock) as server:
        d = Dispatcher(store, sinks(server, clock), settings.alerts.delivery_deadline, clock=clock,
                       metrics=metrics)
        while now[0] < t0 + 2 * 3600:
            d.deliver_due()
            if now[0] < t0 + 3600:
                assert {r["status"] for r in store.reads.outbox()} == {"pending"}, now[0] - t0
            now[0] += MIN
        assert {r["status"] for r in store.reads.outbox()} == {"failed"}
        assert metric(metrics, "driftline_notifications_failed_total", sink="slack") == 2
        assert metric(metrics, "driftline_notifications_given_up") == 2

        assert main(["alerts", "-c", str(cfg), "--pending"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 3 and out[-1].startswith("0 pending, 2 given up")
        assert "given up" in out[0] and "slack" in out[0] and "alert" in out[0] and re.search(r"age +3h", out[0])
        assert "Slack chat.postMessage failed: boom (HTTP 500)" in out[0]
        assert main(["alerts", "-c", str(cfg), "--pending", "--json"]) == 0
        rows = [yaml.safe_load(x) for x in capsys.readouterr().out.splitlines()]
        assert [(r["status"], r["kind"], r["attempts"] > 10) for r in rows] == [("given up", "alert", True)] * 2

        assert main(["alerts", "-c", str(cfg), "--retry-failed"]) == 0
        assert "2 given-up notification(s) back to pending, deadline in 1h" in capsys.readouterr().out
        assert main(["alerts", "-c", str(cfg), "--pending"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "2 pending, 0 given up"
        now[0] = time.time()  # the operator fixed Slack; three hours later, the service delivers
        assert d.deliver_due() == 2
    assert delivered_keys(server) == Counter({"fp0:firing:end:slack": 1, "fp1:firing:end:slack": 1})
    assert main(["alerts", "-c", str(cfg)]) == 0  # the alert history, as before
    assert main(["alerts", "-c", str(cfg), "--pending"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 pending, 0 given up"


def test_a_notification_whose_deadline_passed_while_down_is_given_up_unsent(tmp_path):
    store = SqlStore("sqlite://")
    store.commit("g", CommitUnit(notifications=notifications()[:1]))
    with FakeSlack() as server:
        later = time.time() + 86400 + 1
        Dispatcher(store, sinks(server, lambda: later), clock=lambda: later).deliver_due()
        assert server.requests == []  # a day-old page is not sent as if it were news
    (row,) = store.reads.outbox()
    assert row["status"] == "failed" and "not delivered within its deadline" in row["last_error"]


def test_max_attempts_is_gone_and_the_deadline_is_a_duration():
    with pytest.raises(ConfigError, match=r"alerts.max_attempts: unknown key"):
        parse_settings(config(alerts={"max_attempts": 8}), {})
    assert parse_settings(config(), {}).alerts.delivery_deadline == 86400
    assert parse_settings(config(alerts={"delivery_deadline": "6h"}), {}).alerts.delivery_deadline == 6 * 3600
    with pytest.raises(ConfigError, match=r"alerts.delivery_deadline"):
        parse_settings(config(alerts={"delivery_deadline": "soon"}), {})


def test_backoff_doubles_to_its_cap_and_retry_after_is_capped():
    from driftline.errors import DeliveryError, ThrottledError
    d = Dispatcher(None, {})
    assert [d.delay(n, DeliveryError("x")) for n in (1, 2, 3, 9, 10, 50)] == [1, 2, 4, 256, 300, 300]
    assert d.delay(1, ThrottledError("x", 5)) == 5 and d.delay(1, ThrottledError("x", 86400)) == 3600


def test_a_sink_that_raises_something_unexpected_is_retried_and_stops_no_other_notification(tmp_path):
    from driftline.alerts.console import RecordingSink

    class Broken:
        accepts = frozenset({"alert"})

        def send(self, kind, payload, key, ctx=None):
            raise BufferError("Local: Queue full")  # what confluent-kafka's produce raises

    store = SqlStore(f"sqlite:///{tmp_path}/o.db", upgrade=True)
    store.commit("g", CommitUnit(notifications=[Notification("a:broken", "broken", "alert", ALERT),
                                                Notification("b:good", "good", "alert", ALERT)]))
    now = [time.time()]
    good = RecordingSink()
    d = Dispatcher(store, {"broken": Broken(), "good": good}, deadline=3600, clock=lambda: now[0])
    for _ in range(3):
        d.deliver_due()
        now[0] += 1200
    rows = {r["key"]: r for r in store.reads.outbox()}
    assert len(good.sent) == 1 and rows["b:good"]["status"] == "sent"
    assert rows["a:broken"]["attempts"] >= 2 and "BufferError: Local: Queue full" in rows["a:broken"]["last_error"]
    now[0] += 7200
    d.deliver_due()
    assert {r["key"]: r["status"] for r in store.reads.outbox()}["a:broken"] == "failed"  # at its deadline
