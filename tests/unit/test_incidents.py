"""Incidents, inhibition, keep_firing_for, no data, volume, repeat and the trigger policy,
on hand-made window summaries (docs/alerting.md); and the dispatcher's side of incidents
(updates wait for their first message, get its receipt, superseded updates are not sent)
on an in-memory store with a recording sink."""

from driftline.alerts.console import RecordingSink
from driftline.alerts.outbox import Dispatcher
from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.store import SqlStore
from driftline.types import CommitUnit, Receipt, iso
from tests.helpers import config

T0 = 1_795_000_000_000
WINDOW_MS = 600_000
SINKS = {"console": frozenset({"alert", "trigger"}), "slack": frozenset({"incident", "trigger"})}


def window(drifted=(), k: int = 0, version: str = "v1", count: int = 1000, **extra) -> dict:
    """The ``k``-th ten-minute window of model ``m``; the features in ``drifted`` drift."""
    def result(name):
        d = name in drifted
        return {"drift": {"method": "psi", "statistic": 0.3 if d else 0.01, "p_value": None,
                          "threshold": 0.2, "drifted": d}}
    start = T0 + k * WINDOW_MS
    return {"model": "m", "version": version, "start": iso(start), "end": iso(start + WINDOW_MS),
            "count": count, "invalid": 0, "tests_run": True, "closed_by": "watermark",
            "features": {n: result(n) for n in ("x", "y", "colour")}, **extra}


def router(rules, store=None, alerts=None, retrain=None, clock=lambda: 1000.0, routes=SINKS, window=None):
    cfg = config(model={"rules": rules, **({"retrain": retrain} if retrain else {}),
                        **({"window": window} if window else {})},
                 alerts={"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
                         "dashboard_url": "http://dash:8765/", **(alerts or {})})
    return Router(parse_settings(cfg, {}), routes, store or SqlStore("sqlite://"), "g", clock=clock)


def incident_events(out, sink="slack"):
    return [(n.payload["event"], n.payload["incident"]["new_features"]) for n in out.notifications
            if n.kind == "incident" and n.sink == sink]


PER_FEATURE = [{"name": f"drift_{f}", "feature": f, "resolve_after": 1} for f in ("x", "y", "colour")]


def test_one_incident_per_model_version_names_features_that_join_later():
    r = router(PER_FEATURE)
    first = r.route(window({"x"}, 0), now=1000.0)
    assert incident_events(first) == [("opened", ["x"])]
    (n,) = [n for n in first.notifications if n.kind == "incident"]
    assert n.not_before == 1030.0  # group_wait
    inc = n.payload["incident"]
    assert inc["url"] == "http://dash:8765/models/m/v1" and inc["status"] == "firing"
    later = r.route(window({"x", "colour"}, 1), now=1100.0)
    (upd,) = [n for n in later.notifications if n.kind == "incident"]
    assert (upd.payload["event"], upd.payload["incident"]["new_features"]) == ("updated", ["colour"])
    assert upd.payload["incident"]["id"] == inc["id"]  # the same incident
    assert upd.not_before == 1000.0 + 300  # group_interval after its last notification
    assert set(upd.payload["incident"]["features"]) == {"x", "colour"}
    quiet = r.route(window(set(), 2), now=1200.0)
    assert incident_events(quiet) == [("resolved", [])]
    assert quiet.incidents[-1]["status"] == "resolved" and not r.incidents
    assert [n.payload["status"] for n in quiet.notifications if n.kind == "alert"] == ["resolved", "resolved"]


def test_a_feature_drifting_in_a_later_window_of_a_model_level_alert_is_named():
    r = router([{"name": "share", "share": 0.3, "resolve_after": 2}])
    r.route(window({"x"}, 0))
    out = r.route(window({"y"}, 1))  # the alert is still firing: no alert event, the incident grows
    assert [n.kind for n in out.notifications] == ["incident"]
    assert incident_events(out) == [("updated", ["y"])]


def test_a_flapping_feature_does_not_page_every_window_with_keep_firing_for():
    flapping = [set(), set(), {"x"}, set(), {"x"}, set(), {"x"}, set(), set(), set(), set(), set()]

    def pages(keep: int):
        r = router([{"name": "drift_x", "feature": "x", "resolve_after": 1, "keep_firing_for": keep}])
        return [e for k, d in enumerate(flapping) for e, _ in incident_events(r.route(window(d, k)))]

    assert pages(0) == ["opened", "resolved"] * 3
    assert pages(2) == ["opened", "resolved"]  # one incident, resolved once the flapping stopped


