"""The concept detectors' own loops (driftline/detectors/performance/concept.py) against river itself:
on random streams, with and without changes, split into random batches, the same detections at the same
labels with the same estimates, and the same state, as river's HDDM_A and ADWIN fed label by label."""

import math

import numpy as np
import pytest
from river.drift import ADWIN
from river.drift.binary import HDDMA as RiverHDDMA

from driftline import state as st
from driftline.detectors.performance.concept import HDDMA, ConceptDrift


def _stream(rng, n: int, kind: str) -> np.ndarray:
    """0/1 errors whose rate steps, drifts or stays, at random places."""
    rate = np.full(n, rng.uniform(0.02, 0.5))
    if kind != "stationary":
        for at in sorted(rng.integers(0, n, size=rng.integers(1, 4))):
            rate[at:] = np.clip(rate[at:] + rng.uniform(-0.3, 0.4), 0.0, 1.0)
    return (rng.uniform(size=n) < rate).astype(np.float64)


def _river_hddm(xs, conf: float, warn: float):
    r, found, warnings = RiverHDDMA(drift_confidence=conf, warning_confidence=warn), [], []
    for i, x in enumerate(xs):
        r.update(x)
        warnings.append(r.warning_detected)
        if r.drift_detected:
            found.append((i, r._x_min.get(), (r._z.n * r._z.get() - r._x_min.n * r._x_min.get()) / (r._z.n - r._x_min.n)))
    return r, found, warnings


@pytest.mark.parametrize("seed", range(12))
def test_hddm_a_gives_river_s_detections_warnings_and_means_on_random_streams(seed):
    rng = np.random.default_rng(seed)
    conf = [1e-6, 1e-3, 0.05][seed % 3]
    warn = conf if seed % 2 else min(0.5, conf * 5)
    xs = _stream(rng, 30_000, "stationary" if seed % 4 == 0 else "changes").tolist()
    river, expected, warnings = _river_hddm(xs, conf, warn)
    h, got, at = HDDMA(conf, warn), [], 0
    for size in rng.integers(0, 3_000, size=40):  # batches of random sizes, empty ones too
        part = xs[at:at + int(size)]
        got += [(i + at, b, a) for i, b, a in h.update_many(part)]
        if part:
            assert h.warning_detected == warnings[at + len(part) - 1]
        at += len(part)
    got += [(i + at, b, a) for i, b, a in h.update_many(xs[at:])]
    assert got == expected and (seed % 4 == 0 or expected)
    assert (h.drift_detected, h.warning_detected) == (river.drift_detected, river.warning_detected)
    assert [h.z, h.x_min, h.x_max] == [[float(m.n), m._mean] for m in (river._z, river._x_min, river._x_max)]


def _river_concept(task, preds, labels, windows, ts, threshold=0.5, delta=1e-5, conf=1e-6, grace=1000, warmup=500):
    """The release before this one: river's ADWIN and HDDM_A through their public update, label by label."""
    adwin, hddm = ADWIN(delta=delta, grace_period=grace), RiverHDDMA(drift_confidence=conf, warning_confidence=conf)
    found, seen, taken, scale = [], {"loss": 0, "error": 0}, 0, []
    for p, y, w, t in zip(preds.tolist(), labels.tolist(), windows.tolist(), ts.tolist()):
        if task == "binary":
            if not (math.isfinite(p) and 0 <= p <= 1 and y in (0, 1)):
                continue
            lo, er = (p - y) ** 2, float((p >= threshold) != (y == 1))
        else:
            e = abs(p - y)
            if not math.isfinite(e):
                continue
            if len(scale) < warmup:
                scale.append(e)
                continue
            m = _river_mean(scale)
            lo, er = (min(e / (4.0 * m), 1.0), float(e > 2.0 * m)) if m > 0 else (float(e > 0), float(e > 0))
        taken += 1
        width, total = (0, 0.0) if adwin.drift_detected else (adwin.width, adwin.total)  # river resets first
        adwin.update(lo)
        seen["loss"] += 1
        if adwin.drift_detected:
            kept, after = adwin.width, adwin.estimation
            found.append(("adwin", "loss", w, t, (total + lo - kept * after) / (width + 1 - kept), after, seen["loss"], taken))
            seen["loss"] = 0
        hddm.update(er)
        seen["error"] += 1
        if hddm.drift_detected:
            z, cut = hddm._z, hddm._x_min
            found.append(("hddm_a", "error", w, t, cut.get(), (z.n * z.get() - cut.n * cut.get()) / (z.n - cut.n),
                          seen["error"], taken))
            seen["error"] = 0
    return found


