"""The Alertmanager sink over real HTTP to a stand-in for its API v2 (tests/standins.py); what it shares
with the PagerDuty sink (configuration, secrets, a server down or silent) is in test_incident_sinks.py."""

import base64
import json
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.alerts.alertmanager import AlertmanagerSink, alerts_of, postable
from driftline.config import parse_settings
from driftline.errors import DeliveryError, ThrottledError
from driftline.types import iso, to_ms
from tests.helpers import config
from tests.http_standin import closed_port
from tests.standins import (
    INCIDENT,
    JSON,
    RFC3339,
    FakeAlertmanager,
    alertmanager_problems,
    feature_alert,
    incident_payload,
    model_alert,
)

T0 = to_ms("2026-11-18T11:10:00.000Z") / 1000  # after the example's `since` (11:07:00)
ID = "9f1c0a7e5b2d4c3a1e0f"
TOKEN = "am-bearer-T0ken-9d8c7b6a5f4e"


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def at(seconds: float) -> str:
    return iso(int(round(seconds * 1000)))


def sink(server, clock=None, **kw) -> AlertmanagerSink:
    return AlertmanagerSink(server.url if hasattr(server, "url") else server, clock=clock or Clock(), **kw)


def opened(**kw) -> dict:
    return incident_payload("opened", alerts=[model_alert(), feature_alert(status="inhibited")], **kw)


def test_each_firing_alert_is_a_postable_alert():
    with FakeAlertmanager() as am:
        receipt = sink(am).send("incident", opened(), "k")
        (request,) = am.requests
    assert request["path"] == "/api/v2/alerts" and request["headers"]["content-type"] == "application/json"
    assert alertmanager_problems(request["body"]) == [] and receipt.detail == {"status": 200, "alerts": 1}
    (alert,) = request["body"]  # the inhibited feature alert is not sent
    assert alert["labels"] == {"alertname": "feature_drift", "model": "fraud", "version": "v3", "severity": "warning",
                               "service": "driftline", "incident": ID}
    assert alert["startsAt"] == "2026-11-18T11:07:00.000Z" and alert["endsAt"] == at(T0 + 4 * 60)
    assert RFC3339.match(alert["startsAt"]) and RFC3339.match(alert["endsAt"])
    assert alert["generatorURL"] == alert["annotations"]["dashboard"] == "http://127.0.0.1:8765/models/fraud/v3"
    assert alert["annotations"]["summary"] == "fraud v3: feature_drift on amount, country, … is 0.72 (threshold 0.25)"
    lines = alert["annotations"]["description"].splitlines()
    assert lines[0] == "fraud v3: 1 of 11 subjects drifted" and lines[1].startswith("worst: amount meanvar statistic 32.8")
    assert "drifted features (1): amount (7.37×)" in lines and lines[-1].startswith("windows: 1, ")


def test_a_feature_level_alert_has_its_subject_and_no_dashboard_without_a_url():
    payload = incident_payload(alerts=[feature_alert()], url=None, n_features=30)
    with FakeAlertmanager() as am:
        sink(am).send("incident", payload, "k")
        (alert,) = am.posted()
    assert alert["labels"]["subject"] == "amount" and alert["labels"]["severity"] == "critical"
    assert "generatorURL" not in alert and set(alert["annotations"]) == {"summary", "description"}
    assert "and 20 more" in alert["annotations"]["description"]


def test_a_since_ahead_of_the_clock_starts_now_so_alertmanager_takes_it():
    clock = Clock(to_ms("2026-11-18T11:06:00.000Z") / 1000)  # a minute before `since`
    with FakeAlertmanager() as am:
        sink(am, clock).send("incident", incident_payload("resolved"), "k")
        (alert,) = am.posted()
    assert alert["startsAt"] == alert["endsAt"] == at(clock.t)


def test_resolved_ends_every_alert_now_and_forgets_the_incident():
    clock = Clock()
    with FakeAlertmanager() as am:
        s = sink(am, clock)
        s.send("incident", opened(), "k1")
        clock.t += 30
        receipt = s.send("incident", incident_payload("resolved", alerts=[model_alert(status="ok"),
                                                                          feature_alert(status="ok")]), "k2")
        resolved = am.bodies()[1]
        clock.t += 3600
        s.refresh(clock.t)
        assert len(am.requests) == 2  # nothing left to re-send
    assert receipt.detail == {"status": 200, "alerts": 2} and s.open_incidents == []
    assert alertmanager_problems(resolved) == []
    assert all(a["endsAt"] <= at(T0 + 30) and a["endsAt"] >= a["startsAt"] for a in resolved)