def test_a_model_level_alert_inhibits_the_feature_alerts_of_its_version():
    r = router([{"name": "share", "share": 0.5, "resolve_after": 1}, *PER_FEATURE])
    out = r.route(window({"x", "y"}, 0))
    alerts = {n.payload["rule"]: n.payload for n in out.notifications if n.kind == "alert"}
    assert alerts["share"]["inhibited"] is False
    assert alerts["drift_x"]["inhibited"] is alerts["drift_y"]["inhibited"] is True
    (opened,) = [n.payload for n in out.notifications if n.kind == "incident"]
    statuses = {a["rule"]: a["status"] for a in opened["incident"]["alerts"]}
    assert statuses == {"share": "firing", "drift_x": "inhibited", "drift_y": "inhibited"}
    assert len({a["incident"] for a in alerts.values()}) == 1  # one incident, one page
    later = r.route(window({"x", "y", "colour"}, 1))  # colour's own alert fires, inhibited
    assert incident_events(later) == [("updated", ["colour"])]  # named as evidence, once
    (inc,) = r.incidents.values()
    assert inc.alerts[next(f for f, a in inc.alerts.items() if a["rule"] == "drift_colour")]["status"] == "inhibited"


def test_incidents_are_grouped_by_the_configured_labels():
    r = router(PER_FEATURE, alerts={"group_by": ["model", "version", "subject"]})
    out = r.route(window({"x", "y"}, 0))
    assert len({n.payload["incident"]["id"] for n in out.notifications if n.kind == "incident"}) == 2


def test_repeat_while_firing_and_no_more_after_it_resolved():
    r = router(PER_FEATURE)
    r.route(window({"x"}, 0), now=0.0)
    assert r.tick({}, now=4 * 3600 - 1).notifications == []
    rep = r.tick({}, now=4 * 3600)
    assert [(n.payload["event"], n.key) for n in rep.notifications] == [
        ("repeat", f"incident:{rep.incidents[0]['id']}:repeat:repeat1:slack")]
    assert r.tick({}, now=4 * 3600 + 10).notifications == []
    r.route(window(set(), 1), now=4 * 3600 + 20)
    assert r.tick({}, now=100 * 3600).notifications == []


def test_no_data_fires_when_a_version_is_silent_and_resolves_when_it_sends_again():
    r = router([{"name": "no_data", "no_data": "10m"}])
    last = iso(T0)
    assert r.tick({("m", "v1"): [(599.0, last)]}).notifications == []
    fired = r.tick({("m", "v1"): [(600.0, last)]})
    (alert,) = [n.payload for n in fired.notifications if n.kind == "alert"]
    assert alert["status"] == "firing" and alert["subject"] == f"no events for 10m (last at {last})"
    assert incident_events(fired) == [("opened", [])]
    assert r.tick({("m", "v1"): [(900.0, last)]}).notifications == []  # still silent: nothing new
    back = r.tick({("m", "v1"): [(0.0, iso(T0 + 900_000))]})
    assert [n.payload.get("status") or n.payload["event"] for n in back.notifications] == ["resolved", "resolved"]


def test_a_gap_in_event_time_fires_and_resolves_once_events_return():
    r = router([{"name": "no_data", "no_data": "10m"}])
    out = r.tick({("m", "v1"): [(660.0, iso(T0)), (0.0, iso(T0 + 661_000))]})
    assert [(n.kind, n.payload.get("status") or n.payload["event"]) for n in out.notifications] == [
        ("alert", "firing"), ("alert", "resolved"), ("incident", "opened"), ("incident", "resolved")]


def test_volume_against_the_reference_rate_and_the_dead_letter_share():
    r = router([{"name": "volume", "volume": {"below": 0.5, "above": 2.0}, "resolve_after": 1},
                {"name": "bad", "dead_letters": 0.1, "resolve_after": 1}], window={"duration": "10m"})
    ok = r.route(window(k=0, count=900, expected_count=1000.0))
    assert not [n for n in ok.notifications if n.kind == "alert"]
    gap = r.route(window(k=1, count=0, expected_count=1000.0, tests_run=False))
    (low,) = [n.payload for n in gap.notifications if n.kind == "alert"]
    assert (low["rule"], low["value"], low["threshold"]) == ("volume", 0.0, 0.5)
    assert "too few" in low["subject"]
    burst = r.route(window(k=2, count=2500, expected_count=1000.0))  # too many: still firing
    assert not [n for n in burst.notifications if n.kind == "alert"]
    assert r.alerts[low["fingerprint"]].status == "firing"
    bad = r.route(window(k=3, count=1000, invalid=200, expected_count=1000.0))
    assert [(n.payload["rule"], n.payload["status"]) for n in bad.notifications if n.kind == "alert"] == [
        ("volume", "resolved"), ("bad", "firing")]
    partial = window(k=4, count=10, expected_count=1000.0, closed_by="idle")
    assert not [n for n in r.route(partial).notifications if n.payload.get("rule") == "volume"]


