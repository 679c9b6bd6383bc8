"""Scale-out no-data rules on real processes: two `driftline run` workers in one group on the
embedded broker, a 6-partition topic and PostgreSQL, Slack stood in for by a local HTTP
server. Models m and k send to every partition as the wall clock goes; k stops while m goes
on: exactly one no-data alert for k reaches Slack (not one per worker), none for m, and it
resolves when k sends again."""

from __future__ import annotations

import time

import pytest

from tests.conftest import empty_postgres
from tests.helpers import FakeSlack, events
from tests.integration.test_scale_out import PARTITIONS, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STEP = 50  # events per model and step: half a second of event time, sent every half second


class Traffic:
    """m, and k while ``k_on``, sent in steps of half a second, round-robin over the partitions."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.step, self.k_on = cluster, 0, True

    def send(self) -> None:
        start = self.step * STEP
        values = events(STEP, start=start, seed=self.step, model="m")
        if self.k_on:
            values += events(STEP, start=start, seed=self.step + 10_000, model="k")
        self.cluster.produce([(i % PARTITIONS, v) for i, v in enumerate(values)])
        self.step += 1

    def until(self, done, what: str, timeout: float) -> float:
        """Send a step every half second until ``done()``; the seconds it took."""
        started = time.monotonic()
        while not done():
            assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
            self.send()
            for name, proc in self.cluster.procs.items():
                assert proc.poll() is None, f"{name} exited: {self.cluster.log(name)[-3000:]}"
            time.sleep(0.5)
        return time.monotonic() - started


def no_data(cluster: Cluster, model: str) -> list[str]:
    return [e["status"] for e in cluster.store.reads.alert_events() if e["rule"] == "no_data" and e["model"] == model]


def roots(slack: FakeSlack, model: str) -> list[dict]:
    """The incident messages (not thread replies) Slack was asked to post for ``model``'s no-data alert."""
    return [m for m in slack.messages() if "thread_ts" not in m and f" {model} v1: no_data" in m["text"]]


def test_a_model_that_stops_while_another_goes_on_pages_once_and_resolves(broker, uid, tmp_path):
    with FakeSlack() as slack:
        c = Cluster(broker, uid, tmp_path, empty_postgres())
        try:
            for spec in c.cfg["models"]:
                spec["rules"] = [{"name": "no_data", "no_data": "4s", "severity": "critical"}]
            c.cfg["store"]["checkpoint_every"] = "1s"
            c.cfg["alerts"] |= {"console": False, "slack": {"token": "xoxb-test", "channel": "#ml",
                                                            "base_url": slack.url + "/api/"}}
            c.start("w0")
            c.start("w1")
            c.until(lambda: len(c.owners()) == PARTITIONS and len(set(c.owners().values())) == 2,
                    "two workers sharing the six partitions")
            traffic = Traffic(c)
            traffic.until(lambda: traffic.step >= 12, "six seconds of both models", 30)
            traffic.k_on = False
            took = traffic.until(lambda: roots(slack, "k"), "k's no-data alert in Slack", 30)
            assert took >= 4 and no_data(c, "k") == ["firing"]
            more = traffic.step + 4
            traffic.until(lambda: traffic.step >= more, "two more seconds of k's silence", 10)
            traffic.k_on = True
            traffic.until(lambda: no_data(c, "k") == ["firing", "resolved"], "k's alert resolved", 20)
            assert no_data(c, "m") == []
            c.until(lambda: all(r["status"] == "sent" for r in c.store.reads.outbox()), "every message delivered")
        finally:
            c.stop()
    (root,) = roots(slack, "k")  # once, by one of the two workers
    assert root["text"].startswith("[CRITICAL] k v1: no_data")
    assert roots(slack, "m") == []
    updates = [r["body"]["text"] for r in slack.requests if r["method"] == "chat.update"]
    assert len(updates) == 1 and updates[0].startswith("[RESOLVED] k v1")  # the root, resolved once