def test_refresh_resends_after_resend_interval_and_not_before():
    clock = Clock()
    with FakeAlertmanager() as am:
        s = sink(am, clock, resend_interval=60)
        s.send("incident", opened(), "k")
        s.refresh(T0 + 59)
        assert len(am.requests) == 1
        s.refresh(T0 + 60)
        assert len(am.requests) == 2
        s.refresh(T0 + 119)
        assert len(am.requests) == 2
        s.refresh(T0 + 120)
        bodies = am.bodies()
    assert len(bodies) == 3 and [b[0]["endsAt"] for b in bodies] == [at(T0 + 240), at(T0 + 300), at(T0 + 360)]
    assert all(b[0]["startsAt"] == "2026-11-18T11:07:00.000Z" and len(b) == 1 for b in bodies)


def test_an_alert_sent_firing_then_inhibited_is_ended_once():
    clock = Clock()
    with FakeAlertmanager() as am:
        s = sink(am, clock)
        s.send("incident", incident_payload("opened", alerts=[feature_alert()]), "k1")
        clock.t += 10
        s.send("incident", incident_payload("updated", alerts=[model_alert(), feature_alert(status="inhibited")]), "k2")
        s.refresh(clock.t + 60)
        first, second, third = am.bodies()
    assert first[0]["labels"]["subject"] == "amount" and first[0]["endsAt"] == at(T0 + 240)
    ends = {a["labels"]["alertname"]: a["endsAt"] for a in second}
    assert ends == {"feature_drift": at(T0 + 10 + 240), "amount_drift": at(T0 + 10)}
    assert [a["labels"]["alertname"] for a in third] == ["feature_drift"]


def test_resume_reseeds_the_open_incidents_after_a_restart():
    clock = Clock()
    with FakeAlertmanager() as am:
        sink(am, clock).send("incident", opened(), "k")
        clock.t += 20
        restarted = sink(am, clock)
        gone = incident_payload("resolved", id="0" * 20)["incident"]
        restarted.resume([opened()["incident"], gone])
        assert restarted.open_incidents == [ID]
        restarted.refresh(clock.t)  # at once: Alertmanager may have missed a re-send while we were down
        restarted.refresh(clock.t + 59)
        bodies = am.bodies()
    assert len(bodies) == 2 and bodies[1][0]["labels"] == bodies[0][0]["labels"]
    assert bodies[1][0]["endsAt"] == at(T0 + 20 + 240)


def test_a_failed_refresh_is_raised_and_tried_again_on_a_later_pass():
    clock = Clock()
    with FakeAlertmanager(answers=[(200, b"", {}), (500, b"boom", {})]) as am:
        s = sink(am, clock)
        s.send("incident", opened(), "k")
        with pytest.raises(DeliveryError, match="HTTP 500: boom"):
            s.refresh(T0 + 60)
        s.refresh(T0 + 65)
        assert len(am.requests) == 2  # not again at once
        s.refresh(T0 + 70)
        assert len(am.requests) == 3
    with pytest.raises(DeliveryError, match="unreachable"):
        s.refresh(T0 + 200)  # the stand-in is gone


def test_a_resolve_that_failed_is_not_re_sent_as_firing_meanwhile():
    clock = Clock()
    with FakeAlertmanager(answers=[(200, b"", {}), (500, b"boom", {})]) as am:
        s = sink(am, clock)
        s.send("incident", opened(), "k1")
        with pytest.raises(DeliveryError):
            s.send("incident", incident_payload("resolved"), "k2")
        s.refresh(T0 + 600)
        assert len(am.requests) == 2
        s.send("incident", incident_payload("resolved"), "k2")
    assert s.open_incidents == [] and am.bodies()[2][0]["endsAt"] == at(T0)


@pytest.mark.parametrize("answer, error, retry_after", [
    ((429, b"slow down", {"Retry-After": "7"}), ThrottledError, 7.0),
    ((503, b"", {}), ThrottledError, None),
    ((400, b"start time must be before end time", {}), DeliveryError, None),
    ((500, b"", {}), DeliveryError, None),
])
def test_answers_become_our_errors(answer, error, retry_after):
    with FakeAlertmanager(answers=[answer]) as am:
        with pytest.raises(error) as info:
            sink(am).send("incident", opened(), "k")
    assert type(info.value) is error and info.value.retry_after == retry_after
    if answer[0] == 400:
        assert "HTTP 400: start time must be before end time" in str(info.value)


@pytest.mark.parametrize("auth, header", [
    ({"token": TOKEN}, f"Bearer {TOKEN}"),
    ({"username": "driftline", "password": "pa55-W0rd-basic"},
     "Basic " + base64.b64encode(b"driftline:pa55-W0rd-basic").decode()),
])
def test_auth_is_sent_and_never_logged(caplog, auth, header):
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    with FakeAlertmanager(auth=header) as am:
        s = sink(am, clock, **auth)
        s.send("incident", opened(), "k")
        s.refresh(T0 + 60)
        assert [r["headers"]["authorization"] for r in am.requests] == [header, header]
        wrong = sink(am, clock, token="not-the-right-one")
        with pytest.raises(DeliveryError) as info:
            wrong.send("incident", opened(), "k")
    secret = auth.get("token") or auth["password"]
    assert "HTTP 401" in str(info.value) and "not-the-right-one" not in str(info.value)
    assert caplog.records and secret not in caplog.text and header not in caplog.text
    assert secret not in repr(s) and header.split()[1] not in repr(s)


