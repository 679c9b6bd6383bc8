"""Simulated model traffic for the demo and the benchmark.

A card-fraud model: numeric, categorical and boolean features and a
probability prediction. From ``drift_after`` events until ``drift_until`` the
traffic drifts: amounts grow, a new country mix appears, more mobile devices,
and the model's scores move up; then it returns to normal.
"""

from __future__ import annotations

import numpy as np
import orjson

COUNTRIES = ["US", "GB", "DE", "FR", "CZ", "PL", "ES", "IT", "NL", "BR"]
DEVICES = ["web", "ios", "android", "pos"]
MERCHANTS = ["grocery", "travel", "electronics", "fashion", "fuel", "restaurants", "gaming"]


def fraud_events(n: int, start_index: int, drift_after: int, rng: np.random.Generator,
                 start_ms: int, interval_ms: float = 2.0, drift_until: int | None = None) -> list[bytes]:
    """``n`` JSON events; events in ``[drift_after, drift_until)`` come from the drifted traffic."""
    idx = start_index + np.arange(n)
    drifted = (idx >= drift_after) & (idx < (drift_until if drift_until is not None else np.inf))
    amount = rng.lognormal(3.5, 0.8, n) * np.where(drifted, 1.8, 1.0)
    age = np.clip(rng.normal(41, 12, n), 18, 95).round()
    txn_24h = rng.poisson(np.where(drifted, 4.5, 3.0))
    distance = rng.exponential(np.where(drifted, 30.0, 12.0))
    balance = rng.normal(2500, 900, n)
    hour = rng.integers(0, 24, n)
    p_country = np.array([.3, .15, .12, .1, .08, .07, .06, .05, .04, .03])
    p_country_d = np.array([.12, .1, .08, .07, .08, .07, .06, .05, .04, .33])
    country = np.where(drifted, rng.choice(10, n, p=p_country_d), rng.choice(10, n, p=p_country))
    device = np.where(drifted, rng.choice(4, n, p=[.2, .3, .4, .1]), rng.choice(4, n, p=[.4, .25, .25, .1]))
    merchant = rng.choice(7, n, p=[.3, .1, .15, .15, .1, .15, .05])
    foreign = rng.random(n) < np.where(drifted, 0.35, 0.1)
    logit = -3 + 0.01 * amount + 0.03 * distance + 1.2 * foreign + 0.1 * txn_24h
    pred = 1 / (1 + np.exp(-logit))
    missing_age = rng.random(n) < 0.01
    out = []
    for i in range(n):
        ts = int(start_ms + (start_index + i) * interval_ms)
        out.append(orjson.dumps({
            "model": "fraud", "version": "v3", "id": f"{idx[i]:08x}", "ts": ts,
            "features": {
                "amount": round(float(amount[i]), 2),
                "age": None if missing_age[i] else int(age[i]),
                "txn_count_24h": int(txn_24h[i]),
                "distance_km": round(float(distance[i]), 1),
                "balance": round(float(balance[i]), 2),
                "hour": int(hour[i]),
                "country": COUNTRIES[country[i]],
                "device": DEVICES[device[i]],
                "merchant_category": MERCHANTS[merchant[i]],
                "is_foreign": bool(foreign[i]),
            },
            "prediction": round(float(pred[i]), 4),
        }))
    return out


DEMO_CONFIG = {
    "kafka": {"topics": ["model-events"], "group_id": "driftline-demo", "batch_size": 5000,
              "poll_timeout": "200ms"},
    "alerts": {"console": True},
    "models": [{
        "name": "fraud",
        "features": {"amount": "numeric", "age": "numeric", "txn_count_24h": "numeric",
                     "distance_km": "numeric", "balance": "numeric", "hour": "numeric",
                     "country": "categorical", "device": "categorical",
                     "merchant_category": "categorical", "is_foreign": "boolean"},
        "prediction": "numeric",
        "window": {"size": 2000, "min_count": 500},
        "reference": {"first_n": 10000},
        "rules": [{"name": "feature_drift", "share": 0.25, "severity": "warning"}],
        "retrain": {"cooldown": "1h"},
    }],
}


def bench_events(n: int, rng: np.random.Generator, n_numeric: int = 20, n_categorical: int = 5,
                 start_ms: int = 1_795_000_000_000) -> list[bytes]:
    """The benchmark workload: 20 numeric + 5 categorical features and a prediction."""
    num = rng.normal(size=(n, n_numeric)).round(7)
    cats = rng.integers(0, 12, size=(n, n_categorical))
    pred = rng.random(n).round(4)
    names = [f"feat_{j:02d}" for j in range(n_numeric)]
    cnames = [f"cat_{j:02d}" for j in range(n_categorical)]
    labels = [f"value_{k}" for k in range(12)]
    out = []
    for i in range(n):
        feats = dict(zip(names, num[i].tolist()))
        feats.update({c: labels[v] for c, v in zip(cnames, cats[i].tolist())})
        ts = np.datetime64(start_ms + i, "ms").astype(str) + "Z"
        out.append(orjson.dumps({"model": "bench", "version": "v1", "id": f"{i:016x}",
                                 "ts": ts, "features": feats, "prediction": pred[i]},
                                option=orjson.OPT_SERIALIZE_NUMPY))
    return out
