"""The checkpoint's cost: milliseconds and bytes per checkpoint with 1, 10 and 100
model versions holding an open window, through the pipeline and a real SQLite file.

Two cases per size: every open version received events since the last checkpoint
("all changed"), and only one of them did ("one changed") — the common case for a
fleet of models where few are busy at any moment, and the one an incremental
checkpoint is for. Bytes are what the checkpoint hands the store's transaction
(the state it writes; offsets, windows and alerts are the same in both formats).
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import orjson

from driftline.alerts.routing import Router
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.store import SqlStore
from driftline.types import Batch, SourcePosition

FEATURES = {f"f{j:02d}": "numeric" for j in range(20)} | {f"c{j}": "categorical" for j in range(5)}


def _events(version: str, n: int, seed: int, start: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    c = rng.choice(["a", "b", "c", "d"], size=(n, 5))
    return [orjson.dumps({"model": "m", "version": version, "id": f"{version}-{start + i}",
                          "ts": 1_795_000_000_000 + (start + i) * 10,
                          "features": {**{f"f{j:02d}": float(x[i, j]) for j in range(20)},
                                       **{f"c{j}": str(c[i, j]) for j in range(5)}},
                          "prediction": float(x[i, 0])}) for i in range(n)]


def _batch(values: list[bytes], offset: int) -> Batch:
    return Batch(values, lambda i: SourcePosition("t", 0, offset + i), {("t", 0): offset + len(values)})


class _Recorder:
    """Wraps the store's commit to measure what each checkpoint writes."""

    def __init__(self, store):
        self.store, self.sizes, self.rows = store, [], []
        self._commit = store.commit
        store.commit = self.commit

    def commit(self, group, unit):
        self.sizes.append(state_bytes(unit))
        self.rows.append(state_rows(unit))
        return self._commit(group, unit)


def state_bytes(unit) -> int:
    if getattr(unit, "checkpoint", None) is not None:  # the pickled format
        return len(unit.checkpoint)
    states = getattr(unit, "states", None) or {}
    return sum(len(v) for v in states.values() if v is not None)


def state_rows(unit) -> int:
    if getattr(unit, "checkpoint", None) is not None:
        return 1
    return len(getattr(unit, "states", None) or {})


def measure(versions: int, repeats: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings({"models": [{
            "name": "m", "features": FEATURES, "prediction": "numeric",
            "window": {"size": 100_000, "min_count": 100}, "reference": {"first_n": 5000}}]}, {})
        store = SqlStore(f"sqlite:///{tmp}/ckpt.db", upgrade=True)
        pipe = Pipeline(settings, store, Router(settings, {}, store), _NoDead(), lambda s: None, checkpoint_every=1e9)
        rec = _Recorder(store)
        offset = 0
        ref = _events("v0", 5000, 0, 0)
        pipe.process(_batch(ref, offset), force=True)
        offset += len(ref)
        for v in range(versions):
            vals = _events(f"v{v}", 500, v + 1, offset)
            pipe.process(_batch(vals, offset))
            offset += len(vals)
        pipe.process(_batch([], offset), force=True)  # everything open is now stored once
        out = {}
        for case in ("all changed", "one changed"):
            times, sizes, rows = [], [], []
            for r in range(repeats):
                touched = range(versions) if case == "all changed" else [r % versions]
                for v in touched:
                    vals = _events(f"v{v}", 50, 1000 + r, offset)
                    pipe.process(_batch(vals, offset))
                    offset += len(vals)
                t0 = time.perf_counter()
                pipe.process(_batch([], offset), force=True)
                times.append(time.perf_counter() - t0)
                sizes.append(rec.sizes[-1])
                rows.append(rec.rows[-1])
            out[case] = (1000 * float(np.median(times)), int(np.median(sizes)), int(np.median(rows)))
        store.close()
        return out


class _NoDead:
    def send(self, record) -> None:
        pass

    def flush(self) -> None:
        pass


def report(sizes=(1, 10, 100)) -> None:
    print("checkpoint cost (median of 5; SQLite file; 25 features, one open window per version):")
    for n in sizes:
        for case, (ms, size, rows) in measure(n).items():
            print(f"    {n:>3} version(s) open, {case:11}: {ms:7.1f} ms, {size:>10,} bytes, {rows:>3} state row(s)")


if __name__ == "__main__":
    report()
