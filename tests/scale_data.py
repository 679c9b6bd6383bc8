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
        for t, u in zip(f["tests"], g["tests"], strict=True):
            assert (t["method"], t["level"], t["drifted"]) == (u["method"], u["level"], u["drifted"])
            assert t["statistic"] == pytest.approx(u["statistic"], rel=1e-6, abs=1e-9)
    assert merged["multivariate"]["drifted"] == one["multivariate"]["drifted"]
    assert merged["multivariate"]["statistic"] == pytest.approx(one["multivariate"]["statistic"], rel=1e-6)