def test_one_trigger_per_incident_after_min_windows():
    r = router(PER_FEATURE, retrain={"min_windows": 2, "cooldown": "0s"})
    assert not r.route(window({"x"}, 0)).triggers  # one breaching window: not enough evidence yet
    (trig,) = r.route(window({"x", "y"}, 1)).triggers
    assert trig["incident"] == r.incidents[next(iter(r.incidents))].id
    assert {k: trig[k] for k in ("model", "version", "time")} == {"model": "m", "version": "v1",
                                                                   "time": window(k=1)["end"]}
    assert trig["event"]["data"]["incident"] == trig["incident"]
    assert set(trig["event"]["data"]["drifted"]) == {"x", "y"}  # the incident's evidence
    assert not r.route(window({"x", "y"}, 2)).triggers  # one incident, one trigger


def test_no_data_and_plumbing_rules_do_not_request_retraining_unless_named():
    rules = [{"name": "no_data", "no_data": "1m"}]
    r = router(rules + [{"name": "bad", "dead_letters": 0.1}])
    assert not r.route(window(k=0, invalid=500)).triggers
    named = router(rules + [{"name": "bad", "dead_letters": 0.1}], retrain={"rules": ["bad"]})
    assert len(named.route(window(k=0, invalid=500)).triggers) == 1


def test_an_open_incident_survives_a_restart():
    store = SqlStore("sqlite://")
    r = router(PER_FEATURE, store=store)
    unit = CommitUnit()
    unit.add(r.route(window({"x"}, 0)))
    store.commit("g", unit)
    again = router(PER_FEATURE, store=store)
    out = again.route(window({"x", "y"}, 1))
    assert incident_events(out) == [("updated", ["y"])]
    assert out.incidents[-1]["id"] == unit.incidents[-1]["id"]


# -- the dispatcher's side ----------------------------------------------------------


class Threaded(RecordingSink):
    """Records what it is sent with its context; the first message of an incident gets a ts."""

    def __init__(self):
        super().__init__(frozenset({"incident", "trigger"}))
        self.contexts = []

    def send(self, kind, payload, key, ctx=None):
        self.sent.append((kind, payload, key))
        self.contexts.append(ctx)
        return Receipt(detail={"channel": "C1", "ts": f"{len(self.sent)}.000"})


def dispatch(rules, windows, times, clock):
    store = SqlStore("sqlite://")
    r = router(rules, store=store, clock=clock, routes={"slack": frozenset({"incident"})})
    sink = Threaded()
    d = Dispatcher(store, {"slack": sink}, clock=clock)
    for w, t in zip(windows, times):
        now = t
        clock.now = now
        unit = CommitUnit()
        unit.add(r.route(w, now=now))
        store.commit("g", unit)
        d.deliver_due()
    return store, sink, d


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_the_first_message_waits_group_wait_and_shows_what_joined_meanwhile():
    clock = Clock()
    store, sink, d = dispatch(PER_FEATURE, [window({"x"}, 0), window({"x", "y"}, 1)], [0.0, 10.0], clock)
    assert sink.sent == []  # group_wait is 30 s
    clock.now = 31.0
    d.deliver_due()
    (kind, payload, _), = sink.sent
    assert payload["event"] == "opened" and set(payload["incident"]["features"]) == {"x", "y"}
    clock.now = 400.0  # the update (y joined) is due group_interval after the first notification
    d.deliver_due()
    assert [p["event"] for _, p, _ in sink.sent] == ["opened", "updated"]
    assert sink.contexts[1].thread == {"channel": "C1", "ts": "1.000"}  # a reply in the first one's thread


def test_an_update_superseded_before_it_was_sent_is_not_sent():
    clock = Clock()
    windows = [window({"x"}, 0), window({"x", "y"}, 1), window({"x", "y", "colour"}, 2)]
    store, sink, d = dispatch(PER_FEATURE, windows, [0.0, 40.0, 50.0], clock)
    clock.now = 1000.0
    d.deliver_due()
    assert [p["event"] for _, p, _ in sink.sent] == ["opened", "updated"]
    assert sink.sent[1][1]["incident"]["new_features"] == ["y", "colour"]  # what the superseded one said too
    assert store.outbox.undelivered() == []  # nothing left pending
    assert store.outbox.counts(("superseded", "sent")) == {"superseded": 1, "sent": 2}
