"""A stream of predictions and their labels out of order, with duplicates, orphans and late ones,
and what should come of it (shared by the replay and kill-restart tests)."""

from __future__ import annotations

import numpy as np
import orjson

from tests.helpers import config, events

START_MS = 1_795_000_000_000
REFERENCE, WINDOW, N = 2000, 1000, 5000  # count windows: events 2000.. are windowed, 3 windows
HOUR = 3_600_000


def label_config(**kafka) -> dict:
    # early_for 0: the labels sent before their predictions stay orphans (tests/unit/test_early_labels.py
    # has them held and joined)
    return config(model={"labels": {"max_delay": "1h", "min_labelled": 0.3, "early_for": 0}},
                  kafka={"batch_size": 500} | kafka)


def _label(i, value, ts) -> bytes:
    return orjson.dumps({"model": "m", "id": str(i), "ts": int(ts), "label": int(value)})


def stream(seed: int = 3) -> tuple[list[bytes], list[bytes], dict]:
    """``(predictions, labels, expected)``: ``expected[window seq] = (scores, labels, delays_s)``."""
    rng = np.random.default_rng(seed)
    preds = events(N, start_ms=START_MS)
    score = np.array([orjson.loads(p)["prediction"] for p in preds], dtype=np.float32).astype(np.float64)
    ts = START_MS + np.arange(N) * 10
    last = int(ts[-1])
    labelled = np.sort(rng.choice(np.arange(REFERENCE, N), size=int(0.6 * (N - REFERENCE)), replace=False))
    value = (rng.uniform(size=N) < score).astype(int)
    delay = rng.integers(1_000, 600_000, size=N)  # 1 s .. 10 min
    early = [_label(i, 1 - value[i], ts[i] - 5) for i in range(4900, 4950)]  # before their prediction: orphans
    order = rng.permutation(labelled)
    normal = [_label(i, int(value[i]), ts[i] + delay[i]) for i in order]
    half = len(order) // 2
    dups = [_label(i, 1 - int(value[i]), ts[i] + delay[i] + 1)  # a second label, after the first
            for i in np.concatenate([order[:half:10], order[half::10]])]
    orphans = [_label(f"x{k}", 1, last + 2 * HOUR) for k in range(600)]  # and the clock jumps by 2 h
    unlabelled = np.setdiff1d(np.arange(REFERENCE, N), labelled)
    late = [_label(i, int(value[i]), last + 2 * HOUR) for i in unlabelled[:200]]  # their predictions expired
    ref_phase = [_label(i, 1, ts[i] + 1000) for i in range(0, 100)]  # the reference's events wait for nothing
    k = len(order[:half:10])
    mixed = normal[:half] + dups[:k] + normal[half:] + dups[k:]
    labels = ref_phase + mixed + orphans + late
    expected = {}
    for w in range(3):
        idx = labelled[(labelled >= REFERENCE + w * WINDOW) & (labelled < REFERENCE + (w + 1) * WINDOW)]
        expected[w] = (score[idx], value[idx], delay[idx] / 1000)
    return early + preds, labels, expected


def check_against_sklearn(revisions: dict[int, dict], expected: dict) -> None:
    from sklearn import metrics as skm
    assert sorted(revisions) == sorted(expected)
    for w, (s, y, d) in expected.items():
        r = revisions[w]
        m = r["metrics"]
        assert (r["count"], r["labelled"]) == (WINDOW, y.size)
        assert r["labelled_share"] == y.size / WINDOW and r["enough"]
        pred = (s >= 0.5).astype(int)
        assert abs(m["accuracy"] - skm.accuracy_score(y, pred)) < 1e-12
        assert abs(m["precision"] - skm.precision_score(y, pred)) < 1e-12
        assert abs(m["recall"] - skm.recall_score(y, pred)) < 1e-12
        assert abs(m["f1"] - skm.f1_score(y, pred)) < 1e-12
        assert abs(m["roc_auc"] - skm.roc_auc_score(y, s)) <= m["roc_auc_max_error"] + 1e-12
        assert abs(m["log_loss"] - skm.log_loss(y, s)) < 1e-9
        assert abs(m["brier"] - skm.brier_score_loss(y, s)) < 1e-12
        assert r["delay"]["max"] == d.max()
        assert abs(r["delay"]["p50"] / np.quantile(d, 0.5, method="inverted_cdf") - 1) < 0.13
