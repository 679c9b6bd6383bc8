"""Calibrate concept-drift detection on the error stream (docs/performance.md, "Concept drift on
the error stream"): ``python benchmarks/concept.py [--quick]``.

Every run feeds :class:`driftline.detectors.performance.concept.ConceptDrift` (ADWIN on the
per-label loss, HDDM_A on the error indicator) label by label, at several parameter levels:

- **Stationary** streams, where any detection is false: a calibrated binary model (scores
  ``s = P(y=1 | x)`` of a binormal model with ROC AUC 0.85, labels Bernoulli(s)) at base rates
  0.05, 0.2 and 0.5, in streams of 10,000 and of 200,000 labels; a regression model with
  stationary Gaussian noise. Reported: detections per 100,000 labels, all and ``worse`` only.
- **Changes** after 20,000 stationary labels, the scores (the inputs) unchanged and the
  relation to the label changed: a share of the labels flipped so that accuracy falls by 5
  and by 10 points; labels Bernoulli(π + λ(s − π)) with λ chosen so the ROC AUC falls from
  0.85 to 0.70; regression noise 1.25× and 1.5× wider. Reported per detector: the share of
  streams with a ``worse`` detection within 30,000 labels after the change, and the median
  delay (labels after the change) of the first one. Also accuracy −10 points after 500,000
  stationary labels (5 streams), as the delay of HDDM_A grows with the quiet stream before.

Seeds are fixed: the same run prints the same figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm, rankdata

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from driftline.detectors.performance.concept import ConceptDrift  # noqa: E402

LEVELS = {  # name → ConceptDrift parameters
    "river defaults": {"delta": 0.002, "grace_period": 10, "drift_confidence": 0.001},
    "delta 1e-4, grace 1000, conf 1e-4": {"delta": 1e-4, "grace_period": 1000, "drift_confidence": 1e-4},
    "delta 1e-5, grace 1000, conf 1e-6": {"delta": 1e-5, "grace_period": 1000, "drift_confidence": 1e-6},
    "delta 1e-6, grace 1000, conf 1e-8": {"delta": 1e-6, "grace_period": 1000, "drift_confidence": 1e-8},
}
AUC = 0.85
MU = np.sqrt(2) * norm.ppf(AUC)  # binormal separation for that AUC
BEFORE, AFTER = 20_000, 30_000
DETECTORS = ("adwin", "hddm_a")


def binary(rng, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores and Bernoulli(score) labels of a binormal model at a base rate."""
    y = rng.uniform(size=n) < rate
    x = rng.normal(size=n) + MU * y
    s = expit(logit(rate) + MU * x - MU**2 / 2)
    return s, (rng.uniform(size=n) < s).astype(np.float64)


def auc(s: np.ndarray, y: np.ndarray) -> float:
    r, pos = rankdata(s), y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def accuracy(s: np.ndarray, y: np.ndarray) -> float:
    return float(((s >= 0.5) == (y == 1)).mean())


def shrink_for_auc(rng, rate: float, target: float) -> float:
    """λ such that labels Bernoulli(π + λ(s − π)) give the target AUC (bisection on 400,000 draws)."""
    s, _ = binary(rng, 400_000, rate)
    u = rng.uniform(size=s.size)
    lo, hi = 0.0, 1.0
    for _ in range(30):
        lam = (lo + hi) / 2
        got = auc(s, (u < rate + lam * (s - rate)).astype(float))
        lo, hi = (lam, hi) if got < target else (lo, lam)
    return (lo + hi) / 2


def run(params: dict, task: str, preds: np.ndarray, labels: np.ndarray) -> list[dict]:
    c = ConceptDrift(task, **params)
    c.update(preds, labels, np.zeros(preds.size, dtype=np.int64), np.arange(preds.size))
    return c.drain()


def at(found: list[dict]) -> list[int]:
    """Each detection's label index (``label_ts`` is the index here)."""
    return [d["label_ts"] for d in found]


