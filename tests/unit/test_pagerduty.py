"""The PagerDuty sink over real HTTP to a stand-in for the Events API v2 (tests/standins.py); what it shares
with the Alertmanager sink (configuration, secrets, a server down or silent) is in test_incident_sinks.py."""

import logging
import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.alerts.pagerduty import MAX_FEATURES, MAX_SUMMARY, PagerDutySink, encode, event
from driftline.app import build_sinks
from driftline.config import parse_settings
from driftline.errors import DeliveryError, ThrottledError
from tests.helpers import config
from tests.standins import (
    INCIDENT,
    FakePagerDuty,
    feature_alert,
    incident_payload,
    model_alert,
    pagerduty_problems,
)

KEY = "R0ut1ngK3ySecretR0ut1ngK3ySecret"  # 32 characters, like an integration key


def send(server, payload, **kw):
    return PagerDutySink(KEY, server.url if hasattr(server, "url") else server, **kw).send(
        "incident", payload, f"incident:{payload['incident']['id']}:{payload['event']}:w:pagerduty")


def test_opened_updated_resolved_share_the_incident_id_as_dedup_key():
    with FakePagerDuty() as pd:
        receipts = [send(pd, incident_payload(event)) for event in ("opened", "updated", "repeat", "resolved")]
        bodies = pd.bodies()
    assert [b["event_action"] for b in bodies] == ["trigger", "trigger", "trigger", "resolve"]
    assert {b["dedup_key"] for b in bodies} == {"9f1c0a7e5b2d4c3a1e0f"}
    assert all(r["path"] == "/v2/enqueue" for r in pd.requests)
    assert [r.detail for r in receipts] == [{"status": 202, "dedup_key": "9f1c0a7e5b2d4c3a1e0f"}] * 4
    assert bodies[3] == {"routing_key": KEY, "dedup_key": "9f1c0a7e5b2d4c3a1e0f", "event_action": "resolve"}


def test_a_trigger_carries_the_incident_as_pd_cef():
    with FakePagerDuty() as pd:
        send(pd, incident_payload("opened"))
        (body,) = pd.bodies()
    p = body["payload"]
    assert body["client"] == "driftline" and body["routing_key"] == KEY
    assert body["links"] == [{"href": "http://127.0.0.1:8765/models/fraud/v3", "text": "dashboard"}]
    assert p["source"] == "driftline/fraud/v3" and p["component"] == "fraud" and p["group"] == "v3"
    assert p["class"] == "feature_drift" and p["timestamp"] == "2026-11-18T11:07:02.000Z"
    assert p["summary"].startswith("fraud v3: 1 of 11 subjects drifted") and "amount" in p["summary"]
    cd = p["custom_details"]
    assert cd["worst"]["feature"] == "amount" and cd["windows"]["count"] == 1
    assert cd["features"]["amount"]["p_value"] == 5.5e-236 and cd["alerts"][0]["rule"] == "feature_drift"


def test_no_links_without_a_dashboard_and_a_configured_source():
    with FakePagerDuty() as pd:
        send(pd, incident_payload(url=None), source="ml-platform")
        (body,) = pd.bodies()
    assert "links" not in body and "client_url" not in body and body["payload"]["source"] == "ml-platform"


@pytest.mark.parametrize("ours, theirs", [("critical", "critical"), ("warning", "warning"), ("info", "info"),
                                          ("page-me", "error")])
def test_severity_mapping(ours, theirs):
    with FakePagerDuty() as pd:
        send(pd, incident_payload(severity=ours))
        assert pd.bodies()[0]["payload"]["severity"] == theirs


def test_an_incident_already_resolved_when_delivered_is_a_resolve():
    with FakePagerDuty() as pd:
        send(pd, incident_payload("updated", status="resolved"))
        assert pd.bodies()[0]["event_action"] == "resolve"


def test_a_500_feature_incident_is_bounded():
    alerts = [model_alert()] + [feature_alert(f"f{i:03d}", fingerprint=f"fp{i}") for i in range(1, 200)]
    payload = incident_payload(n_features=500, alerts=alerts)
    payload["incident"]["title"] = "x" * 5000
    with FakePagerDuty() as pd:
        send(pd, payload)
        (request,) = pd.requests
    cd = request["body"]["payload"]["custom_details"]
    assert len(cd["features"]) == MAX_FEATURES and cd["features_total"] == 500 and cd["features_not_shown"] == 450
    assert list(cd["features"])[:2] == ["amount", "f001"]  # the worst first
    assert len(cd["alerts"]) == 50 and cd["alerts_not_shown"] == 150 and len(cd["new_features"]) == MAX_FEATURES
    assert len(request["body"]["payload"]["summary"]) == MAX_SUMMARY
    assert len(request["raw"]) < 100_000


