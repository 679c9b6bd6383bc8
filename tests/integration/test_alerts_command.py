"""`driftline alerts` over a store filled by a real run (the demo's drift, its incident sent to a
PagerDuty stand-in; SQLite and PostgreSQL): incidents first, then the alert events as before."""

import orjson
import yaml

from driftline.cli import main
from tests.dashboard_data import HOSTILE_FEATURE, fill


def test_alerts_lists_the_incident_then_the_alert_events(tmp_path, store_url, capsys):
    cfg = tmp_path / "driftline.yaml"
    cfg.write_text(yaml.safe_dump(fill(store_url, tmp_path)))
    capsys.readouterr()
    assert main(["alerts", "-c", str(cfg)]) == 0
    head, opened, features, deliveries, *events = capsys.readouterr().out.splitlines()
    ident, status, severity, model, version, *title = head.split()
    assert len(ident) == 20 and (status, severity, model, version) == ("resolved", "warning", "fraud", "v3")
    assert " ".join(title) == "fraud v3: resolved"
    assert opened.split()[0::2] == ["opened", "resolved"] and opened.split()[1] < opened.split()[3]
    assert features.startswith("    features: country ") and HOSTILE_FEATURE in features and "+2 more" in features
    assert deliveries == "    deliveries: pagerduty: opened sent, resolved sent"
    assert [e.split()[1] for e in events] == ["firing", "resolved"]  # the alert events, as before
    assert all("fraud v3 feature_drift" in e for e in events)

    assert main(["alerts", "-c", str(cfg), "--json"]) == 0
    inc, *alerts = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (inc["type"], inc["id"], inc["status"]) == ("incident", ident, "resolved")
    assert HOSTILE_FEATURE in inc["features"] and inc["worst"]["feature"] == "country"
    assert [(d["sink"], d["event"], d["status"], d["receipt"]["dedup_key"]) for d in inc["deliveries"]] == [
        ("pagerduty", "opened", "sent", ident), ("pagerduty", "resolved", "sent", ident)]
    assert [(a["type"], a["status"], a["incident"]) for a in alerts] == [("alert", "firing", ident),
                                                                          ("alert", "resolved", ident)]

    assert main(["alerts", "-c", str(cfg), "--resolved", "0", "--limit", "1"]) == 0
    [last] = capsys.readouterr().out.splitlines()
    assert last.split()[1] == "resolved" and "feature_drift" in last
    assert main(["alerts", "-c", str(cfg), "--pending"]) == 0  # unchanged
    assert capsys.readouterr().out.splitlines() == ["0 pending, 0 given up"]
