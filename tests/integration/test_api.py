"""The HTTP API over a store filled by a real pipeline run (SQLite and PostgreSQL), through
a real uvicorn server on a free port: every endpoint, paging, bad parameters, auth."""

import httpx
import pytest

from driftline.app import build_http
from driftline.config import parse_settings
from tests.dashboard_data import HOSTILE, HOSTILE_FEATURE, WINDOWS, fill


@pytest.fixture
def served(store_url, tmp_path):
    cfg = fill(store_url, tmp_path)
    server = build_http(parse_settings(cfg, {}), port=0)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


BASE = "/api/v1/models/fraud/versions/v3"


def test_models_show_the_version_and_its_windows(served):
    [m] = served.get("/api/v1/models").json()["items"]
    assert (m["model"], m["version"], m["windows"], m["status"]) == ("fraud", "v3", WINDOWS, "ok")
    assert m["firing_incidents"] == 0  # its incident resolved
    assert len(m["recent"]) == WINDOWS and "multivariate" in m["subjects"]


def test_lag_is_not_available_without_a_consumer(served):
    lag = served.get("/api/v1/lag").json()
    assert lag["available"] is False and lag["items"] == [] and "driftline ui" in lag["reason"]


def test_windows_page_through_a_time_range(served):
    first = served.get(f"{BASE}/windows", params={"limit": 5}).json()
    assert len(first["items"]) == 5 and first["next"] == first["items"][-1]["id"]
    rest = served.get(f"{BASE}/windows", params={"limit": 1000, "after": first["next"]}).json()
    assert len(rest["items"]) == WINDOWS - 5 and rest["next"] is None
    mid = first["items"][2]
    ranged = served.get(f"{BASE}/windows", params={"from": mid["start"], "to": mid["end"]}).json()["items"]
    assert [w["id"] for w in ranged] == [mid["id"]]


def test_series_crosses_the_threshold_while_drifted_and_is_downsampled(served):
    s = served.get(f"{BASE}/subjects/amount/series").json()
    assert s["windows"] == WINDOWS and s["per_point"] == 1
    over = [p["ratio"] > 1 for p in s["points"]]
    assert over == [False] * 5 + [True] * 3 + [False] * 4
    small = served.get(f"{BASE}/subjects/amount/series", params={"points": 3}).json()
    assert small["per_point"] == 4 and len(small["points"]) == 3
    assert max(p["ratio"] for p in small["points"]) == max(p["ratio"] for p in s["points"])


def test_a_features_trend_test_has_its_own_series(served):
    [m] = served.get("/api/v1/models").json()["items"]
    assert "amount" in m["trends"] and "country" not in m["trends"]  # numeric features only
    s = served.get(f"{BASE}/subjects/amount/series", params={"test": "trend"}).json()
    assert s["test"] == "trend" and s["windows"] == len(s["points"]) > 0
    for point in s["points"]:
        tests = served.get(f"/api/v1/windows/{point['id']}").json()["summary"]["features"]["amount"]["tests"]
        [trend] = [t for t in tests if t["method"] == "trend"]
        assert point["method"] == "trend" and point["statistic"] == pytest.approx(trend["statistic"])
        assert point["threshold"] == pytest.approx(trend["threshold"])
    assert served.get(f"{BASE}/subjects/country/series", params={"test": "trend"}).status_code == 404
    bad = served.get(f"{BASE}/subjects/amount/series", params={"test": "ks"})
    assert bad.status_code == 400 and "trend" in bad.json()["error"]


def test_one_window_with_histograms_and_hostile_values_as_data(served):
    drifted = served.get(f"{BASE}/windows", params={"limit": 1000}).json()["items"][6]
    w = served.get(f"/api/v1/windows/{drifted['id']}").json()
    assert w["summary"]["seq"] == drifted["seq"]
    h = w["histograms"]
    assert abs(sum(h["amount"]["reference"]) - 1) < 1e-9 and abs(sum(h["amount"]["window"]) - 1) < 1e-9
    assert set(HOSTILE) <= set(h["country"]["other_top"])
    assert served.get("/api/v1/windows/999999").status_code == 404
    for huge in (2 ** 63, 10 ** 21):  # past a 64-bit key: no such window, not a 500
        assert served.get(f"/api/v1/windows/{huge}").status_code == 404


def test_alerts_triggers_silences(served):
    alerts = served.get("/api/v1/alerts").json()
    assert [a["status"] for a in alerts["items"]] == ["firing", "resolved"]
    assert alerts["items"][0]["deliveries"][0]["sink"] == "console"
    assert alerts["states"][0]["status"] == "ok"  # the state after a resolve
    [t] = served.get("/api/v1/triggers", params={"model": "fraud"}).json()["items"]
    assert t["event"]["type"] == "dev.driftline.retrain.requested" and t["deliveries"][0]["status"] == "sent"
    assert served.get("/api/v1/silences").json() == {"items": []}


