"""Simulated model traffic for the demo and the benchmark.

A card-fraud model: numeric, categorical and boolean features and a
probability prediction. From ``drift_after`` events until ``drift_until`` the
traffic drifts: amounts grow, a new country mix appears, more mobile devices,
and the model's scores move up; then it returns to normal.

Its labels (fraud or not) are drawn from :func:`true_probability`: the score
itself in normal traffic, a relation the score no longer ranks during concept
drift (same inputs), and become known after a delay (:data:`LABEL_DELAY`).
"""

from __future__ import annotations

import numpy as np
import orjson

COUNTRIES = ["US", "GB", "DE", "FR", "CZ", "PL", "ES", "IT", "NL", "BR"]
DEVICES = ["web", "ios", "android", "pos"]
MERCHANTS = ["grocery", "travel", "electronics", "fashion", "fuel", "restaurants", "gaming"]


def fraud_batch(n: int, start_index: int, drift_after: int, rng: np.random.Generator,
                drift_until: int | None = None) -> dict[str, np.ndarray]:
    """The columns of ``n`` events from index ``start_index`` (``index``, each feature,
    ``missing_age``, ``prediction`` rounded as sent); events in ``[drift_after, drift_until)``
    come from the drifted traffic."""
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
    pred = (1 / (1 + np.exp(-logit))).round(4)
    missing_age = rng.random(n) < 0.01
    return {"index": idx, "amount": amount.round(2), "age": age, "missing_age": missing_age,
            "txn_count_24h": txn_24h, "distance_km": distance.round(1), "balance": balance.round(2),
            "hour": hour, "country": country, "device": device, "merchant_category": merchant,
            "is_foreign": foreign, "prediction": pred}


def fraud_events(n: int, start_index: int, drift_after: int, rng: np.random.Generator,
                 start_ms: int, interval_ms: float = 2.0, drift_until: int | None = None) -> list[bytes]:
    """``n`` JSON events; events in ``[drift_after, drift_until)`` come from the drifted traffic."""
    return encode_events(fraud_batch(n, start_index, drift_after, rng, drift_until), start_ms, interval_ms)


def event_ts(index: np.ndarray, start_ms: int, interval_ms: float) -> np.ndarray:
    """The event time (epoch ms) of the events at ``index``."""
    return (start_ms + index * interval_ms).astype(np.int64)


def encode_events(cols: dict[str, np.ndarray], start_ms: int, interval_ms: float) -> list[bytes]:
    """The events of :func:`fraud_batch`'s columns as JSON, ``start_ms + index * interval_ms`` their times."""
    ts = event_ts(cols["index"], start_ms, interval_ms)
    out = []
    for i in range(len(ts)):
        out.append(orjson.dumps({
            "model": "fraud", "version": "v3", "id": f"{cols['index'][i]:08x}", "ts": int(ts[i]),
            "features": {
                "amount": float(cols["amount"][i]),
                "age": None if cols["missing_age"][i] else int(cols["age"][i]),
                "txn_count_24h": int(cols["txn_count_24h"][i]),
                "distance_km": float(cols["distance_km"][i]),
                "balance": float(cols["balance"][i]),
                "hour": int(cols["hour"][i]),
                "country": COUNTRIES[cols["country"][i]],
                "device": DEVICES[cols["device"][i]],
                "merchant_category": MERCHANTS[cols["merchant_category"][i]],
                "is_foreign": bool(cols["is_foreign"][i]),
            },
            "prediction": float(cols["prediction"][i]),
        }))
    return out


#: label delay in seconds of event time: ``floor`` + a lognormal of median ``median - floor``
#: (so median ``median``), ``sigma`` its log-scale spread: p90 20 s, p99 105 s, p99.9 6 min; a
#: ``never`` share is never labelled
LABEL_DELAY = {"floor": 0.5, "median": 3.0, "sigma": 1.6, "never": 0.03}


def true_probability(cols: dict[str, np.ndarray], concept: np.ndarray) -> np.ndarray:
    """P(fraud | features). Normally the model's score (it is calibrated). Under concept
    drift (``concept`` true) the inputs are the same but fraud has moved: a ring working at
    night (hours 0-5) on cards of any amount, on which the old signals (amount, distance,
    abroad) tell little; about as many frauds, ranked barely better than chance by the score."""
    score = cols["prediction"].astype(np.float64)
    old = np.log(np.clip(score, 1e-6, 1 - 1e-6) / np.clip(1 - score, 1e-6, 1))
    night = cols["hour"] < 6
    moved = -2.45 + 1.5 * night + 0.1 * cols["txn_count_24h"] + 0.1 * (old + 1.77)
    return np.where(concept, 1 / (1 + np.exp(-moved)), score)


def fraud_labels(cols: dict[str, np.ndarray], concept: np.ndarray, rng: np.random.Generator,
                 start_ms: int, interval_ms: float, delay: dict = LABEL_DELAY) -> list[tuple[int, bytes]]:
    """The label events of :func:`fraud_batch`'s events: ``(ts, JSON)`` each, ``ts`` the time
    the label became known (the prediction's time + a delay drawn from ``delay``), in event
    order (not ``ts`` order); the ``never`` share of the events gets none. ``concept``: per
    event, whether the relation has moved (:func:`true_probability`)."""
    n = len(cols["index"])
    label = rng.random(n) < true_probability(cols, concept)
    wait = delay["floor"] + rng.lognormal(np.log(delay["median"] - delay["floor"]), delay["sigma"], n)
    known = rng.random(n) >= delay["never"]
    ts = event_ts(cols["index"], start_ms, interval_ms) + (wait * 1000).astype(np.int64)
    return [(int(ts[i]), orjson.dumps({"model": "fraud", "version": "v3", "id": f"{cols['index'][i]:08x}",
                                       "ts": int(ts[i]), "label": int(label[i])}))
            for i in np.flatnonzero(known)]


DEMO_CONFIG = {
    "kafka": {"topics": ["model-events"], "label_topics": ["model-labels"], "group_id": "driftline-demo",
              "batch_size": 5000, "poll_timeout": "200ms"},
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
        # a window (2 s) is half labelled about 5 s after it ends; labels later than 1 min (~2%) are
        # not credited, so each checkpoint revises at most the last ~30 windows
        "labels": {"task": "binary", "max_delay": "1m", "min_labelled": 0.5},
        # realized ROC AUC per window: 0.65-0.72 in normal traffic (0.69 expected), 0.75-0.81 under
        # input drift, 0.50-0.57 under concept drift. A revision of the newest window judged, or of a
        # newer one, is one observation (docs/alerting.md): older windows' late labels are none
        "rules": [{"name": "feature_drift", "share": 0.25, "severity": "warning"},
                  {"name": "auc_drop", "metric": "roc_auc", "below": 0.6, "for_windows": 2, "severity": "warning"}],
        # river's detectors on the error stream leave their findings in the performance lines; they
        # also see the error rate move when the inputs drift and come back, so no rule pages on them here
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
