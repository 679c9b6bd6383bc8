"""Prometheus metrics from a real pipeline run, scraped over HTTP."""

import urllib.request

from driftline.alerts.console import RecordingSink
from driftline.app import build_service
from driftline.config import parse_settings
from driftline.metrics import Metrics
from driftline.ports import NoDeadLetters
from driftline.store import SqlStore
from driftline.streams.memory import MemorySource
from tests.helpers import config, events


def test_metrics_count_events_windows_bad_records_and_alerts():
    metrics = Metrics()
    port = metrics.serve(0, "127.0.0.1")
    values = events(2000, seed=1) + events(1000, start=2000) + [b"{oops"] + \
        events(1000, start=3000, shift=1.0, seed=2)
    src = MemorySource(values, 700)
    dead = NoDeadLetters(stream=open("/dev/null", "w"))
    svc = build_service(parse_settings(config(), {}), SqlStore("sqlite://"), src, dead,
                        {"console": RecordingSink()}, lambda w: None, metrics)
    svc.pipeline.checkpoint_every = 0  # checkpoint after every batch
    try:
        while not src.done:
            svc.step()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        metrics.close()
    assert 'driftline_events_total{model="m",version="v1"} 4000.0' in text
    assert 'driftline_bad_records_total{model=""} 1.0' in text
    assert 'driftline_windows_total{model="m",version="v1"} 2.0' in text
    assert 'driftline_alert_firing{model="m",rule="feature_drift",version="v1"} 1.0' in text
    assert 'driftline_drift_statistic{feature="x",method="ks",model="m",version="v1"}' in text
    assert "driftline_commit_seconds_count" in text


def test_lag_of_a_partition_assigned_elsewhere_is_removed():
    from driftline.metrics import Metrics
    m = Metrics()
    m.set_lag({("t", 0): 5, ("t", 1): 7})
    m.set_lag({("t", 1): 2})
    assert m.lag_values() == [{"topic": "t", "partition": 1, "lag": 2}]