def test_incidents_list_the_drift_with_its_features_deliveries_and_trigger(served):
    page = served.get("/api/v1/incidents").json()
    [inc] = page["items"]
    assert page["next"] is None
    assert (inc["model"], inc["version"], inc["status"], inc["severity"]) == ("fraud", "v3", "resolved", "warning")
    assert inc["opened_at"] < inc["resolved_at"] == inc["updated_at"]
    assert {"amount", "country", HOSTILE_FEATURE} <= set(inc["features"])  # the markup name is data
    assert inc["worst"]["ratio"] == max(f["ratio"] for f in inc["features"].values()) > 1
    assert [a["rule"] for a in inc["alerts"]] == ["feature_drift"] and inc["windows"]["count"] >= 3
    assert [(d["sink"], d["event"], d["status"]) for d in inc["deliveries"]] == [
        ("pagerduty", "opened", "sent"), ("pagerduty", "resolved", "sent")]
    assert all(d["receipt"] == {"status": 202, "dedup_key": inc["id"]} and d["attempts"] == 1
               and d["sent_at"] >= d["created_at"] for d in inc["deliveries"])
    [t] = served.get("/api/v1/triggers").json()["items"]
    assert inc["trigger"]["id"] == t["event"]["id"] and inc["trigger"]["status"] == "sent"
    assert [d["sink"] for d in inc["trigger"]["deliveries"]] == ["console"]
    assert [a["incident"] for a in served.get("/api/v1/alerts").json()["items"]] == [inc["id"]] * 2


def test_incidents_filter_and_page(served):
    def ids(**params):
        return [i["id"] for i in served.get("/api/v1/incidents", params=params).json()["items"]]
    [inc] = served.get("/api/v1/incidents").json()["items"]
    assert ids(model="fraud", status="resolved") == [inc["id"]]
    assert ids(status="firing") == [] and ids(model="nope") == []
    assert ids(**{"from": inc["opened_at"], "to": inc["resolved_at"]}) == [inc["id"]]
    assert ids(**{"from": "2026-11-18T12:00:00Z"}) == []  # resolved before
    assert ids(to=inc["opened_at"]) == []  # opened after
    first = served.get("/api/v1/incidents", params={"limit": 1}).json()
    assert first["next"] == f"{inc['updated_at']},{inc['id']}"
    assert served.get("/api/v1/incidents", params={"limit": 1, "after": first["next"]}).json() == {
        "items": [], "next": None}


def test_one_incident_with_its_timeline(served):
    [inc] = served.get("/api/v1/incidents").json()["items"]
    one = served.get(f"/api/v1/incidents/{inc['id']}").json()
    assert {k: one[k] for k in inc if k != "trigger"} == {k: v for k, v in inc.items() if k != "trigger"}
    event = one["trigger"].pop("event")
    assert event["id"] == inc["trigger"]["id"] and event["data"]["incident"] == inc["id"] and one["trigger"] == inc["trigger"]
    assert [(e["type"], e.get("status") or e["event"]) for e in one["timeline"]] == [
        ("alert", "firing"), ("notification", "opened"), ("alert", "resolved"), ("notification", "resolved")]
    opened = one["timeline"][1]
    assert HOSTILE_FEATURE in opened["new_features"] and opened["time"] == one["timeline"][0]["time"]
    assert [(d["sink"], d["status"], d["receipt"]["dedup_key"]) for d in opened["deliveries"]] == [
        ("pagerduty", "sent", inc["id"])]
    assert all(e["incident"] == inc["id"] and e["inhibited"] is False for e in one["timeline"] if e["type"] == "alert")
    assert served.get("/api/v1/incidents/0123456789abcdef0123").status_code == 404
    assert served.get("/api/v1/incidents/" + "f" * 500).status_code == 404


