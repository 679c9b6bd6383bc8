"""How the API assembles an incident from the store's rows (no HTTP, no database): a state
another release wrote, outbox keys whose suffix holds colons, the timeline's order."""

from hypothesis import given
from hypothesis import strategies as st

from driftline.alerts.incidents import Incident
from driftline.api import incidents as api


def test_a_state_this_release_cannot_rebuild_is_shown_as_stored():
    shot = api.snapshot({"id": "abc", "model": "m", "version": "v", "status": "firing", "unknown_field": 1})
    assert (shot["id"], shot["status"], shot["features"]) == ("abc", "firing", None)


def test_a_stored_state_gives_the_notification_snapshot_without_new_features():
    inc = Incident.open({"model": "m", "version": "v"}, "m", "v", "2026-01-01T00:00:05.000Z")
    shot = api.snapshot(inc.to_state())
    assert shot == {k: v for k, v in inc.snapshot().items() if k != "new_features"}


@given(st.text(), st.text(alphabet="abc:"))
def test_any_outbox_key_parses(key, sink):
    event, suffix = api.notification_key(key, sink)
    assert isinstance(event, str) and isinstance(suffix, str)


def test_the_timeline_puts_each_alert_event_before_the_notification_it_caused():
    end = "2026-01-01T00:00:10.000Z"
    alerts = [{"id": 7, "payload": {"type": "alert", "status": "firing", "window_end": end}}]
    sent = [{"id": 3, "key": f"incident:i:opened:{end}:{sink}", "sink": sink, "status": "sent", "attempts": 1,
             "last_error": None, "receipt": {}, "created_at": 1.0, "sent_at": 2.0, "window": {"end": end},
             "new_features": ["x"]} for sink in ("slack", "pagerduty")]
    sent.append(dict(sent[0], id=9, key="incident:i:repeat:repeat1:slack", window={"end": end}, new_features=[]))
    line = api.timeline(alerts, sent)
    assert [(e["type"], e.get("event")) for e in line] == [("alert", None), ("notification", "opened"),
                                                            ("notification", "repeat")]
    assert [d["sink"] for d in line[1]["deliveries"]] == ["slack", "pagerduty"] and line[1]["time"] == end
    assert api.trigger_status([d for e in line[1:] for d in e["deliveries"]]) == "sent"