def stationary(params: dict, rng, quick: bool) -> dict:
    out = {}
    streams = [(10_000, 4 if quick else 20), (200_000, 1 if quick else 5)]
    for rate in (0.05, 0.2, 0.5):
        counts, n = {d: [0, 0] for d in DETECTORS}, 0
        for length, k in streams:
            for _ in range(k):
                found = run(params, "binary", *binary(rng, length, rate))
                n += length
                for d in found:
                    counts[d["detector"]][0] += 1
                    counts[d["detector"]][1] += d["direction"] == "worse"
        out[f"binary, base rate {rate}"] = {d: [1e5 * c / n for c in v] for d, v in counts.items()} | {"labels": n}
    counts, n = {d: [0, 0] for d in DETECTORS}, 0
    for length, k in streams:
        for _ in range(k):
            target = rng.normal(size=length) * 10 + 100
            found = run(params, "regression", target + rng.normal(size=length) * 3, target)
            n += length
            for d in found:
                counts[d["detector"]][0] += 1
                counts[d["detector"]][1] += d["direction"] == "worse"
    out["regression, Gaussian noise"] = {d: [1e5 * c / n for c in v] for d, v in counts.items()} | {"labels": n}
    return out


def changes(rng, rate: float) -> dict:
    """Scenario name → a function (rng) → (preds, labels) with the change at label BEFORE."""
    s0, y0 = binary(rng, 400_000, rate)
    a = accuracy(s0, y0)
    lam = shrink_for_auc(rng, rate, 0.70)

    def flips(drop):
        r = drop / (2 * a - 1)

        def make(g):
            s, y = binary(g, BEFORE + AFTER, rate)
            flip = (g.uniform(size=s.size) < r) & (np.arange(s.size) >= BEFORE)
            return s, np.where(flip, 1 - y, y)
        return make

    def weaker(g):
        s, y = binary(g, BEFORE + AFTER, rate)
        q = rate + lam * (s - rate)
        y[BEFORE:] = (g.uniform(size=AFTER) < q[BEFORE:]).astype(float)
        return s, y

    def noise(k):
        def make(g):
            target = g.normal(size=BEFORE + AFTER) * 10 + 100
            sd = np.where(np.arange(target.size) >= BEFORE, 3 * k, 3.0)
            return target + g.normal(size=target.size) * sd, target
        return make

    return {f"accuracy −5 points (from {a:.3f})": ("binary", flips(0.05)),
            f"accuracy −10 points (from {a:.3f})": ("binary", flips(0.10)),
            f"AUC 0.85 → 0.70 (λ = {lam:.3f})": ("binary", weaker),
            "regression noise ×1.25": ("regression", noise(1.25)),
            "regression noise ×1.5": ("regression", noise(1.5))}


def delays(params: dict, rng, rate: float, seeds: int) -> dict:
    out = {}
    for name, (task, make) in changes(np.random.default_rng(99), rate).items():
        got = {d: [] for d in DETECTORS}
        for _ in range(seeds):
            found = run(params, task, *make(rng))
            for d in DETECTORS:
                hits = [i - BEFORE for i, f in zip(at(found), found)
                        if f["detector"] == d and f["direction"] == "worse" and i >= BEFORE]
                got[d].append(hits[0] if hits else None)
        out[name] = {d: {"detected": sum(h is not None for h in v) / seeds,
                         "median_delay": float(np.median([h for h in v if h is not None]))
                         if any(h is not None for h in v) else None} for d, v in got.items()}
    return out


def long_stream(params: dict, rng, rate: float, seeds: int, before: int = 500_000) -> dict:
    """Accuracy −10 points after ``before`` stationary labels: HDDM_A compares running means
    since its last detection, so its delay grows with the quiet stream before the change."""
    s0, y0 = binary(np.random.default_rng(99), 400_000, rate)
    r = 0.10 / (2 * accuracy(s0, y0) - 1)
    got = {d: [] for d in DETECTORS}
    for _ in range(seeds):
        s, y = binary(rng, before + AFTER, rate)
        flip = (rng.uniform(size=s.size) < r) & (np.arange(s.size) >= before)
        found = run(params, "binary", s, np.where(flip, 1 - y, y))
        for d in DETECTORS:
            hits = [f["label_ts"] - before for f in found
                    if f["detector"] == d and f["direction"] == "worse" and f["label_ts"] >= before]
            got[d].append(hits[0] if hits else None)
    return {d: {"detected": sum(h is not None for h in v) / seeds,
                "median_delay": float(np.median([h for h in v if h is not None]))
                if any(h is not None for h in v) else None} for d, v in got.items()}