@pytest.mark.parametrize("path,params,says", [
    (f"{BASE}/windows", {"limit": "0"}, "limit"), (f"{BASE}/windows", {"limit": "10000000"}, "limit"),
    (f"{BASE}/windows", {"limit": "x"}, "limit"), (f"{BASE}/windows", {"from": "yesterday"}, "from"),
    (f"{BASE}/windows", {"from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}, "before"),
    (f"{BASE}/windows", {"to": "99999999999999999999"}, "to"), (f"{BASE}/windows", {"colour": "red"}, "unknown"),
    (f"{BASE}/subjects/amount/series", {"points": "1"}, "points"),
    (f"{BASE}/subjects/amount/series", {"points": "9" * 30}, "points"),
    ("/api/v1/incidents", {"status": "open"}, "status"), ("/api/v1/incidents", {"limit": "0"}, "limit"),
    ("/api/v1/incidents", {"after": "12"}, "after"), ("/api/v1/incidents", {"from": "soon"}, "from"),
    ("/api/v1/incidents", {"from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}, "before"),
    ("/api/v1/incidents", {"severity": "critical"}, "unknown"),
])
def test_bad_parameters_answer_400_saying_what(served, path, params, says):
    r = served.get(path, params=params)
    assert r.status_code == 400 and says in r.json()["error"]


def test_unknown_things_404_and_writes_405(served):
    assert served.get("/api/v1/models/nope/versions/v1/windows").status_code == 404
    assert served.get(f"{BASE}/subjects/nope/series").status_code == 404
    assert served.post("/api/v1/models").status_code == 405


def test_health_metrics_openapi_and_pages(served):
    assert served.get("/healthz").json() == {"status": "alive"}
    assert served.get("/readyz").json()["ready"] is True
    assert "driftline_events_total" in served.get("/metrics").text
    paths = served.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/models", "/api/v1/alerts", "/api/v1/windows/{id}", "/api/v1/incidents",
            "/api/v1/incidents/{id}"} <= set(paths)
    assert "firing or resolved" in str(paths["/api/v1/incidents"])
    page = served.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert served.get("/static/plotly.min.js").text.startswith("/**")


def test_a_firing_incident_makes_its_version_firing(tmp_path):
    # the input ends while it drifts; a critical rule on one feature is inhibited by the model-level one
    cfg = fill(f"sqlite:///{tmp_path / 'd.db'}", tmp_path, stop_at=23_000, feature_rule=True)
    server = build_http(parse_settings(cfg, {}), port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            [m] = c.get("/api/v1/models").json()["items"]
            assert (m["status"], m["firing_incidents"], m["firing"]) == ("firing", 1, ["device_drift", "feature_drift"])
            [inc] = c.get("/api/v1/incidents", params={"status": "firing", "model": "fraud"}).json()["items"]
            assert inc["resolved_at"] is None and inc["title"].startswith("fraud v3: feature_drift: ")
            assert [(a["rule"], a["status"]) for a in inc["alerts"]] == [("feature_drift", "firing"),
                                                                         ("device_drift", "inhibited")]
            assert inc["severity"] == "warning"  # an inhibited critical alert does not raise it
            timeline = c.get(f"/api/v1/incidents/{inc['id']}").json()["timeline"]
            assert [(e["type"], e.get("rule"), e.get("inhibited")) for e in timeline] == [
                ("alert", "feature_drift", False), ("alert", "device_drift", True), ("notification", None, None)]
            assert [(d["event"], d["status"]) for d in inc["deliveries"]] == [("opened", "sent")]
            assert c.get("/api/v1/incidents", params={"status": "resolved"}).json()["items"] == []
            assert c.get("/api/v1/incidents", params={"from": "2030-01-01T00:00:00Z"}).json()["items"] == [inc]
    finally:
        server.stop()


def test_a_token_is_required_when_set(tmp_path):
    cfg = fill(f"sqlite:///{tmp_path / 'd.db'}", tmp_path)
    cfg["http"] = {"auth_token": "s3cret-token-of-16+"}
    server = build_http(parse_settings(cfg, {}), port=0)
    try:
        with httpx.Client(base_url=server.url) as c:
            assert c.get("/api/v1/models").status_code == 401
            assert c.get("/api/v1/models", headers={"Authorization": "Bearer wrong-token-xxxxxxx"}).status_code == 401
            assert c.get("/api/v1/models", headers={"Authorization": "Bearer s3cret-token-of-16+"}).status_code == 200
            assert c.get("/api/v1/models", auth=("any", "s3cret-token-of-16+")).status_code == 200
            assert c.get("/healthz").status_code == 200
    finally:
        server.stop()


def test_a_version_with_a_slash_or_a_percent_in_its_name_is_one_path_segment(tmp_path):
    """Versions come from the events (``2026/11``): sent as ``%2F`` they must not split the route."""
    from urllib.parse import quote

    from driftline.store import SqlStore
    from tests.helpers import config, events, make_pipeline
    url = f"sqlite:///{tmp_path / 's.db'}"
    version = "2026/11 100%"
    settings = parse_settings(config(store={"url": url}), {})
    from driftline.types import Batch, SourcePosition
    values = events(3200, version=version)
    make_pipeline(settings, SqlStore(url, upgrade=True), lambda s: None).process(
        Batch(values, lambda i: SourcePosition("t", 0, i), {("t", 0): len(values)}), force=True)
    server = build_http(settings, port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            v = quote(version, safe="")
            got = client.get(f"/api/v1/models/m/versions/{v}/windows")
            assert got.status_code == 200 and [w["seq"] for w in got.json()["items"]] == [0]
            assert client.get(f"/api/v1/models/m/versions/{v}/subjects/x/series").status_code == 200
            assert client.get(f"/models/m/{v}").status_code == 200
            assert client.get("/static/..%2F..%2Fapi%2Fhttp.py").status_code == 404
    finally:
        server.stop()



def test_a_foreign_host_header_is_refused_on_localhost(served):
    """DNS rebinding: a page on evil.example resolving its name to 127.0.0.1 sends its own Host."""
    assert served.get("/api/v1/models", headers={"Host": "evil.example"}).status_code == 400
    assert served.get("/", headers={"Host": "evil.example:8765"}).status_code == 400
    assert served.get("/api/v1/models", headers={"Host": "localhost"}).status_code == 200


def test_a_model_page_without_a_version_goes_to_its_newest_version(served):
    r = served.get("/models/fraud", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/models/fraud/v3"
    assert served.get("/models/nope").status_code == 404
