"""CPU per label of the labels path's per-label parts, against what they replaced:
``ConceptDrift.update`` against river's ADWIN and HDDM_A fed label by label through their
public ``update`` (what the release before did, and what ``tests/unit/test_concept_exact.py``
checks it against), and ``hash_ids`` against a Python call per id (main's path).

    PYTHONPATH=. .venv/bin/python benchmarks/labels_path.py [--labels 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from river.drift import ADWIN
from river.drift.binary import HDDMA

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftline.detectors.performance.concept import ConceptDrift  # noqa: E402
from driftline.labels.hashing import _digest, hash_ids  # noqa: E402


def _river(loss: list[float], error: list[float]) -> int:
    adwin, hddm, found = ADWIN(delta=1e-5, grace_period=1000), HDDMA(drift_confidence=1e-6, warning_confidence=1e-6), 0
    for lo, er in zip(loss, error):
        adwin.update(lo)
        hddm.update(er)
        found += adwin.drift_detected + hddm.drift_detected
    return found


def _per_id(ids: list[str]) -> np.ndarray:
    """main's ``hash_ids`` before this branch: its general path, one call of ``_digest`` per id."""
    return np.frombuffer(b"".join(map(_digest, ids)), dtype="<u8")


def _cpu(fn, *args) -> tuple[float, object]:
    t = time.process_time()
    out = fn(*args)
    return time.process_time() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", type=int, default=200_000)
    n = ap.parse_args().labels
    rng = np.random.default_rng(0)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(float)
    y[n // 2:] = np.where(rng.uniform(size=n - n // 2) < 0.2, 1 - y[n // 2:], y[n // 2:])  # a change half way
    c = ConceptDrift("binary")
    loss, error = c.signals(p, y)

    def ours():
        for k in range(0, n, 5000):
            c.update(p[k:k + 5000], y[k:k + 5000], np.zeros(min(5000, n - k)), np.zeros(min(5000, n - k)))
        return len(c.drain())
    t_ours, f_ours = _cpu(ours)
    t_river, f_river = _cpu(_river, loss.tolist(), error.tolist())
    print(f"concept drift, {n:,} binary labels: ConceptDrift.update {1e6 * t_ours / n:.2f} µs/label, "
          f"river label by label {1e6 * t_river / n:.2f} µs/label; detections {f_ours} and {f_river}")
    ids = [f"{i:016x}" for i in range(n)]
    arr = np.array(ids, dtype=object)
    t_ours, h = _cpu(hash_ids, arr)
    t_old, h_old = _cpu(_per_id, ids)
    assert (h == h_old).all()
    print(f"id hashing, {n:,} ids: hash_ids {1e6 * t_ours / n:.2f} µs/id, main's path {1e6 * t_old / n:.2f} µs/id")


if __name__ == "__main__":
    main()
