"""A store filled by a real pipeline run (``driftline replay``'s path: the file source,
the pipeline, alerting, the outbox, the console sink and PagerDuty, a real HTTP stand-in)
over the demo's drifting traffic, with hostile category values from a producer among the
drifted events and a drifting feature whose configured name is markup."""

from __future__ import annotations

import copy
import io

import numpy as np
import orjson

from driftline.app import build_service
from driftline.config import parse_settings
from driftline.metrics import NullMetrics
from driftline.ports import NoDeadLetters
from driftline.runtime import run_to_end
from driftline.streams.files import FileSource
from driftline.streams.simulator import DEMO_CONFIG, fraud_events
from tests.standins import FakePagerDuty

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=window.__pwned=1>"]
#: the demo's ``device`` feature (it drifts), named as a careless or hostile config might
HOSTILE_FEATURE = "<img src=x onerror=window.__pwned=2>"
WINDOWS = 12  # 24,000 events in windows of 2,000: 5 before the drift, 3 drifted, 4 after
ROUTING_KEY = "R" * 32


def hostile_events(n: int, start_ms: int) -> list[bytes]:
    out = []
    for i in range(n):
        e = orjson.loads(fraud_events(1, i, 0, np.random.default_rng(i), start_ms, 10)[0])
        e["features"]["country"] = HOSTILE[i % 2]
        e["id"] = f"hostile-{i}"
        out.append(orjson.dumps(e))
    return out


def _rename_device(events: list[bytes]) -> list[bytes]:
    out = []
    for raw in events:
        e = orjson.loads(raw)
        e["features"][HOSTILE_FEATURE] = e["features"].pop("device")
        out.append(orjson.dumps(e))
    return out


def demo_config(store_url: str, pagerduty_url: str, feature_rule: bool = False) -> dict:
    """The demo's configuration; ``feature_rule``: also a critical rule on the markup-named feature,
    inhibited while the model-level ``feature_drift`` fires."""
    cfg = copy.deepcopy(DEMO_CONFIG)
    if feature_rule:
        cfg["models"][0]["rules"] = cfg["models"][0]["rules"] + [
            {"name": "device_drift", "feature": HOSTILE_FEATURE, "severity": "critical", "retrain": False}]
    features = cfg["models"][0]["features"]
    features[HOSTILE_FEATURE] = features.pop("device")
    cfg["store"] = {"url": store_url}
    cfg["alerts"] = dict(cfg["alerts"], group_wait=0, group_interval=0,
                         pagerduty={"routing_key": ROUTING_KEY, "url": pagerduty_url})
    return cfg


def fill(store_url: str, tmp_path, stop_at: int | None = None, feature_rule: bool = False) -> dict:
    """Replay 24,000 events (the first 10,000 the reference, drifted from 20,000 to 26,000);
    the incident's notifications go to the console (its alerts) and to PagerDuty. With
    ``stop_at`` (e.g. 23,000) the input ends while it drifts: the incident is still firing;
    ``feature_rule``: see :func:`demo_config`."""
    rng = np.random.default_rng(7)
    start = 1_795_000_000_000
    events = fraud_events(20_000, 0, 20_000, rng, start, 10) + fraud_events(14_000, 20_000, 20_000, rng, start, 10, 26_000)
    drifted = _rename_device(events[:22_000] + hostile_events(60, start + 220_000) + events[22_060:])
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(drifted[:stop_at]) + b"\n")
    with FakePagerDuty() as pagerduty:
        cfg = demo_config(store_url, pagerduty.url, feature_rule)
        settings = parse_settings(cfg, {})
        source = FileSource(str(path), 5000)
        service = build_service(settings, source=source, dead_letters=NoDeadLetters(), metrics=NullMetrics(),
                                output_format="jsonl", stream=io.StringIO())
        run_to_end(service, source)
    return cfg