def test_429_is_throttled_with_a_default_or_the_servers_retry_after():
    with FakePagerDuty(answers=[(429, {"status": "throttle event"}, {}),
                                (429, {"status": "throttle event"}, {"Retry-After": "12"})]) as pd:
        with pytest.raises(ThrottledError) as first:
            send(pd, incident_payload())
        with pytest.raises(ThrottledError) as second:
            send(pd, incident_payload())
    assert first.value.retry_after == 30.0 and second.value.retry_after == 12.0


def test_500_is_a_delivery_error_to_retry():
    with FakePagerDuty(answers=[(500, {"status": "error"}, {})]) as pd:
        with pytest.raises(DeliveryError) as info:
            send(pd, incident_payload())
    assert not isinstance(info.value, ThrottledError) and "HTTP 500" in str(info.value)


def test_400_names_pagerdutys_reason_and_never_the_key():
    short = "R0ut1ngK3ySecret"  # refused by the stand-in like PagerDuty does: not 32 characters
    with FakePagerDuty() as pd:
        with pytest.raises(DeliveryError) as info:
            PagerDutySink(short, pd.url).send("incident", incident_payload(), "k")
    text = str(info.value)
    assert "HTTP 400" in text and "Length of 'routing_key' is incorrect" in text and "delivery_deadline" in text
    assert short not in text


def test_the_routing_key_is_never_logged_even_at_debug(caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    with FakePagerDuty(answers=[(429, {}, {}), (500, {}, {}), (400, {"message": f"bad key {KEY}"}, {})]) as pd:
        for _ in range(3):
            with pytest.raises(DeliveryError) as info:
                send(pd, incident_payload())
            errors.append(str(info.value))
        send(pd, incident_payload("opened"))
        send(pd, incident_payload("resolved"))
    assert caplog.records and "9f1c0a7e5b2d4c3a1e0f" in caplog.text
    assert KEY not in caplog.text and not any(KEY in e for e in errors) and "***" in errors[2]
    assert KEY not in repr(PagerDutySink(KEY))


# -- configuration ------------------------------------------------------------------


def test_a_blank_routing_key_turns_pagerduty_off():
    settings = parse_settings(config(alerts={"pagerduty": {"routing_key": "${PD_KEY:-}"}}), {})
    assert settings.alerts.pagerduty.enabled is False and "pagerduty" not in build_sinks(settings)


# -- any payload renders --------------------------------------------------------------

@given(INCIDENT, st.sampled_from(["opened", "updated", "repeat", "resolved"]))
def test_any_incident_renders_an_event_pagerduty_accepts(inc, kind):
    body = orjson.loads(encode(event({"event": kind, "incident": inc}, KEY)))
    assert pagerduty_problems(body) == [] and body["dedup_key"] == inc["id"]


# -- through the outbox -----------------------------------------------------------------


def test_through_the_outbox_a_throttled_page_is_retried_and_its_receipt_stored(store_url):
    from driftline.alerts.outbox import Dispatcher
    from driftline.store import SqlStore
    from driftline.types import CommitUnit, Notification

    store = SqlStore(store_url)
    key = "incident:9f1c0a7e5b2d4c3a1e0f:opened:2026-11-18T11:07:02.000Z:pagerduty"
    store.commit("g", CommitUnit(notifications=[Notification(key, "pagerduty", "incident", incident_payload())]))
    now = [time.time()]
    with FakePagerDuty(answers=[(429, {"status": "throttle event"}, {})]) as pd:
        d = Dispatcher(store, {"pagerduty": PagerDutySink(KEY, pd.url)}, clock=lambda: now[0])
        assert d.deliver_due() == 0
        now[0] += 29
        assert d.deliver_due() == 0 and len(pd.requests) == 1  # held back for PagerDuty's 30 s
        now[0] += 1
        assert d.deliver_due() == 1
    (row,) = store.reads.outbox()
    store.close()
    assert row["status"] == "sent" and row["receipt"] == {"status": 202, "dedup_key": "9f1c0a7e5b2d4c3a1e0f"}
    assert KEY not in str(row)
