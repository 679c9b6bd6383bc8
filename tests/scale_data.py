"""Comparing scale-out windows with a single process's (unit and integration tests)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

RANK_ERROR = 0.027


def raw_values(values: list[bytes], start: str, duration_ms: int = 5000, model: str = "m") -> dict[str, np.ndarray]:
    """The numeric values of the events of the window that starts at ``start`` (ISO)."""
    from driftline.types import to_ms
    lo = to_ms(start.replace("Z", "+00:00"))
    docs = [d for d in map(orjson.loads, values) if lo <= d["ts"] < lo + duration_ms and d["model"] == model]
    return {"x": np.array([d["features"]["x"] for d in docs]), "y": np.array([d["features"]["y"] for d in docs]),
            "prediction": np.array([d["prediction"] for d in docs])}


def same_window(merged: dict, one: dict, raw: dict) -> None:
    """Counts equal, statistics equal (quantiles within the sketch's error), test results equal."""
    assert (merged["count"], merged["invalid"], merged["late"]) == (one["count"], one["invalid"], one["late"])
    assert merged["drifted"] == one["drifted"] and merged["tests_run"] == one["tests_run"]
    for name, f in [*merged["features"].items(), ("prediction", merged["prediction"])]:
        g = one["features"].get(name) or one["prediction"]
        assert f["count"] == g["count"] and f["missing"] == g["missing"]
        if f["kind"] == "numeric":
            assert f["mean"] == pytest.approx(g["mean"], rel=1e-9, abs=1e-12)
            assert f["std"] == pytest.approx(g["std"], rel=1e-9)
            assert (f["min"], f["max"]) == (g["min"], g["max"])
            exact = raw[name]
            for q, v in f["quantiles"].items():  # KLL k=200: ~1.3% rank error (both sides: 2.7%)
                lo, hi = np.quantile(exact, [max(float(q) - RANK_ERROR, 0), min(float(q) + RANK_ERROR, 1)])
                assert lo <= v <= hi, (name, q)
        for t, u in zip(f.get("tests", []), g.get("tests", []), strict=True):  # none: tests skipped
            assert (t["method"], t["level"], t["drifted"]) == (u["method"], u["level"], u["drifted"])
            assert t["statistic"] == pytest.approx(u["statistic"], rel=1e-6, abs=1e-9)
    assert ("multivariate" in merged) == ("multivariate" in one) == merged["tests_run"]
    if merged["tests_run"]:
        assert merged["multivariate"]["drifted"] == one["multivariate"]["drifted"]
        assert merged["multivariate"]["statistic"] == pytest.approx(one["multivariate"]["statistic"], rel=1e-6)


def labelled_traffic(n: int = 6000, noisy_from: int = 4500, seed: int = 11, delay_ms: int = 3000,
                     share: float = 0.8, v2_from: int | None = None) -> list[bytes]:
    """Events of model ``m`` (``tests.helpers.events``, ids ``"0"``…, 10 ms apart; version ``v2``
    from event ``v2_from``) and a label for ``share`` of them ``delay_ms`` after each, in time
    order: the label agrees with the score (flipped one time in ten) until event ``noisy_from``,
    then is a coin toss (ROC AUC ≈ 0.5)."""
    from tests.helpers import events
    evs = events(n, seed=seed)
    rng = np.random.default_rng(seed)
    docs = [orjson.loads(v) for v in evs]
    if v2_from is not None:
        docs = [d | {"version": "v2"} if i >= v2_from else d for i, d in enumerate(docs)]
        evs = [orjson.dumps(d) for d in docs]
    out = [(d["ts"], 0, v) for d, v in zip(docs, evs, strict=True)]
    for i, d in enumerate(docs):
        if rng.random() >= share:
            continue
        y = int(d["prediction"] >= 0.5) ^ int(rng.random() < 0.1) if i < noisy_from else int(rng.random() < 0.5)
        out.append((d["ts"] + delay_ms, 1, orjson.dumps({"model": "m", "id": d["id"], "ts": d["ts"] + delay_ms,
                                                        "label": y})))
    return [v for _, _, v in sorted(out, key=lambda t: (t[0], t[1]))]


def key_of(record: bytes) -> str:
    """The entity id both an event and its label carry (their Kafka key)."""
    return orjson.loads(record)["id"]


def same_performance(merged: list[dict], one: list[dict]) -> None:
    """Every stored performance row equal: counts exactly, metrics to float rounding (sums merged
    in another order); ``revision``, ``age`` and the time it was written depend on when it was revised."""
    assert [(r["version"], r["window_key"]) for r in merged] == [(r["version"], r["window_key"]) for r in one]
    for a, b in zip(merged, one, strict=True):
        for k in ("window_kind", "start", "end", "seq", "count", "labelled", "labelled_share", "segment"):
            assert a[k] == b[k], (a["window_key"], k, a[k], b[k])
        for k in ("metrics", "estimated", "reference", "versions"):
            assert _approx(a[k]) == b[k], (a["window_key"], k)
        for k in ("delay_p50", "delay_p90", "delay_max"):
            assert a[k] == pytest.approx(b[k], rel=1e-9), (a["window_key"], k)


def _approx(x):
    if isinstance(x, dict):
        return {k: _approx(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_approx(v) for v in x]
    if isinstance(x, float):
        return pytest.approx(x, rel=1e-9, abs=1e-12, nan_ok=True)
    return x
