"""The alert router's stages on hand-made window summaries and an in-memory SQLite store."""

import pytest

from driftline.alerts.routing import Router
from driftline.alerts.rules import fingerprint
from driftline.alerts.triggers import Cooldowns
from driftline.config import parse_settings
from driftline.store import SqlStore
from driftline.types import AlertState, CommitUnit, iso
from tests.helpers import config

HOUR_MS = 3_600_000
T0 = 1_795_000_000_000


def window(drifted: bool, k: int = 0, version: str = "v1") -> dict:
    """The ``k``-th ten-minute window of model ``m``; ``x`` and ``y`` drift or not."""
    def result(name):
        return {"drift": {"method": "psi", "statistic": 0.3 if drifted else 0.01, "p_value": None,
                          "threshold": 0.2, "drifted": drifted}}
    start = T0 + k * 600_000
    return {"model": "m", "version": version, "start": iso(start), "end": iso(start + 600_000),
            "count": 1000, "tests_run": True, "features": {n: result(n) for n in ("x", "y", "colour")}}


def router(cfg=None, routes=None, store=None):
    settings = parse_settings(cfg or config(), {})
    routes = {"console": frozenset({"alert", "trigger"}), "hook": frozenset({"trigger"})} if routes is None else routes
    return Router(settings, routes, store or SqlStore("sqlite://"), "g")


def rule(cfg=None):
    return parse_settings(cfg or config(), {}).models[0].rules[0]


def test_a_firing_window_changes_state_pages_each_sink_that_takes_alerts_and_triggers():
    r = router()
    out = r.route(window(True))
    fp = fingerprint("m", "v1", rule())
    end = window(True)["end"]
    inc = out.incidents[-1]["id"]  # one trigger per incident: its key is the incident's
    assert [(s.fingerprint, s.status) for s in out.alert_states] == [(fp, "firing")]
    assert [(n.key, n.sink, n.kind) for n in out.notifications] == [
        (f"{fp}:firing:{end}:console", "console", "alert"),
        (f"trigger:{inc}:{end}:console", "console", "trigger"),
        (f"trigger:{inc}:{end}:hook", "hook", "trigger")]
    (trigger,) = out.triggers
    assert out.notifications[1].payload is trigger and trigger["type"] == "trigger"
    assert r.alerts[fp].status == "firing"


def test_the_trigger_is_a_cloud_event_with_its_evidence():
    (trigger,) = router().route(window(True)).triggers
    ev, w = trigger["event"], window(True)
    assert {k: ev[k] for k in ("specversion", "source", "type", "subject", "time", "datacontenttype")} == {
        "specversion": "1.0", "source": "driftline/g", "type": "dev.driftline.retrain.requested",
        "subject": "m/v1", "time": w["end"], "datacontenttype": "application/json"}
    assert ev["data"]["window"] == {"start": w["start"], "end": w["end"], "count": 1000}
    assert ev["data"]["drifted"]["x"] == {"method": "psi", "statistic": 0.3, "p_value": None, "threshold": 0.2}
    assert ev["id"] == router().route(window(True)).triggers[0]["event"]["id"]  # the same window, the same id


def test_an_unchanged_state_is_not_returned_and_a_quiet_window_sends_nothing():
    r = router()
    assert [s.status for s in r.route(window(False)).alert_states] == ["ok"]  # the first state is new
    out = r.route(window(False, 1))
    assert (out.alert_states, out.notifications, out.triggers) == ([], [], [])


def test_pending_before_for_windows_then_firing():
    r = router(config(model={"rules": [{"name": "feature_drift", "share": 0.5, "for_windows": 2}]}))
    first = r.route(window(True))
    assert [s.status for s in first.alert_states] == ["pending"] and not first.notifications
    assert [s.status for s in r.route(window(True, 1)).alert_states] == ["firing"]


def test_resolving_pages_but_does_not_trigger():
    r = router()
    r.route(window(True))
    out = r.route(window(False, 1))
    assert [(n.kind, n.payload["status"]) for n in out.notifications] == [("alert", "resolved")]
    assert not out.triggers


def test_the_cooldown_holds_back_a_second_trigger_until_it_has_passed():
    r = router()  # cooldown 1h of event time; windows are 10 minutes
    assert len(r.route(window(True, 0)).triggers) == 1
    r.route(window(False, 1))
    held = r.route(window(True, 2))
    assert [n.kind for n in held.notifications] == ["alert"] and not held.triggers
    r.route(window(False, 3))
    assert len(r.route(window(True, 6)).triggers) == 1  # ends exactly one hour after the first


def test_the_cooldown_is_per_model_version():
    r = router()
    assert len(r.route(window(True, 0, "v1")).triggers) == 1
    assert len(r.route(window(True, 0, "v2")).triggers) == 1


@pytest.mark.parametrize("cfg", [
    config(model={"retrain": {"enabled": False}}),
    config(model={"rules": [{"name": "feature_drift", "share": 0.5, "retrain": False}]})])
def test_no_trigger_when_retraining_is_off_for_the_model_or_the_rule(cfg):
    out = router(cfg).route(window(True))
    assert [n.kind for n in out.notifications] == ["alert"] and not out.triggers


def test_sinks_get_only_the_kinds_they_accept():
    out = router(routes={"alerts_topic": frozenset({"alert"})}).route(window(True))
    assert [(n.sink, n.kind) for n in out.notifications] == [("alerts_topic", "alert")]
    assert len(out.triggers) == 1  # stored as a trigger even when no sink takes it


def test_restore_forgets_what_was_not_committed_and_keeps_what_was():
    store = SqlStore("sqlite://")
    r = router(store=store)
    unit = CommitUnit()
    unit.add(r.route(window(True, 0)))
    store.commit("g", unit)
    r.route(window(False, 1))  # resolved, but never committed
    r.restore()
    fp = fingerprint("m", "v1", rule())
    assert r.alerts[fp].status == "firing"
    assert r.cooldowns.last == {("m", "v1"): T0 + 600_000}
    assert not router(store=store).route(window(True, 2)).triggers  # a new process keeps the cooldown


def test_state_round_trip():
    r = router()
    r.route(window(True))
    other = router()
    other.load_state(r.to_state())
    assert other.alerts == r.alerts and other.cooldowns == r.cooldowns
    with pytest.raises(ValueError, match="format"):
        other.load_state({"format": 99})


def test_alert_state_and_cooldowns_refuse_another_shape():
    s = AlertState("f", "m", "v1", "feature_drift", "firing", 1, 0, "2026-01-01T00:00:00.000Z")
    assert AlertState.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown colour"):
        AlertState.from_dict(s.to_dict() | {"colour": "red"})
    with pytest.raises(ValueError, match="status 'burning'"):
        AlertState.from_dict(s.to_dict() | {"status": "burning"})
    c = Cooldowns({("m", "v1"): 5})
    assert Cooldowns.from_state(c.to_state()) == c
    with pytest.raises(ValueError, match="format"):
        Cooldowns.from_state({"last_trigger": []})
    with pytest.raises(ValueError, match="last_trigger"):
        Cooldowns.from_state({"format": 1, "last_trigger": [["m"]]})
