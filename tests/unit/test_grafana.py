"""The Grafana dashboard and the compose stack: every query names only metrics driftline
exports (read from a real ``Metrics()`` registry), and every file the compose file mounts exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from driftline.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "driftline-dashboard.json"
#: the sample names prometheus_client exposes for each family type
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
            "histogram": ("_bucket", "_sum", "_count", "_created"), "summary": ("_sum", "_count", "_created")}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset"}


def exported() -> set[str]:
    return {f.name + suffix for f in Metrics().registry.collect() for suffix in SUFFIXES[f.type]}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (label matchers, grouping labels,
    ranges, strings and function names taken out first)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if m.group() in PROMQL_WORDS or rest.startswith("(") or m.group().lower() in {"inf", "nan"}:
            continue
        names.add(m.group())
    return names


def queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if q:
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", q))
    return exprs


def test_the_parser_finds_the_metrics_in_an_expression():
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(driftline_batch_seconds_bucket{a="b"}[5m])))') \
        == {"driftline_batch_seconds_bucket"}
    assert metric_names('driftline_drift_statistic{model=~"$model"} / on (feature) driftline_drift_threshold') \
        == {"driftline_drift_statistic", "driftline_drift_threshold"}


def test_every_dashboard_query_names_only_metrics_driftline_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported()
    assert {"driftline_consumer_lag", "driftline_drift_threshold", "driftline_events_total"} <= names
    exprs = queries(dashboard)
    assert len(exprs) >= len(dashboard["panels"])
    for expr in exprs:
        used = metric_names(expr)
        assert used, f"no metric in {expr!r}"
        assert used <= names, f"{expr!r} names {sorted(used - names)}, which driftline does not export"


def test_the_dashboard_covers_what_issue_12_asks_for():
    used = set().union(*map(metric_names, queries(json.loads(DASHBOARD.read_text()))))
    assert {"driftline_drift_statistic", "driftline_drift_threshold", "driftline_drifted_features",
            "driftline_alert_firing", "driftline_events_total", "driftline_consumer_lag",
            "driftline_batch_seconds_bucket", "driftline_commit_seconds_bucket"} <= used


def test_panels_use_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    ds = yaml.safe_load((ROOT / "examples/grafana/provisioning/datasources/prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {source["uid"]}
    assert source["url"] == "http://prometheus:9090"


def test_compose_runs_prometheus_and_grafana_on_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "driftline", "prometheus", "grafana"} <= set(services)
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), f"{name} mounts {host}, which does not exist"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert mounts["/var/lib/grafana/dashboards/driftline-dashboard.json"] == "./examples/grafana/driftline-dashboard.json"
    provider = yaml.safe_load((ROOT / "examples/grafana/provisioning/dashboards/driftline.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    prom_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    scrape = yaml.safe_load((ROOT / prom_mounts["/etc/prometheus/prometheus.yml"]).read_text())
    [target] = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    driftline_config = yaml.safe_load((ROOT / "examples/driftline.yaml").read_text())
    assert target == f"driftline:{driftline_config['metrics']['port']}"
    assert f"{driftline_config['metrics']['port']}:" in services["driftline"]["ports"][0]
