"""`driftline alerts` lists open incidents before resolved ones (newest resolved first, at most
``--resolved``), each with its deliveries per sink, from a store written through its commit."""

import orjson
import yaml

from driftline.alerts.incidents import Incident
from driftline.cli import main
from driftline.store import SqlStore
from driftline.types import CommitUnit, Notification
from tests.helpers import config


def incident(end: str, resolved: str | None = None, subject: str = "x") -> Incident:
    inc = Incident.open({"model": "m", "version": "v1"}, "m", "v1", end)
    inc.add_alert({"fingerprint": f"f-{end}", "rule": "feature_drift", "subject": subject, "severity": "critical",
                   "status": "firing", "value": 1.0, "threshold": 0.5, "since": end}, "model")
    inc.add_evidence({subject: {"method": "psi", "statistic": 0.6, "threshold": 0.2, "drifted": True}}, end)
    if resolved:
        inc.resolve(resolved)
    return inc


def note(inc: Incident, event: str, sink: str) -> Notification:
    payload = {"type": "incident", "event": event, "incident": inc.snapshot()}
    return Notification(f"incident:{inc.id}:{event}:{inc.updated_at}:{sink}", sink, "incident", payload)


def test_open_incidents_first_then_the_newest_resolved(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    old = incident("2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00.000Z")
    newer = incident("2026-01-02T00:00:00.000Z", "2026-01-02T01:00:00.000Z")
    firing = incident("2026-01-03T00:00:00.000Z", subject="<b>colour</b>")
    store = SqlStore(url, upgrade=True)
    store.commit("g", CommitUnit(incidents=[i.to_state() for i in (old, newer, firing)],
                                 notifications=[note(firing, "opened", "pagerduty"), note(firing, "opened", "slack")]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(store={"url": url})))
    assert main(["alerts", "-c", str(cfg), "--resolved", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[::4]] == [[firing.id, "firing"], [newer.id, "resolved"]]
    assert lines[0].split()[2:] == ["critical", "m", "v1", "m", "v1:", "feature_drift:", "<b>colour</b>"]
    assert lines[1].split() == ["opened", "2026-01-03T00:00:00.000Z", "resolved", "-"]
    assert lines[2] == "    features: <b>colour</b> 3×"
    assert lines[3] == "    deliveries: pagerduty: opened pending; slack: opened pending"
    assert lines[7] == "    deliveries: none (no sink takes incidents)"
    assert main(["alerts", "-c", str(cfg), "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["type"], r["id"]) for r in rows] == [("incident", firing.id), ("incident", newer.id),
                                                    ("incident", old.id)]
    assert [d["sink"] for d in rows[0]["deliveries"]] == ["pagerduty", "slack"] and rows[1]["deliveries"] == []
