"""Decode a batch of JSON records into numpy columns per model and version.

The whole batch is parsed with one ``orjson.loads`` call when it can be; a
record that breaks it is found by parsing one record at a time. Records that
use ``NaN``/``Infinity`` (which Python's ``json`` writes) are accepted through
the standard library's parser and their values counted as invalid. Nothing in
here loops over features per event: each feature is gathered with one list
comprehension and converted by numpy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import itemgetter

import numpy as np
import orjson

from driftline.config.settings import FeatureSpec, ModelSpec
from driftline.streams.arrow_decode import ArrowDecoder
from driftline.types import (
    INVALID,
    BadRecord,
    Batch,
    CategoricalColumn,
    Columns,
    NumericColumn,
)

_FAILED = object()
_NUMBER = frozenset({int, float, type(None)})
_TEXT = frozenset({str, type(None)})


@dataclass
class Decoded:
    groups: dict[tuple[str, str], Columns] = field(default_factory=dict)
    bad: list[BadRecord] = field(default_factory=list)
    invalid: dict[tuple[str, str], int] = field(default_factory=dict)


def _getter(path: str):
    keys = path.split(".")
    if len(keys) == 1:
        key = keys[0]
        return lambda d: d.get(key, _FAILED)

    def get(d):
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return _FAILED
            d = d[k]
        return d

    return get


def _loads_one(value: bytes | None):
    if value is None:
        return _FAILED, "empty record (tombstone)"
    try:
        return orjson.loads(value), None
    except orjson.JSONDecodeError as exc:
        try:  # NaN / Infinity are not JSON, but Python writes them; keep the record
            return json.loads(value), None
        except (ValueError, UnicodeDecodeError):
            return _FAILED, f"malformed JSON: {exc}"


def parse_all(values: list[bytes | None]) -> tuple[list, dict[int, str]]:
    """Parse every record; return the documents and ``{index: reason}`` for failures."""
    if values and None not in values:
        try:
            docs = orjson.loads(b"[" + b",".join(values) + b"]")
            if len(docs) == len(values):
                return docs, {}
        except orjson.JSONDecodeError:
            pass
    docs, errors = [], {}
    for i, value in enumerate(values):
        doc, err = _loads_one(value)
        docs.append(doc)
        if err:
            errors[i] = err
    return docs, errors


def parse_ts(raw: list) -> tuple[np.ndarray, list[int]]:
    """Epoch milliseconds from ISO-8601 strings or epoch-ms numbers; bad indices listed."""
    kinds = set(map(type, raw))
    if kinds <= {int, float}:
        arr = np.array(raw, dtype=np.float64)
        ok = np.isfinite(arr)
        return np.where(ok, arr, 0).astype(np.int64), np.flatnonzero(~ok).tolist()
    if kinds == {str} and all(s.endswith("Z") for s in raw):
        try:
            stripped = [s[:-1] for s in raw]
            return np.array(stripped, dtype="datetime64[ms]").astype(np.int64), []
        except ValueError:
            pass
    out, bad = np.zeros(len(raw), dtype=np.int64), []
    for i, v in enumerate(raw):
        ms = _one_ts(v)
        if ms is None:
            bad.append(i)
        else:
            out[i] = ms
    return out, bad


def _one_ts(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    return None


def numeric_column(raw: list) -> NumericColumn:
    if set(map(type, raw)) <= _NUMBER:
        values = np.array(raw, dtype=np.float64)
        valid = np.isfinite(values)
        if values.size - int(valid.sum()) == raw.count(None):  # no NaN/inf from the record itself
            return NumericColumn(values, valid, ~valid)
    n = len(raw)
    values = np.full(n, np.nan)
    valid = np.zeros(n, dtype=bool)
    missing = np.zeros(n, dtype=bool)
    for i, v in enumerate(raw):
        if v is None:
            missing[i] = True
        elif type(v) in (int, float) and math.isfinite(v):
            values[i] = v
            valid[i] = True
    return NumericColumn(values, valid, missing)


def categorical_column(raw: list, kind: str) -> CategoricalColumn:
    if kind == "categorical" and set(map(type, raw)) <= _TEXT:
        return CategoricalColumn(np.array(raw, dtype=object))
    out = np.empty(len(raw), dtype=object)
    for i, v in enumerate(raw):
        out[i] = _category(v, kind)
    return CategoricalColumn(out)


def _category(v, kind: str):
    if v is None:
        return None
    if kind == "boolean":
        return ("true" if v else "false") if isinstance(v, bool) else INVALID
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return INVALID


def _column(raw: list, spec: FeatureSpec):
    return numeric_column(raw) if spec.kind == "numeric" else categorical_column(raw, spec.kind)


class Decoder:
    """Turns raw batches into :class:`Columns` per ``(model, version)``."""

    def __init__(self, models: list[ModelSpec]):
        self.models = {m.name: m for m in models}
        self._model_paths = [_getter(p) for p in dict.fromkeys(m.fields.model for m in models)]
        self._arrow = ArrowDecoder(models, parse_ts)
        self._get = {m.name: {k: _getter(getattr(m.fields, k))
                              for k in ("version", "ts", "features", "prediction")}
                     for m in models}

    def _single_group(self, docs: list) -> tuple[str, str] | None:
        """The one (model, version) of a clean batch, found without a per-event Python loop."""
        paths = {(m.fields.model, m.fields.version) for m in self.models.values()}
        if len(paths) != 1:
            return None
        (mkey, vkey), = paths
        if "." in mkey + vkey or set(map(type, docs)) != {dict}:
            return None
        try:
            pairs = set(map(itemgetter(mkey, vkey), docs))
        except KeyError:
            return None
        if len(pairs) != 1:
            return None
        (model, version), = pairs
        if model not in self.models or not isinstance(version, str):
            return None
        return model, version

    def decode(self, batch: Batch, now_ms: int | None = None) -> Decoded:
        """Decode a batch; with ``now_ms``, events too far in the future are bad records."""
        fast = self._arrow.decode(batch.values, self._limits(now_ms))
        if fast is not None:
            return Decoded(groups=fast)
        return self.decode_records(batch, now_ms)

    def _limits(self, now_ms: int | None) -> dict[str, float]:
        if now_ms is None:
            return {}
        return {name: now_ms + m.window.max_future * 1000 for name, m in self.models.items()
                if m.window.max_future is not None}

    def decode_records(self, batch: Batch, now_ms: int | None = None) -> Decoded:
        """The record-by-record path: slower, and names what is wrong with each record."""
        limits = self._limits(now_ms)
        out = Decoded()
        docs, errors = parse_all(batch.values)
        groups: dict[tuple[str, str], list[int]] = {}
        single = None if errors or not docs else self._single_group(docs)
        if single is not None:
            groups[single] = list(range(len(docs)))
        for i, doc in enumerate(docs if single is None else ()):
            if i in errors:
                continue
            key, err = self._route(doc)
            if err:
                errors[i] = err
            else:
                groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            cols, bad = self._columns(key[0], [docs[i] for i in idx], limits.get(key[0]))
            for j, reason in bad.items():
                errors[idx[j]] = reason
            if cols is not None:
                out.groups[key] = cols
        for i, reason in sorted(errors.items()):
            doc = docs[i]
            model, version = self._route(doc)[0] if isinstance(doc, dict) else (None, None)
            out.bad.append(BadRecord(reason, batch.values[i], batch.position(i), model, version))
            if model in self.models:
                out.invalid[(model, version)] = out.invalid.get((model, version), 0) + 1
        return out

    def _route(self, doc) -> tuple[tuple[str, str] | tuple[None, None], str | None]:
        if not isinstance(doc, dict):
            return (None, None), f"record is a JSON {type(doc).__name__}, expected an object"
        name = _FAILED
        for get in self._model_paths:
            name = get(doc)
            if name is not _FAILED:
                break
        if name is _FAILED or name is None:
            return (None, None), "missing field 'model'"
        if not isinstance(name, str) or name not in self.models:
            return (None, None), f"unknown model {name!r}"
        version = self._get[name]["version"](doc)
        if version is _FAILED or version is None:
            version = "default"
        return (name, str(version)), None

    def _columns(self, model: str, docs: list[dict],
                 limit: float | None = None) -> tuple[Columns | None, dict[int, str]]:
        spec, get = self.models[model], self._get[model]
        bad: dict[int, str] = {}
        feats = _gather(docs, spec.fields.features, get["features"])
        ts_raw = _gather(docs, spec.fields.ts, get["ts"])
        clean = set(map(type, feats)) == {dict} and _FAILED not in ts_raw and None not in ts_raw
        for j, (f, t) in enumerate(zip(feats, ts_raw) if not clean else ()):
            if f is _FAILED:
                bad[j] = f"missing field '{spec.fields.features}'"
            elif not isinstance(f, dict):
                bad[j] = f"field '{spec.fields.features}' is a {type(f).__name__}, expected an object"
            elif t is _FAILED or t is None:
                bad[j] = f"missing field '{spec.fields.ts}'"
        ts, bad_ts = parse_ts([0 if j in bad else ts_raw[j] for j in range(len(docs))])
        for j in bad_ts:
            bad.setdefault(j, f"field '{spec.fields.ts}' is not ISO-8601 or epoch ms: {ts_raw[j]!r}")
        if limit is not None:
            for j in np.flatnonzero(ts > limit).tolist():
                bad.setdefault(j, f"field '{spec.fields.ts}' is {ts_raw[j]!r}, more than "
                                  f"{spec.window.max_future:g} s ahead of the clock")
        if bad:
            keep = [j for j in range(len(docs)) if j not in bad]
            if not keep:
                return None, bad
            feats, docs, ts = [feats[j] for j in keep], [docs[j] for j in keep], ts[keep]
        columns = dict(zip(spec.features, map(_column, _transpose(feats, list(spec.features)),
                                                 spec.features.values())))
        if spec.prediction is not None:
            preds = _gather(docs, spec.fields.prediction, get["prediction"])
            if _FAILED in preds:
                preds = [None if p is _FAILED else p for p in preds]
            columns["prediction"] = _column(preds, spec.prediction)
        return Columns(ts, columns, _extra(feats, spec.features)), bad


def _extra(feats: list[dict], declared: dict) -> dict[str, np.ndarray]:
    """Undeclared fields of the features objects → which records carry them (non-null)."""
    names = set().union(*map(dict.keys, feats)).difference(declared)
    return {name: np.fromiter((f.get(name) is not None for f in feats), dtype=bool, count=len(feats))
            for name in sorted(names)}


def _gather(docs: list[dict], path: str, get) -> list:
    """One field of every document: a C-level ``itemgetter`` when the path is one key."""
    if "." not in path:
        try:
            return list(map(itemgetter(path), docs))
        except (KeyError, TypeError):
            pass
    return [get(d) for d in docs]


def _transpose(feats: list[dict], names: list[str]) -> list:
    """Feature dicts → one sequence per name (``None`` where a record lacks the feature)."""
    if len(names) > 1:
        try:
            return list(zip(*map(itemgetter(*names), feats)))
        except KeyError:
            pass
    return [[f.get(name) for f in feats] for name in names]
