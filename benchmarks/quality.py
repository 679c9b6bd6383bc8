"""`make bench-quality`: how well drift detectors page, on seeded streams with known change points.

For each scenario of :mod:`scenarios` (window 1,000 events, reference 10,000,
25 features) three detectors see the same events:

- **driftline** with its defaults: ``false_alarms: 1 per 1000 windows``, mean/variance
  and KS tests for numeric features, chi-square for categorical ones, data-quality
  checks and the multivariate PCA test, thresholds calibrated from the reference;
  an alarm is a window with any finding.
- **Evidently** 0.7's default column drift tests (its own ``get_stattest`` choice:
  normed Wasserstein > 0.1 for numeric, Jensen–Shannon > 0.1 for categorical at this
  reference size), per window; an alarm is any drifted column, and separately
  Evidently's dataset drift (at least half the columns drifted).
- **driftline + domain classifier**: the same, with the opt-in domain-classifier test
  (river logistic regression, AUC) added to the budget.
- **River ADWIN**, default parameters, one per feature fed event by event (numeric
  values; for categorical features the indicator of the commonest category), warmed
  up on the reference; an alarm is a window in which any ADWIN detects a change.

Reported: false alarms per 1,000 unchanged windows, and the detection delay in
windows (1 = caught in the first changed window), median over seeds; and the time
driftline takes to test one window of 10,000 events against a reference of 50,000.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import scenarios as sc  # noqa: E402

from driftline.config import parse_settings  # noqa: E402
from driftline.monitor import ModelMonitor, reference_for  # noqa: E402
from driftline.types import CategoricalColumn, Columns, NumericColumn  # noqa: E402


def spec(window: int, classifier: bool = False):
    feats = {f"num_{j:02d}": "numeric" for j in range(sc.N_NUMERIC)}
    feats |= {f"cat_{j}": "categorical" for j in range(sc.N_CATEGORICAL)}
    cfg = {"models": [{"name": "q", "features": feats, "window": {"size": window, "min_count": 100},
                       "reference": {"first_n": 100}, "domain_classifier": {"enabled": classifier}}]}
    return parse_settings(cfg, {}).models[0]


def columns(raw: dict) -> Columns:
    n = len(next(iter(raw.values())))
    feats = {}
    for k, v in raw.items():
        if v.dtype == object:
            feats[k] = CategoricalColumn(v)
        else:
            feats[k] = NumericColumn(v, np.isfinite(v), np.zeros(n, dtype=bool))
    return Columns(np.arange(n, dtype=np.int64), feats)


def run_driftline(ref: dict, windows: list[dict], classifier: bool = False) -> list[bool]:
    s = spec(len(next(iter(windows[0].values()))), classifier)
    mon = ModelMonitor(s, reference_for(s, ref, "scenario"))
    alarms = []
    for w in windows:
        (closed,), _ = mon.ingest("v1", columns(w))
        summary = mon.summarise(closed)
        alarms.append(bool(summary["drifted"]) or bool(summary.get("quality")))
    return alarms


def run_evidently(ref: dict, windows: list[dict]) -> tuple[list[bool], list[bool]]:
    import pandas as pd
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kinds = {k: ColumnType.Categorical if v.dtype == object else ColumnType.Numerical for k, v in ref.items()}
    refs = {k: pd.Series(v) for k, v in ref.items()}
    tests = {k: get_stattest(refs[k], pd.Series(windows[0][k]), kinds[k], None) for k in ref}
    anyc, dataset = [], []
    for w in windows:
        drifted = [bool(tests[k](refs[k], pd.Series(w[k]), kinds[k], None).drifted) for k in ref]
        anyc.append(any(drifted))
        dataset.append(sum(drifted) >= 0.5 * len(drifted))
    return anyc, dataset


def run_adwin(ref: dict, windows: list[dict]) -> list[bool]:
    from river.drift import ADWIN

    def stream(col, top):
        return (col == top).astype(float) if col.dtype == object else col

    tops = {k: (max(set(v), key=list(v).count) if v.dtype == object else None) for k, v in ref.items()}
    dets = {k: ADWIN() for k in ref}
    for k, v in ref.items():
        for x in stream(v, tops[k]).tolist():
            dets[k].update(x)
    alarms = []
    for w in windows:
        hit = False
        for k, v in w.items():
            d = dets[k]
            for x in stream(v, tops[k]).tolist():
                d.update(x)
                hit |= d.drift_detected
        alarms.append(hit)
    return alarms


def job(args):
    i, seed, detector = args
    scenario = sc.SCENARIOS[i]
    ref, windows, changed = sc.generate(scenario, seed)
    t = time.perf_counter()
    if detector == "driftline":
        out = {"driftline": run_driftline(ref, windows)}
    elif detector == "classifier":
        out = {"driftline + domain classifier": run_driftline(ref, windows, classifier=True)}
    elif detector == "evidently":
        a, d = run_evidently(ref, windows)
        out = {"evidently (any column)": a, "evidently (dataset drift)": d}
    else:
        out = {"river ADWIN": run_adwin(ref, windows)}
    return i, seed, out, changed, time.perf_counter() - t


def score(runs: list[tuple[list[bool], list[bool]]]) -> tuple[float, float | None, int]:
    """(false alarms per 1,000 unchanged windows, median delay, runs that missed the change)."""
    fa = sum(a for alarms, ch in runs for a, c in zip(alarms, ch) if not c)
    quiet = sum(not c for _, ch in runs for c in ch)
    delays, missed = [], 0
    for alarms, ch in runs:
        if not any(ch):
            continue
        first = ch.index(True)
        hit = next((j - first + 1 for j in range(first, len(ch)) if alarms[j]), None)
        missed += hit is None
        if hit is not None:
            delays.append(hit)
    return 1000 * fa / max(quiet, 1), (float(np.median(delays)) if delays else None), missed


def test_time(repeats: int = 10) -> tuple[float, float]:
    """Median ms to update and to test one window of 10,000 events, reference 50,000, 25 features."""
    rng = np.random.default_rng(0)
    ref = {f"num_{j:02d}": rng.normal(size=50_000) for j in range(sc.N_NUMERIC)}
    ref |= {f"cat_{j}": sc.CATS[rng.choice(6, 50_000, p=sc.P_CATS)] for j in range(sc.N_CATEGORICAL)}
    s = spec(10_000)
    mon = ModelMonitor(s, reference_for(s, ref, "timing"))
    upd, tst = [], []
    for _ in range(repeats):
        w = {k: (rng.normal(size=10_000) if v.dtype != object else sc.CATS[rng.choice(6, 10_000, p=sc.P_CATS)])
             for k, v in ref.items()}
        cols = columns(w)
        t0 = time.perf_counter()
        (closed,), _ = mon.ingest("v1", cols)
        t1 = time.perf_counter()
        mon.summarise(closed)
        t2 = time.perf_counter()
        upd.append(t1 - t0)
        tst.append(t2 - t1)
    return 1000 * float(np.median(upd)), 1000 * float(np.median(tst))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per change scenario")
    ap.add_argument("--seed-base", type=int, default=0, help="first seed (re-run on unseen streams)")
    ap.add_argument("--detectors", default="driftline,classifier,evidently,adwin")
    ap.add_argument("--scenarios", default="", help="comma-separated scenario numbers (default all)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    picked = [int(x) for x in args.scenarios.split(",")] if args.scenarios else range(len(sc.SCENARIOS))
    jobs = [(i, args.seed_base + s, d) for i in picked
            for s in range(1 if sc.SCENARIOS[i].change is None else args.seeds)
            for d in args.detectors.split(",")]
    t0 = time.perf_counter()
    with Pool(args.processes) as pool:
        results = pool.map(job, jobs, chunksize=1)
    runs: dict = {}
    seconds: dict = {}
    for i, seed, out, changed, secs in results:
        for name, alarms in out.items():
            runs.setdefault((i, name), []).append((alarms, changed))
            seconds[name] = seconds.get(name, 0.0) + secs / len(out)
    names = sorted({name for _, name in runs}, key=lambda n: (not n.startswith("driftline"), n))
    print(f"# driftline bench-quality — {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; window {sc.WINDOW}, reference {sc.REFERENCE}, "
          f"{sc.N_NUMERIC}+{sc.N_CATEGORICAL} features, seeds {args.seed_base}..{args.seed_base + args.seeds - 1}")
    print()
    print("| scenario | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i in picked:
        cells = []
        for name in names:
            fa, delay, missed = score(runs[(i, name)])
            if sc.SCENARIOS[i].change is None:
                cells.append(f"{fa:.1f} FA/1000")
            else:
                d = "missed" if delay is None else f"delay {delay:g}"
                cells.append(f"{d}{f' ({missed} missed)' if missed and delay is not None else ''}, {fa:.0f} FA/1000")
        print(f"| {sc.SCENARIOS[i].name} | " + " | ".join(cells) + " |")
    print()
    print("CPU seconds per detector: " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items())
          + f"; wall {time.perf_counter() - t0:.0f} s")
    if "driftline" in args.detectors:
        upd, tst = test_time()
        print(f"driftline, 25 features, window 10,000 vs reference 50,000: update {upd:.1f} ms, "
              f"tests {tst:.1f} ms per window (median of 10)")


if __name__ == "__main__":
    main()