# -- any payload renders --------------------------------------------------------------

@given(INCIDENT, st.floats(0, 4e9))
def test_any_incident_renders_alerts_alertmanager_accepts(inc, now):
    firing_alerts = postable(inc, now, now + 240)
    ended = postable(inc, now, now, alerts_of(inc))
    assert alertmanager_problems(firing_alerts + ended) == []
    assert all(a["labels"]["incident"] == inc["id"] and a["endsAt"] <= at(now + 240) for a in firing_alerts)
    assert all(a["endsAt"] <= at(now) for a in ended)
    orjson.dumps(firing_alerts + ended)


@given(st.lists(INCIDENT | JSON | st.builds(lambda inc: {"type": "incident", "event": "opened", "incident": inc}, INCIDENT),
                max_size=5))
def test_resume_takes_whatever_the_store_holds(items):
    s = AlertmanagerSink("http://127.0.0.1:1")
    s.resume(items)
    incidents = [i.get("incident") if isinstance(i, dict) and i.get("type") == "incident" else i for i in items]
    ids = {i["id"] for i in incidents if isinstance(i, dict) and "id" in i}
    assert set(s.open_incidents) <= ids


def test_through_the_outbox_the_receipt_is_stored_and_the_token_redacted_from_errors(tmp_path):
    from driftline.alerts.outbox import Dispatcher
    from driftline.redact import for_settings
    from driftline.store import SqlStore
    from driftline.types import CommitUnit, Notification

    settings = parse_settings(config(alerts={"alertmanager": {"url": "http://127.0.0.1:1", "token": TOKEN}}), {})
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.commit("g", CommitUnit(notifications=[Notification("incident:x:opened:w:alertmanager", "alertmanager",
                                                             "incident", opened())]))
    with FakeAlertmanager(auth=f"Bearer {TOKEN}") as am:
        d = Dispatcher(store, {"alertmanager": sink(am, token=TOKEN)}, clock=time.time, redact=for_settings(settings))
        assert d.deliver_due() == 1
    (row,) = store.reads.outbox()
    store.close()
    assert row["status"] == "sent" and row["receipt"] == {"status": 200, "alerts": 1}
    assert for_settings(settings)(f"refused Bearer {TOKEN}") == "refused Bearer ***"


# -- against a real Alertmanager, where one is installed (Debian: apt-get install prometheus-alertmanager) -----

AM_BINARY = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


@pytest.fixture
def real_alertmanager(tmp_path):
    port = closed_port()
    (tmp_path / "am.yml").write_text("route: {receiver: none, group_wait: 0s}\nreceivers: [{name: none}]\n")
    proc = subprocess.Popen([AM_BINARY, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def alerts_in(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.skipif(AM_BINARY is None, reason="no Alertmanager binary installed (apt-get install prometheus-alertmanager)")
def test_a_real_alertmanager_takes_the_alerts_and_resolves_them(real_alertmanager):
    clock = Clock(time.time())
    s = AlertmanagerSink(real_alertmanager, clock=clock)
    payload = incident_payload("opened", alerts=[model_alert(), feature_alert(fingerprint="b1"),
                                                 feature_alert("country", fingerprint="b2", status="inhibited")])
    assert s.send("incident", payload, "k").detail == {"status": 200, "alerts": 2}
    shown = {a["labels"].get("subject", a["labels"]["alertname"]): a for a in alerts_in(real_alertmanager)}
    assert set(shown) == {"feature_drift", "amount"}
    assert shown["amount"]["labels"] == {"alertname": "amount_drift", "model": "fraud", "version": "v3",
                                         "severity": "critical", "service": "driftline", "incident": ID,
                                         "subject": "amount"}
    assert shown["amount"]["status"]["state"] == "active" and shown["amount"]["startsAt"].startswith("2026-11-18T11:07:00")
    assert shown["amount"]["annotations"]["dashboard"] == "http://127.0.0.1:8765/models/fraud/v3"
    clock.t = time.time()
    s.send("incident", incident_payload("resolved", alerts=[model_alert(status="ok"), feature_alert(status="ok")]), "k2")
    assert alerts_in(real_alertmanager) == []


@pytest.mark.skipif(AM_BINARY is None, reason="no Alertmanager binary installed (apt-get install prometheus-alertmanager)")
def test_a_real_alertmanager_refuses_what_the_stand_in_refuses(real_alertmanager):
    bad = [{"labels": {"alertname": "x"}, "startsAt": "2026-11-18T11:07:00.000Z", "endsAt": "2026-11-18T11:06:00.000Z"}]
    assert alertmanager_problems(bad) == ["alert 0: start time must be before end time"]
    request = urllib.request.Request(f"{real_alertmanager}/api/v2/alerts", data=json.dumps(bad).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400 and "start time must be before end time" in info.value.read().decode()
