"""A digest of everything the labels path produces on streams with concept drift, to check that two
trees give the same results bit for bit (``benchmarks/cpu.py --digest`` covers the bench workload,
whose labels are stationary, so no detector fires there).

``RealizedPerformance`` of a binary and of a regression model, 60,000 predictions each in batches
of 5,000 (a second version from prediction 40,000), 80 % of them labelled after each batch in random
order, the label relation changed at prediction 30,000; printed: the SHA-256 of every performance
revision and every stored state key and value, and how many concept-drift findings there were.

    PYTHONPATH=. .venv/bin/python benchmarks/labels_digest.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftline import state  # noqa: E402
from driftline.config.settings import LabelsSpec  # noqa: E402
from driftline.realized import RealizedPerformance  # noqa: E402

N, BATCH = 60_000, 5_000


def _stream(task: str, rng) -> tuple[np.ndarray, np.ndarray]:
    if task == "binary":
        s = rng.uniform(size=N)
        y = (rng.uniform(size=N) < s).astype(float)
        y[N // 2:] = 1 - y[N // 2:]
        return s, y
    y = rng.normal(size=N) * 5
    return y + rng.normal(size=N) * np.where(np.arange(N) >= N // 2, 3.0, 1.0), y


def run(task: str, digest) -> int:
    rng = np.random.default_rng(5)
    s, y = _stream(task, rng)
    ids, wins, findings = np.array([f"id{i}" for i in range(N)], dtype=object), np.arange(N) // 2000, 0
    r = RealizedPerformance("m", LabelsSpec(max_delay=86400, task=task), count_windows=True)
    for a in range(0, N, BATCH):
        b = a + BATCH
        r.add("v1" if a < 40_000 else "v2", ids[a:b], wins[a:b], s[a:b], np.arange(a, b) + 10**12,
              {int(w): (int(w), None, None) for w in np.unique(wins[a:b])})
        labelled = rng.permutation(np.arange(a, b))[:4 * BATCH // 5]
        r.join(ids[labelled], y[labelled], labelled + 10**12 + 50)
        r.expire()
        for rev in r.revisions():
            findings += len(rev["findings"])
            digest.update(orjson.dumps(rev, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))
        for key, value in sorted(r.dirty_state().items()):
            digest.update(key.encode() + (b"-" if value is None else state.encode(value)))
        r.clean()
    return findings


def main() -> None:
    digest = hashlib.sha256()
    findings = {task: run(task, digest) for task in ("binary", "regression")}
    print(f"digest {digest.hexdigest()[:16]}; concept-drift findings {findings}")


if __name__ == "__main__":
    main()