def ddm(quick: bool) -> dict:
    """river's DDM on the same binary error indicators, for the choice of HDDM_A (``--ddm``)."""
    from river.drift.binary import DDM

    out = {}
    for name, params in {"defaults (warm_start 30, drift 3)": {},
                         "warm_start 1000, drift 5": {"warm_start": 1000, "drift_threshold": 5.0}}.items():
        rng, false, n = np.random.default_rng(2026), 0, 0
        for rate in (0.05, 0.2, 0.5):
            for length, k in [(10_000, 4 if quick else 20), (200_000, 1 if quick else 5)]:
                for _ in range(k):
                    s, y = binary(rng, length, rate)
                    false += _ddm_hits(DDM(**params), (s >= 0.5) != (y == 1)).__len__()
                    n += length
        scen = changes(np.random.default_rng(99), 0.3)
        got = {}
        for label in [k for k in scen if k.startswith("accuracy")]:
            hits = []
            for _ in range(4 if quick else 20):
                s, y = scen[label][1](rng)
                h = [i - BEFORE for i in _ddm_hits(DDM(**params), (s >= 0.5) != (y == 1)) if i >= BEFORE]
                hits.append(h[0] if h else None)
            found = [h for h in hits if h is not None]
            got[label] = {"detected": len(found) / len(hits), "median_delay": float(np.median(found)) if found else None}
        out[name] = {"false_per_100k": 1e5 * false / n, "labels": n, "changes": got}
    return out


def _ddm_hits(det, errors: np.ndarray) -> list[int]:
    hits = []
    for i, x in enumerate(errors.astype(int).tolist()):
        det.update(x)
        if det.drift_detected:
            hits.append(i)
    return hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer streams (a smoke run)")
    ap.add_argument("--seeds", type=int, default=20, help="streams per change scenario")
    ap.add_argument("--rate", type=float, default=0.3, help="base rate of the change scenarios")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--ddm", action="store_true", help="only river's DDM on the binary streams, for comparison")
    args = ap.parse_args()
    import river

    print(f"# {datetime.date.today()} {platform.machine()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, river {river.__version__}")
    if args.ddm:
        for name, r in ddm(args.quick).items():
            print(f"\nDDM {name}: {r['false_per_100k']:.1f} false per 100k stationary labels ({r['labels']:,})")
            for k, v in r["changes"].items():
                print(f"  {k}: detected {v['detected']:.0%}, median delay {v['median_delay']}")
        return
    report = {}
    for name, params in LEVELS.items():
        t0 = time.perf_counter()
        rng = np.random.default_rng(2026)
        report[name] = {"stationary": stationary(params, rng, args.quick),
                        "changes": delays(params, rng, args.rate, 4 if args.quick else args.seeds)}
        long = long_stream(params, rng, args.rate, 2 if args.quick else 5)
        report[name]["changes"]["accuracy −10 points after 500,000 labels"] = long
        report[name]["seconds"] = time.perf_counter() - t0
        print_level(name, report[name])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def print_level(name: str, r: dict) -> None:
    print(f"\n## {name}  ({r['seconds']:.0f} s)\n")
    print("| stationary stream | labels | ADWIN (loss) per 100k: all / worse | HDDM_A (error) per 100k: all / worse |")
    print("| --- | --- | --- | --- |")
    for k, v in r["stationary"].items():
        print(f"| {k} | {v['labels']:,} | {v['adwin'][0]:.1f} / {v['adwin'][1]:.1f} "
              f"| {v['hddm_a'][0]:.1f} / {v['hddm_a'][1]:.1f} |")
    print("\n| change | ADWIN detected, median delay | HDDM_A detected, median delay |")
    print("| --- | --- | --- |")
    for k, v in r["changes"].items():
        cells = [f"{v[d]['detected']:.0%}, {v[d]['median_delay']:,.0f}" if v[d]["median_delay"] is not None
                 else f"{v[d]['detected']:.0%}, —" for d in DETECTORS]
        print(f"| {k} | {cells[0]} | {cells[1]} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
