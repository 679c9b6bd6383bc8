"""A store filled by a real pipeline run (``driftline replay``'s path: the file source,
the pipeline, alerting, the outbox, the console sink) over the demo's drifting traffic,
with hostile category values from a producer among the drifted events."""

from __future__ import annotations

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

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=window.__pwned=1>"]
WINDOWS = 12  # 24,000 events in windows of 2,000: 5 before the drift, 3 drifted, 4 after


def hostile_events(n: int, start_ms: int) -> list[bytes]:
    out = []
    for i in range(n):
        e = orjson.loads(fraud_events(1, i, 0, np.random.default_rng(i), start_ms, 10)[0])
        e["features"]["country"] = HOSTILE[i % 2]
        e["id"] = f"hostile-{i}"
        out.append(orjson.dumps(e))
    return out


def fill(store_url: str, tmp_path) -> dict:
    """Replay 24,000 events (the first 10,000 the reference, drifted from 20,000 to 26,000)."""
    rng = np.random.default_rng(7)
    start = 1_795_000_000_000
    events = fraud_events(20_000, 0, 20_000, rng, start, 10) + fraud_events(14_000, 20_000, 20_000, rng, start, 10, 26_000)
    drifted = events[:22_000] + hostile_events(60, start + 220_000) + events[22_060:]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(drifted) + b"\n")
    cfg = dict(DEMO_CONFIG, store={"url": store_url})
    settings = parse_settings(cfg, {})
    source = FileSource(str(path), 5000)
    service = build_service(settings, source=source, dead_letters=NoDeadLetters(), metrics=NullMetrics(),
                            output_format="jsonl", stream=io.StringIO())
    run_to_end(service, source)
    return cfg
