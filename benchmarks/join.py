"""The label-join buffer's memory and speed at 1 million and 10 million pending predictions.

Per size, in a fresh process (so that its memory figures are its own): fill the buffer
to N pending predictions (two segment features, float32 scores), then time batches of
10,000 adds of new ids and 10,000 labels (90% of them for pending predictions, 10%
orphans), with the ids hashed in the timed call (``str`` ids) and with hashes given
(``uint64``, the buffer's own work alone); then an ``expire`` with nothing to expire,
the checkpoint after one label batch, and a restore from the full state in a fresh
process that decodes each stored row as it reads it.

Reported: numpy bytes per pending prediction (``nbytes``), resident memory from
``/proc/self/statm`` and its peak (``VmHWM``), adds/s and joins/s. Speeds are this
machine's; nothing here is asserted.

    python benchmarks/join.py [--sizes 1000000 10000000] [--batch 10000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from driftline.labels.hashing import hash_ids
from driftline.labels.join import JoinBuffer
from driftline.state import decode, encode

SEGMENTS = ("country", "device")


def rss_mib() -> tuple[float, float]:
    with open("/proc/self/statm") as f:
        resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    return resident / 2**20, peak / 2**20


def columns(rng, n: int, start: int):
    return (np.zeros(n, np.int16), np.full(n, start // 100_000), rng.random(n, dtype=np.float32),
            {"country": rng.integers(0, 60, n), "device": rng.integers(0, 4, n)}, start + np.arange(n))


def ids(start: int, n: int) -> list[str]:
    return [f"{i:016x}-pred" for i in range(start, start + n)]


def fill(buf, rng, n: int) -> float:
    t = time.perf_counter()
    for s in range(0, n, 100_000):
        k = min(100_000, n - s)
        buf.add(hash_ids(ids(s, k)), *columns(rng, k, s))
    return time.perf_counter() - t


def timed(fn, rounds: int) -> float:
    t = time.perf_counter()
    for r in range(rounds):
        fn(r)
    return time.perf_counter() - t


def one(n: int, batch: int, rounds: int) -> None:
    rng = np.random.default_rng(0)
    buf = JoinBuffer(segments=SEGMENTS, max_pending=n + 4 * batch * rounds, remember=1_000_000)
    fill_s = fill(buf, rng, n)
    per, (resident, peak) = buf.nbytes / buf.pending, rss_mib()
    print(f"pending {buf.pending:,}: filled in {fill_s:.1f} s ({n / fill_s:,.0f} adds/s in batches of 100,000); "
          f"{buf.nbytes / 2**20:,.0f} MiB of arrays = {per:.1f} bytes per prediction; "
          f"RSS {resident:,.0f} MiB (peak {peak:,.0f} MiB)")
    speeds(buf, rng, n, batch, rounds)
    state = buf.dirty_state()
    buf.clean()
    buf.join(*label_batches(rng, [n + 2 * batch * rounds], n, batch, 1)[0])
    small = sum(len(encode(v)) for v in buf.dirty_state()["put"].values())
    print(f"  checkpoint after one label batch of {batch:,}: {small:,} bytes "
          f"(full state {sum(len(encode(v)) for v in state['put'].values()) / 2**20:,.0f} MiB in {len(state['put']):,} keys)")
    del buf
    with tempfile.TemporaryDirectory() as tmp:  # the store's rows, one file each
        for key, value in state["put"].items():
            Path(tmp, key.replace("/", "_")).write_bytes(encode(value))
        del state
        subprocess.run([sys.executable, __file__, "--restore", tmp], check=True)


class StoredRows(Mapping):
    """Stored rows read and decoded when asked for, as from a database cursor."""

    def __init__(self, folder: str):
        self.files = {p.name.replace("_", "/"): p for p in Path(folder).iterdir()}

    def __getitem__(self, key):
        return decode(self.files[key].read_bytes())

    def __iter__(self):
        return iter(self.files)

    def __len__(self):
        return len(self.files)


def restore(folder: str) -> None:
    t = time.perf_counter()
    back = JoinBuffer.from_state(StoredRows(folder))
    print(f"  restore in a fresh process, rows decoded as read: {time.perf_counter() - t:.1f} s "
          f"({back.pending:,} pending); RSS " "{:,.0f} MiB, peak {:,.0f} MiB".format(*rss_mib()), flush=True)


def label_batches(rng, nxt: list, n: int, batch: int, rounds: int, hashed: bool = True) -> list:
    out = []
    for _ in range(rounds):
        hits = rng.integers(0, nxt[0], int(batch * 0.9))
        key = [f"{i:016x}-pred" for i in hits.tolist()] + [f"orphan-{i}" for i in range(batch - hits.size)]
        out.append((hash_ids(key) if hashed else key, np.ones(batch), np.full(batch, n)))
    return out


def speeds(buf, rng, n: int, batch: int, rounds: int) -> None:
    nxt = [n]

    def add_batches(hashed: bool) -> list:
        out = []
        for _ in range(rounds):
            key = ids(nxt[0], batch)
            out.append((hash_ids(key) if hashed else key, *columns(rng, batch, nxt[0])))
            nxt[0] += batch
        return out

    def labels(hashed: bool) -> list:
        return label_batches(rng, nxt, n, batch, rounds, hashed)

    warm = add_batches(True)[0]  # untimed: first touches of fresh memory
    buf.add(*warm)
    buf.join(*labels(True)[0])
    for what, call, make in (("add, str ids", buf.add, lambda: add_batches(False)),
                             ("add, hashes given", buf.add, lambda: add_batches(True)),
                             ("join, str ids", buf.join, lambda: labels(False)),
                             ("join, hashes given", buf.join, lambda: labels(True))):
        work = make()
        s = timed(lambda r: call(*work[r]), rounds)
        print(f"  {what:20s} {batch * rounds / s:>12,.0f} /s   ({1000 * s / rounds:.1f} ms per batch of {batch:,})")
    keys = [ids(r * batch, batch) for r in range(rounds)]
    hashes_s = timed(lambda r: hash_ids(keys[r]), rounds)
    print(f"  hashing alone        {batch * rounds / hashes_s:>12,.0f} ids/s (BLAKE2b-8)")
    t = time.perf_counter()
    buf.expire(0)
    print(f"  expire (none due)    {1000 * (time.perf_counter() - t):12.2f} ms")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--restore", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.restore:
        restore(args.restore)
        return
    if args.one:
        one(args.one, args.batch, args.rounds)
        return
    for n in args.sizes:
        subprocess.run([sys.executable, __file__, "--one", str(n), "--batch", str(args.batch),
                        "--rounds", str(args.rounds)], check=True)


if __name__ == "__main__":
    main()
