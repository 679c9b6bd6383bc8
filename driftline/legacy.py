"""Read the pickled checkpoint of releases before keyed state, once, without running it.

Until keyed state, the service stored ``pickle.dumps(monitors)`` per consumer group.
On its first start the new release converts that blob into the states of
``driftline/state.py`` and deletes it. The blob is read by a restricted unpickler:
every class it names from driftline (or from anywhere not on a short list) becomes an
inert stand-in that only records its attributes, so no driftline code, and nothing
the blob names, runs. The list admits numpy's array and scalar constructors, the
``collections`` containers and river's ADWIN (whose state is its own serialized
buckets); a row sample's random generator becomes a stand-in too, and the converted
sample draws its next keys from a fresh one. The stand-ins are then read attribute by attribute,
with the defaults of the older layouts, into today's state: this module is the only
place that knows what the older classes looked like.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections import Counter

import numpy as np
from datasketches import frequent_strings_sketch

from driftline import state as st
from driftline.errors import DriftlineError

log = logging.getLogger(__name__)

_ALLOWED = {
    ("collections", "Counter"), ("collections", "deque"), ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("river.drift.adwin", "ADWIN"), ("river._river_rust.drift", "AdaptiveWindowing"),
}
_NUMPY_DTYPES = ("numpy.dtypes",)


class LegacyError(DriftlineError):
    """A pickled checkpoint that cannot be converted."""


class Stub:
    """Stands in for a class of the pickle: keeps its attributes, runs nothing."""

    _name = "?"

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and all(isinstance(x, (dict, type(None))) for x in state):
            state = {**(state[0] or {}), **(state[1] or {})}  # (__dict__, __slots__ values)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._state = state  # a C extension's own state (a seed sequence, …): kept, never run

    def get(self, name: str, default=None):
        return self.__dict__.get(name, default)


_STUBS: dict[str, type] = {}


def _stub(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _STUBS:
        _STUBS[key] = type(name, (Stub,), {"_name": name})
    return _STUBS[key]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED or module in _NUMPY_DTYPES:
            return super().find_class(module, name)
        return _stub(module, name)


def read(blob: bytes) -> dict:
    """The pickled monitors, as stand-ins (``model → Stub``)."""
    try:
        monitors = _Unpickler(io.BytesIO(blob)).load()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure to read an old blob means the same thing
        raise LegacyError(f"the stored checkpoint of the previous release cannot be read: "
                          f"{type(exc).__name__}: {exc}. " + _WHAT_TO_DO) from exc
    if not isinstance(monitors, dict):
        raise LegacyError("the stored checkpoint of the previous release is not a table of models")
    return monitors


def profiles(blob: bytes) -> dict[str, dict]:
    """The reference profiles the pickled monitors held (``model → profile dict``, the
    layout of ``ReferenceProfile.to_dict``): the ones their open windows are binned on."""
    out = {}
    for model, mon in read(blob).items():
        p = mon.get("profile")
        if p is None:
            continue
        out[model] = {"model": p.get("model"), "n": _plain(p.get("n")), "source": p.get("source"),
                      "calibration": p.get("calibration"), "multivariate": p.get("multivariate"),
                      "fields_seen": p.get("fields_seen"), "domain": p.get("domain"),
                      "features": {k: _profile(f) for k, f in p.get("features").items()}}
    return out


def _profile(f) -> dict:
    if f._name == "NumericProfile":
        stats = {k: (None if v != v else float(v)) for k in ("mean", "std", "min", "max") for v in [f.get(k)]}
        return {"kind": "numeric", "edges": f.get("edges").tolist(), "counts": f.get("counts").tolist(),
                "sums": f.get("sums").tolist(), "n": _plain(f.get("n")), **stats,
                "kurtosis": _plain(f.get("kurtosis", 3.0)), "missing_rate": _plain(f.get("missing_rate", 0.0))}
    return {"kind": "categorical", "categories": list(f.get("categories")), "counts": f.get("counts").tolist(),
            "n": _plain(f.get("n")), "known": f.get("known"), "singletons": _plain(f.get("singletons", 0)),
            "missing_rate": _plain(f.get("missing_rate", 0.0))}


#: nodes a converted checkpoint may hold (a real one: thousands); a blob whose shared
#: references unfold into more is refused rather than walked for ever
MAX_NODES = 2_000_000


def _bounded(obj, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise LegacyError("the stored checkpoint of the previous release unfolds into more than "
                          f"{MAX_NODES} values; it is not one driftline wrote. " + _WHAT_TO_DO)
    if isinstance(obj, dict):
        for k, v in obj.items():
            _bounded(k, budget)
            _bounded(v, budget)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _bounded(v, budget)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for v in obj.ravel().tolist():
            _bounded(v, budget)
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)):
        raise LegacyError(f"the stored checkpoint of the previous release holds a {type(obj).__name__} "
                          "where driftline wrote plain values. " + _WHAT_TO_DO)


_WHAT_TO_DO = ("`driftline db reset-state -c FILE` discards it (open windows are lost; closed windows, "
               "alerts and offsets are kept)")


def convert(blob: bytes) -> dict[tuple[str, str], dict]:
    """The states (``(model, key) → state``) held by a pickled checkpoint; see ``monitor.py``.
    What comes out is checked to be plain values of a bounded size."""
    try:
        out = _convert(blob)
    except LegacyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a stand-in without the attributes an old layout had
        raise LegacyError(f"the stored checkpoint of the previous release cannot be converted: "
                          f"{type(exc).__name__}: {exc}. " + _WHAT_TO_DO) from exc
    _bounded(out, [MAX_NODES])
    return out


def _convert(blob: bytes) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for model, mon in read(blob).items():
        pending = mon.get("pending") or []
        if pending:
            out[(model, "")] = {"format": st.FORMAT, "pending": [_columns(c) for c in pending]}
        online = mon.get("online") or {}
        for version in set(mon.get("versions") or {}) | set(online):
            windows = (mon.get("versions") or {}).get(version)
            out[(model, version)] = {"format": st.FORMAT,
                                     "windows": _windows(windows) if windows is not None else None,
                                     "sequence": _sequence(online.get(version) or {})}
    return out


def _columns(c) -> dict:
    feats = {}
    for name, col in c.get("features").items():
        if col._name == "NumericColumn":
            feats[name] = {"values": col.get("values"), "valid": col.get("valid"), "missing": col.get("missing")}
        else:
            feats[name] = {"categories": [None if v is None else str(v) for v in col.get("values").tolist()]}
    return {"ts": c.get("ts"), "features": feats, "extra": dict(c.get("extra") or {})}


def _windows(ws) -> dict:
    if ws._name == "CountWindows":
        cur = ws.get("current")
        return {"kind": "count", "size": ws.get("size"), "seq": ws.get("seq"), "last_end": ws.get("last_end", 0),
                "current": _window(cur) if cur is not None else None}
    floor = int(np.iinfo(np.int64).min)
    return {"kind": "time", "duration": ws.get("duration"), "lateness": ws.get("lateness"), "seq": ws.get("seq"),
            "closed_until": int(ws.get("closed_until", floor)), "watermark": int(ws.get("watermark", floor)),
            "pending_invalid": ws.get("pending_invalid", 0), "last_arrival": ws.get("last_arrival"),
            "open": [_window(w) for _, w in sorted((ws.get("open") or {}).items())]}


def _window(w) -> dict:
    fields = ("seq", "start_ms", "end_ms", "first_ts", "last_ts", "count", "invalid", "late")
    return {f: _plain(w.get(f)) for f in fields} | {"after_ms": w.get("after_ms", 0), "stats": _window_stats(w.get("stats"))}


def _window_stats(ws) -> dict:
    tests = {}
    if ws.get("pca") is not None:
        pca = ws.get("pca")
        tests["multivariate"] = {"count": pca.get("count"), "total": pca.get("total"), "squares": pca.get("squares"),
                                 "hist": pca.get("hist")}
    if ws.get("domain") is not None:
        d = ws.get("domain")
        rng = d.get("_rng")
        tests["domain_classifier"] = {"count": d.get("count"), "keys": d.get("keys"), "num": d.get("num"),
                                      "cat": np.asarray(d.get("cat"), dtype=object).tolist(),
                                      "rng": _rng(rng)}
    return {"records": ws.get("records", 0), "extra": dict(ws.get("extra") or Counter()),
            "features": {k: _feature(f) for k, f in ws.get("features").items()}, "tests": tests}


def _rng(rng) -> dict:
    from driftline.detectors.classifier import _rng_state
    if isinstance(rng, np.random.Generator):
        return _rng_state(rng)
    return _rng_state(np.random.default_rng())


def _feature(f) -> dict:
    if f._name == "NumericStats":
        return {"count": f.get("count"), "missing": f.get("missing"), "invalid": f.get("invalid"),
                "mean": f.get("mean"), "m2": f.get("_m2"), "min": f.get("min"), "max": f.get("max"),
                "out_of_range": f.get("out_of_range", 0), "hist": f.get("hist"), "sums": f.get("sums"),
                "sketch": f.get("_sketch")}
    unseen = f.get("unseen")
    if isinstance(unseen, Counter):  # before the sketch: a capped table of counts
        sketch = frequent_strings_sketch(7)
        for value, c in unseen.items():
            sketch.update(str(value), int(c))
        unseen = sketch.serialize()
    return {"count": f.get("count"), "missing": f.get("missing"), "invalid": f.get("invalid"), "hist": f.get("hist"),
            "unseen": unseen, "unseen_total": f.get("unseen_total", 0)}


def _sequence(online: dict) -> dict:
    out = {}
    trend = online.get("trend")
    if trend is not None:
        out["trend"] = {"spans": list(trend.get("spans")),
                        "history": {k: [[int(c), float(m)] for c, m in h] for k, h in trend.get("_history").items()}}
    adwin = online.get("adwin")
    if adwin is not None:
        a = adwin.get("_adwin")
        out["prediction_adwin"] = {"detections": adwin.get("detections", 0),
                                   "params": {k: getattr(a, k) for k in
                                              ("delta", "clock", "max_buckets", "min_window_length", "grace_period")},
                                   "drift_detected": bool(a._drift_detected), "window": a._helper.__getstate__()}
    return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