def _river_mean(values):
    from river.stats import Mean
    m = Mean()
    for v in values:
        m.update(v)
    return m.get()


def _as_tuples(found):
    return [(f["detector"], f["signal"], f["window"], f["label_ts"], f["before"], f["after"], f["labels_seen"], f["at"])
            for f in found]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_concept_drift_in_random_batches_finds_what_river_finds_label_by_label(task, seed):
    rng = np.random.default_rng(100 + seed)
    n = 40_000
    if task == "binary":
        p = rng.uniform(size=n)
        y = (rng.uniform(size=n) < p).astype(float)
        for at in sorted(rng.integers(0, n, size=2)):
            flip = rng.uniform(size=n - at) < rng.uniform(0.05, 0.4)
            y[at:] = np.where(flip, 1 - y[at:], y[at:])
        p[rng.integers(0, n, size=20)] = np.nan  # bad values are left out by both
        y[rng.integers(0, n, size=20)] = 2.0
    else:
        y = rng.normal(size=n) * 10 + 1e3
        sd = np.where(np.arange(n) >= rng.integers(5_000, n), rng.uniform(1.5, 3.0), 1.0)
        p = y + rng.normal(size=n) * sd
        p[rng.integers(0, n, size=20)] = np.inf
    windows, ts = np.arange(n) // 1000, np.arange(n) * 7 + 10**12
    loose = {"delta": 0.002, "drift_confidence": 1e-3, "grace_period": 30} if seed % 2 else {}
    expected = _river_concept(task, p, y, windows, ts, **{k2: v for k, k2 in (("delta", "delta"),
                              ("drift_confidence", "conf"), ("grace_period", "grace")) if (v := loose.get(k)) is not None})
    c, got, at = ConceptDrift(task, **loose), [], 0
    for size in rng.integers(0, 4_000, size=30):
        b = min(n, at + int(size))
        c.update(p[at:b], y[at:b], windows[at:b], ts[at:b])
        got += c.drain()
        c = ConceptDrift.from_state(st.decode(st.encode(c.to_state())))
        at = b
    c.update(p[at:], y[at:], windows[at:], ts[at:])
    got += c.drain()
    assert _as_tuples(got) == expected and expected


def test_state_written_by_the_river_based_release_is_read_and_continues_alike():
    """The state format is unchanged (FORMAT 1): a state as river's HDDM_A left it continues exactly."""
    rng = np.random.default_rng(7)
    xs = _stream(rng, 20_000, "changes").tolist()
    river, _, _ = _river_hddm(xs[:10_000], 1e-6, 1e-6)
    state = ConceptDrift("binary").to_state()
    state["hddm"] = {"drift_detected": river.drift_detected, "warning_detected": river.warning_detected,
                     "x_min": [float(river._x_min.n), river._x_min.get()], "x_max": [float(river._x_max.n), river._x_max.get()],
                     "z": [float(river._z.n), river._z.get()]}
    c = ConceptDrift.from_state(state)
    rest = []
    for i, x in enumerate(xs[10_000:]):
        river.update(x)
        if river.drift_detected:
            rest.append(i)
    assert [i for i, _, _ in c._hddm.update_many(xs[10_000:])] == rest
    assert c.to_state()["hddm"]["z"] == [float(river._z.n), river._z.get()]


def test_bad_hddm_parameters_name_themselves():
    with pytest.raises(ValueError, match="warning_confidence"):
        HDDMA(1e-3, 0)
