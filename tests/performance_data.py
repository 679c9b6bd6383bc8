"""A store filled by a real pipeline run (``driftline replay``'s path: file source, pipeline,
store) with realized performance: a binary model whose version name is markup, with three
windows labelled 80 %, 50 % and 10 % (the last below ``min_labelled``: not ``enough``), a
regression model with two windows, and a model without labels whose name is markup; and
what each window's metrics should be, from scikit-learn."""

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
from tests.helpers import config, events

START_MS = 1_795_000_000_000
HOSTILE_VERSION = "v1<img src=x onerror=window.__pwned=5>"
HOSTILE_MODEL = "<img src=x onerror=window.__pwned=6>"
SHARES = (0.8, 0.5, 0.1)  # labelled share of the binary model's windows
REG_SHARES = (0.6, 0.4)
MIN_LABELLED = 0.3
REFERENCE, WINDOW = 2000, 1000


def perf_config(store_url: str) -> dict:
    # early_for 0: the orphan labels are counted at once (not held for a prediction that may come)
    cfg = config(model={"labels": {"max_delay": "1h", "min_labelled": MIN_LABELLED, "early_for": 0}},
                 store={"url": store_url},
                 kafka={"batch_size": 500})
    base = cfg["models"][0]
    regression = base | {"name": "r", "labels": {"task": "regression", "max_delay": "1h",
                                                 "min_labelled": MIN_LABELLED, "early_for": 0}}
    plain = {k: v for k, v in base.items() if k != "labels"} | {"name": HOSTILE_MODEL}
    cfg["models"] = [base, regression, plain]
    return cfg


def _labels(model: str, preds: list[bytes], shares, rng, target) -> tuple[list[bytes], dict]:
    """Label events for ``shares`` of each window's predictions; expected ``(preds, labels)`` per seq."""
    docs = [orjson.loads(p) for p in preds]
    out, expected = [], {}
    for w, share in enumerate(shares):
        idx = np.arange(REFERENCE + w * WINDOW, REFERENCE + (w + 1) * WINDOW)
        chosen = np.sort(rng.choice(idx, size=int(share * WINDOW), replace=False))
        score = np.array([docs[i]["prediction"] for i in chosen], dtype=np.float32).astype(np.float64)
        value = target(score, rng)
        out += [orjson.dumps({"model": model, "id": docs[i]["id"], "ts": docs[i]["ts"] + 60_000 + int(k),
                              "label": float(v)}) for k, (i, v) in enumerate(zip(chosen, value))]
        expected[w] = (score, value)
    return out, expected


ORPHANS, DUPLICATES = 25, 15  # of model m: labels for unseen ids, second labels of joined ones


def _odd_labels(m_labels: list[bytes]) -> list[bytes]:
    orphans = [orjson.dumps({"model": "m", "id": f"nobody-{k}", "ts": START_MS + 90_000, "label": 1})
               for k in range(ORPHANS)]
    return orphans + m_labels[:DUPLICATES]


def fill(store_url: str, tmp_path, metrics=None) -> tuple[dict, dict]:
    """Replay it into ``store_url`` (``metrics``: a :class:`~driftline.metrics.Metrics` to fill);
    return the configuration and ``{model: {seq: (preds, labels)}}``."""
    rng = np.random.default_rng(11)
    m = events(REFERENCE + 3 * WINDOW, model="m", version=HOSTILE_VERSION, start_ms=START_MS)
    r = events(REFERENCE + 2 * WINDOW, model="r", version="v1", seed=1, start_ms=START_MS)
    plain = events(REFERENCE + WINDOW, model=HOSTILE_MODEL, version="v1", seed=2, start_ms=START_MS)
    m_labels, m_expected = _labels("m", m, SHARES, rng, lambda s, g: (g.uniform(size=s.size) < s).astype(float))
    r_labels, r_expected = _labels("r", r, REG_SHARES, rng, lambda s, g: s + g.normal(0, 0.1, s.size))
    path = tmp_path / "perf.jsonl"
    path.write_bytes(b"\n".join(m + r + plain + m_labels + r_labels + _odd_labels(m_labels)) + b"\n")
    cfg = perf_config(store_url)
    source = FileSource(str(path), 500)
    service = build_service(parse_settings(cfg, {}), source=source, dead_letters=NoDeadLetters(),
                            metrics=metrics or NullMetrics(), output_format="jsonl", stream=io.StringIO())
    run_to_end(service, source)
    return cfg, {"m": m_expected, "r": r_expected}
