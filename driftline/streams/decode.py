"""Decode a batch of JSON records into numpy columns per model and version.

Every record becomes either an event in the columns or a :class:`BadRecord`
whose reason names what is wrong; no input raises. The rules:

- **Bytes.** A record is UTF-8 JSON, one object. Any other encoding (UTF-16/32,
  a byte-order mark) or an invalid byte sequence, including surrogates encoded
  as bytes (CESU-8), is bad: ``not UTF-8: invalid byte at position N``. A string
  escape that leaves a lone surrogate (``"\\ud800"`` without its low half) is
  bad wherever it is: ``lone surrogate in a string`` — no database can store it.
- **Depth.** A record nested deeper than :data:`MAX_DEPTH` (1024, orjson's
  limit) is bad; one that needs the standard library's parser (below) is held
  to :data:`MAX_DEPTH_EXTENDED` (256), measured without recursion beforehand.
- **Numbers.** ``NaN``/``Infinity`` (which Python's ``json`` writes) are read by
  the standard library's parser, given text, never bytes. An integer beyond
  64 bits becomes a float, as orjson makes it, and one beyond the float range
  becomes infinity. In a feature or the prediction a non-finite number is an
  invalid value, counted per feature like ``NaN`` or a string: the record stays
  valid.
- **Fields.** ``model`` is a string; ``version`` a string or an integer of at most
  :data:`~driftline.types.MAX_VERSION` (100) characters (missing means ``"default"``);
  ``id`` is required unless the model maps it to ``null`` (``fields: {id: null}``) and is a string or an integer other than a
  boolean (its decimal string); ``ts`` is ISO-8601 or epoch milliseconds within
  years 1970..9999 (:data:`TS_MIN_MS`..:data:`TS_MAX_MS`), checked before any
  conversion. Duplicate keys: the last one wins.

A batch is parsed by orjson in one C-level ``map``; when a record breaks it,
the records are parsed one at a time so that each reason is named. Nothing in
here loops over features per event: each feature is gathered with one list
comprehension and converted by numpy.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from operator import itemgetter

import numpy as np
import orjson

from driftline.config.settings import FeatureSpec, ModelSpec
from driftline.streams.arrow_decode import TS_MAX_MS, TS_MIN_MS, ArrowDecoder  # 1970..9999
from driftline.summary import is_segment_version, tagging_features
from driftline.types import (
    INVALID,
    MAX_VERSION,
    BadRecord,
    Batch,
    CategoricalColumn,
    Columns,
    LabelColumns,
    NumericColumn,
)

MAX_DEPTH = 1024
MAX_DEPTH_EXTENDED = 256
_TS_RANGE = f"epoch ms {TS_MIN_MS}..{TS_MAX_MS}, years 1970..9999"

_FAILED = object()
_NUMBER = frozenset({int, float, type(None)})
_TEXT = frozenset({str, type(None)})
_ID = frozenset({str, int})
_INT_RANGE = (-(1 << 63), 1 << 64)  # what orjson keeps an integer; beyond, a float

# every escape except one that starts a lone surrogate; what is left of those is then found
_NOT_LONE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\(?!u[dD][89a-fA-F])[\s\S]")
_LONE = re.compile(rb"\\u[dD][89a-fA-F]")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


@dataclass
class Decoded:
    groups: dict[tuple[str, str], Columns] = field(default_factory=dict)
    bad: list[BadRecord] = field(default_factory=list)
    invalid: dict[tuple[str, str], int] = field(default_factory=dict)
    #: label events per model (only models with ``labels``)
    labels: dict[str, LabelColumns] = field(default_factory=dict)
    #: the batch rows (indices of ``Batch.values``) of each group's events and of each model's labels,
    #: in the columns' order (scale-out splits a decoded batch by partition with them)
    rows: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    label_rows: dict[str, np.ndarray] = field(default_factory=dict)


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


def _kind(v) -> str:
    return "null" if v is None else type(v).__name__


def _show(v) -> str:
    """A short repr for a reason: never a container's (it may be nested 1,000 deep)."""
    if isinstance(v, (dict, list)):
        return f"a {type(v).__name__}"
    if isinstance(v, int) and v.bit_length() > 64:
        return f"an integer of {v.bit_length()} bits"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def has_lone_surrogate(raw: bytes) -> bool:
    """Whether JSON text escapes a surrogate without its other half (``"\\ud800"``)."""
    return _LONE.search(raw) is not None and _LONE.search(_NOT_LONE.sub(b"", raw)) is not None


def nesting_depth(raw: bytes) -> int:
    """How deep JSON text nests, without recursion or regular expressions (which can
    backtrack): brackets outside strings, summed, in a few linear numpy passes. Where
    the text is malformed, the count is right up to the first error, where a parser stops."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    if not codes.size:
        return 0
    backslash = codes == 92
    at = np.arange(codes.size)
    last_other = np.maximum.accumulate(np.where(backslash, -1, at))  # last non-backslash at or before i
    run = np.empty(codes.size, dtype=np.int64)  # backslashes just before i
    run[0] = 0
    run[1:] = at[:-1] - last_other[:-1]
    quote = (codes == 34) & (run % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0  # the opening quote counts as inside, the closing as outside
    return int(np.cumsum(_OPEN[codes] * outside, dtype=np.int64).max(initial=0))


def unsafe_for_columnar(values: list[bytes], buf: bytes) -> bool:
    """True if a batch may break a rule that pyarrow's reader does not check (UTF-8,
    lone surrogates, depth: deep input crashes it): the record path judges it then.
    Cheap on clean batches: an ASCII test and the longest record's length."""
    if not buf.isascii():
        try:
            buf.decode("utf-8")
        except UnicodeDecodeError:
            return True
    if b"\\" in buf and has_lone_surrogate(buf):
        return True
    if max(map(len, values)) <= MAX_DEPTH:
        return False  # depth is at most the length
    return (max(map(bytes.count, values, repeat(b"["))) + max(map(bytes.count, values, repeat(b"{")))
            > MAX_DEPTH)


def _parse_int(text: str):
    """Integers as orjson reads them: exact within 64 bits, a float (maybe inf) beyond."""
    if len(text) <= 20:
        value = int(text)
        if _INT_RANGE[0] <= value < _INT_RANGE[1]:
            return value
    return float(text)


def _loads_one(value):
    if value is None:
        return _FAILED, "empty record (tombstone)"
    try:
        return orjson.loads(value), None
    except orjson.JSONDecodeError as exc:
        return _second_chance(value, exc)


def _second_chance(value, exc: orjson.JSONDecodeError):
    """What orjson refused: name why, or read it with the standard library (NaN, huge numbers)."""
    if not isinstance(value, (bytes, bytearray)):
        return _FAILED, f"record is a {type(value).__name__}, expected bytes"
    try:
        text = bytes(value).decode("utf-8")  # strict: surrogates as bytes are invalid too
    except UnicodeDecodeError as err:
        return _FAILED, f"not UTF-8: invalid byte at position {err.start}"
    message = str(exc)
    if "surrogate" in message or has_lone_surrogate(value):
        return _FAILED, "lone surrogate in a string"
    if "depth limit" in message:
        return _FAILED, f"nested deeper than {MAX_DEPTH} levels"
    if nesting_depth(value) > MAX_DEPTH_EXTENDED:
        return _FAILED, f"nested deeper than {MAX_DEPTH_EXTENDED} levels (with NaN, Infinity or a huge number)"
    try:  # text, never bytes: json.loads would guess UTF-16/32 from bytes
        return json.loads(text, parse_int=_parse_int), None
    except (ValueError, RecursionError):
        return _FAILED, f"malformed JSON: {exc}"


def parse_all(values: list[bytes | None]) -> tuple[list, dict[int, str]]:
    """Parse every record; return the documents and ``{index: reason}`` for failures."""
    if values and None not in values:
        try:
            return list(map(orjson.loads, values)), {}
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
    """Epoch milliseconds from ISO-8601 strings or epoch-ms numbers within
    :data:`TS_MIN_MS`..:data:`TS_MAX_MS`; the indices of the others listed."""
    kinds = set(map(type, raw))
    if kinds <= {int, float}:
        try:
            arr = np.array(raw, dtype=np.float64)
        except OverflowError:  # an integer beyond the float range: judged one by one
            arr = None
        if arr is not None:
            ok = (arr >= TS_MIN_MS) & (arr <= TS_MAX_MS)  # False for NaN
            return np.where(ok, arr, 0).astype(np.int64), np.flatnonzero(~ok).tolist()
    if kinds == {str} and all(s.endswith("Z") and s[:1].isdigit() for s in raw):  # numpy reads "nowZ" too
        try:
            ms = np.array([s[:-1] for s in raw], dtype="datetime64[ms]").astype(np.int64)
            ok = (ms >= TS_MIN_MS) & (ms <= TS_MAX_MS)  # NaT is int64's minimum
            return np.where(ok, ms, 0), np.flatnonzero(~ok).tolist()
        except (ValueError, OverflowError):
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
    if isinstance(v, (int, float)):  # range first: no conversion can overflow
        return int(v) if TS_MIN_MS <= v <= TS_MAX_MS else None
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ms = int(dt.timestamp() * 1000)
        except (ValueError, OverflowError):
            return None
        return ms if TS_MIN_MS <= ms <= TS_MAX_MS else None
    return None


def _ts_problem(name: str, v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"field '{name}' is out of range ({_TS_RANGE}): {_show(v)}"
    if isinstance(v, str):
        try:
            datetime.fromisoformat(v)
            return f"field '{name}' is out of range ({_TS_RANGE}): {_show(v)}"
        except ValueError:
            pass
    return f"field '{name}' is not ISO-8601 or epoch ms: {_show(v)}"


def _id_problem(name: str, v) -> str:
    if v is _FAILED or v is None:
        return f"missing field '{name}'"
    return f"field '{name}' is a {_kind(v)}, expected a string or integer"


def event_id(v) -> str | None:
    """An event's id as text: a string as it is, an integer (not a boolean) in decimal."""
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool) and _INT_RANGE[0] <= v < _INT_RANGE[1]:
        return str(v)
    return None


def numeric_column(raw: list) -> NumericColumn:
    if set(map(type, raw)) <= _NUMBER:
        try:
            values = np.array(raw, dtype=np.float64)
        except OverflowError:  # an integer beyond the float range: an invalid value
            values = None
        if values is not None:
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
        elif type(v) in (int, float):
            try:
                f = float(v)
            except OverflowError:
                continue
            if math.isfinite(f):
                values[i] = f
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
    if isinstance(v, bool):
        return "true" if v else "false"
    return event_id(v) or INVALID  # an integer in decimal; anything else invalid


def _column(raw: list, spec: FeatureSpec):
    return numeric_column(raw) if spec.kind == "numeric" else categorical_column(raw, spec.kind)


class Decoder:
    """Turns raw batches into :class:`Columns` per ``(model, version)``."""

    def __init__(self, models: list[ModelSpec]):
        self.models = {m.name: m for m in models}
        self._labelled = {m.name for m in models if m.labels is not None}
        #: per model, the features whose segments tag a version (``v3[country=DE]``): drift's and performance's
        self._tagged = {m.name: tagging_features(m) for m in models}
        self._model_paths = [_getter(p) for p in dict.fromkeys(m.fields.model for m in models)]
        #: (label path, features path) of the models with labels: a label event has the one, not the other
        #: (none: the default shape, so a label sent to a configuration without labels is named as such)
        self._label_paths = [(_getter(a), _getter(b)) for a, b in dict.fromkeys(
            (m.fields.label, m.fields.features) for m in models if m.labels is not None)] or \
            [(_getter("label"), _getter("features"))]
        self._arrow = ArrowDecoder(models, parse_ts, unsafe_for_columnar)
        self._get = {m.name: {k: _getter(getattr(m.fields, k))
                              for k in ("version", "id", "ts", "features", "prediction", "label")
                              if getattr(m.fields, k) is not None}
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
        except (KeyError, TypeError):  # a missing key, or an unhashable (wrong) value
            return None
        if len(pairs) != 1:
            return None
        (model, version), = pairs
        if not isinstance(model, str) or model not in self.models or not isinstance(version, str) \
                or len(version) > MAX_VERSION or is_segment_version(version, self._tagged[model]):
            return None
        return model, version

    def decode(self, batch: Batch, now_ms: int | None = None) -> Decoded:
        """Decode a batch; with ``now_ms``, events too far in the future are bad records."""
        if self._labelled:
            split = self._split_labels(batch, now_ms)
            if split is not None:
                return split
        rows: dict = {}
        fast = self._arrow.decode(batch.values, self._limits(now_ms), rows)
        if fast is not None:
            return Decoded(groups=fast, rows=rows)
        return self.decode_records(batch, now_ms)

    def _split_labels(self, batch: Batch, now_ms: int | None) -> Decoded | None:
        """A batch of events and label events: the events through the columnar path, the records
        that may be labels (``"label"`` without ``"features"`` in their bytes) through the record
        path; ``None`` (decode it whole) unless both parts go cleanly."""
        values = batch.values
        # '"features"' first: an event names it early and a label is short (half the time of the other order)
        maybe = [i for i, v in enumerate(values) if type(v) is bytes and b'"features"' not in v and b'"label"' in v]
        if not maybe or len(maybe) == len(values):
            return None
        keep = np.ones(len(values), dtype=bool)
        keep[maybe] = False
        rest = np.flatnonzero(keep).tolist()
        rows: dict = {}
        fast = self._arrow.decode([values[i] for i in rest], self._limits(now_ms), rows)
        if fast is None:
            return None
        slow = self.decode_records(Batch([values[i] for i in maybe], lambda j: batch.position(maybe[j])), now_ms)
        if slow.groups or slow.invalid:  # an event among them: keep arrival order by decoding it whole
            return None
        at, of = np.asarray(rest), np.asarray(maybe)
        return Decoded(groups=fast, bad=slow.bad, labels=slow.labels, rows={k: at[r] for k, r in rows.items()},
                       label_rows={k: of[r] for k, r in slow.label_rows.items()})

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
        labels = ([i for i, d in enumerate(docs) if self._is_label(d) and i not in errors]
                  if self._labelled else [])
        single = None if errors or labels or not docs else self._single_group(docs)
        if single is not None:
            groups[single] = list(range(len(docs)))
        skip = set(labels)
        for i, doc in enumerate(docs if single is None else ()):
            if i in errors or i in skip:
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
                out.rows[key] = _kept(idx, bad)
        if labels:
            self._labels(labels, docs, batch, out)
        for i, reason in sorted(errors.items()):
            model, version = self._route(docs[i])[0]
            if self._is_label(docs[i]):  # a label event that cannot be taken: not an invalid event of a window
                reason, version = self._label_route(docs[i])[1] or reason, None
            out.bad.append(BadRecord(reason, batch.values[i], batch.position(i), model, version))
            if model in self.models and version is not None:
                out.invalid[(model, version)] = out.invalid.get((model, version), 0) + 1
        return out

    def _is_label(self, doc) -> bool:
        """A label event: an object with a label (``fields.label``, default ``label``) and without
        features (``fields.features``), by the paths of some model with labels."""
        return type(doc) is dict and any(label(doc) is not _FAILED and feats(doc) is _FAILED
                                         for label, feats in self._label_paths)

    def _model_of(self, doc: dict) -> tuple[str | None, str | None]:
        """``(model, None)`` for a configured model's name by any model's path, else ``(None, why)``."""
        name = _FAILED
        for get in self._model_paths:
            name = get(doc)
            if name is not _FAILED:
                break
        if name is _FAILED or name is None:
            return None, "missing field 'model'"
        if not isinstance(name, str):
            return None, f"field 'model' is a {_kind(name)}, expected a string"
        if name not in self.models:
            return None, f"unknown model {_show(name)}"
        return name, None

    def _label_route(self, doc: dict) -> tuple[str | None, str | None]:
        """A label event's model, or what is known of it and why the label cannot be taken."""
        name, problem = self._model_of(doc)
        if problem is not None:
            return None, "label event: " + problem
        if name not in self._labelled:
            return name, f"label event for model {_show(name)}, which has no 'labels' configured"
        return name, None

    def _labels(self, rows: list[int], docs: list, batch: Batch, out: Decoded) -> None:
        """Label events into :class:`LabelColumns` per model; the others dead-lettered with why."""
        by_model: dict[str, list[int]] = {}
        for i in rows:
            name, problem = self._label_route(docs[i])
            if problem:
                out.bad.append(BadRecord(problem, batch.values[i], batch.position(i), name))
            else:
                by_model.setdefault(name, []).append(i)
        for name, idx in by_model.items():
            cols, bad = self._label_columns(name, [docs[i] for i in idx])
            for j, reason in bad.items():
                out.bad.append(BadRecord(reason, batch.values[idx[j]], batch.position(idx[j]), name))
            if cols is not None:
                out.labels[name] = cols
                out.label_rows[name] = _kept(idx, bad)

    def _label_columns(self, model: str, docs: list[dict]) -> tuple[LabelColumns | None, dict[int, str]]:
        spec, get = self.models[model], self._get[model]
        ids = _gather(docs, spec.fields.id, get["id"])
        ts_raw = _gather(docs, spec.fields.ts, get["ts"])
        raw = _gather(docs, spec.fields.label, get["label"])
        versions = _gather(docs, spec.fields.version, get["version"])
        bad: dict[int, str] = {}
        if not set(map(type, ids)) <= _ID:
            for j, v in enumerate(ids):
                if event_id(v) is None:
                    bad[j] = "label event: " + _id_problem(spec.fields.id, v)
        ts, bad_ts = parse_ts(ts_raw)
        for j in bad_ts:
            v = ts_raw[j]
            bad.setdefault(j, "label event: " + (f"missing field '{spec.fields.ts}'" if v is _FAILED or v is None
                                                 else _ts_problem(spec.fields.ts, v)))
        label = _label_values(raw)
        for j in np.flatnonzero(~np.isfinite(label)).tolist():
            bad.setdefault(j, "label event: " + _label_problem(raw[j], spec.fields.label))
        if spec.labels.task == "binary":  # another value would use up its prediction as an invalid pair
            for j in np.flatnonzero(np.isfinite(label) & (label != 0) & (label != 1)).tolist():
                bad.setdefault(j, f"label event: field '{spec.fields.label}' is {_show(raw[j])}, expected 0 or 1 "
                                  "(or true/false) for a binary model")
        keep = np.ones(len(docs), dtype=bool)
        keep[list(bad)] = False
        if not keep.any():
            return None, bad
        text = id_array(ids)
        version = np.array([None if v is _FAILED or v is None else
                            (v if isinstance(v, str) else event_id(v)) for v in versions], dtype=object)
        return LabelColumns(text[keep], ts[keep], label[keep], version[keep]), bad

    def _route(self, doc) -> tuple[tuple[str | None, str | None], str | None]:
        """``((model, version), None)``, or what is known of them and the reason."""
        if not isinstance(doc, dict):
            return (None, None), f"record is a JSON {_kind(doc)}, expected an object"
        name, problem = self._model_of(doc)
        if problem is not None:
            return (None, None), problem
        version = self._get[name]["version"](doc)
        if version is _FAILED or version is None:
            return (name, "default"), None
        text = version if isinstance(version, str) else event_id(version)
        path = self.models[name].fields.version
        if text is None:
            return (name, None), f"field '{path}' is a {_kind(version)}, expected a string or integer"
        if len(text) > MAX_VERSION:
            return (name, None), f"field '{path}' is {len(text)} characters long, at most {MAX_VERSION}"
        if is_segment_version(text, self._tagged[name]):
            return (name, None), (f"field '{path}' is {text!r}, spelled like a segment's version (model {name}'s "
                                  f"segments: {', '.join(self._tagged[name])})")
        return (name, text), None

    def _columns(self, model: str, docs: list[dict],
                 limit: float | None = None) -> tuple[Columns | None, dict[int, str]]:
        spec, get = self.models[model], self._get[model]
        bad, feats, ts_raw = self._bad_fields(spec, get, docs)
        ts_path = spec.fields.ts
        ts, bad_ts = parse_ts([0 if j in bad else ts_raw[j] for j in range(len(docs))] if bad else ts_raw)
        for j in bad_ts:
            bad.setdefault(j, _ts_problem(ts_path, ts_raw[j]))
        if limit is not None:
            for j in np.flatnonzero(ts > limit).tolist():
                bad.setdefault(j, f"field '{ts_path}' is {_show(ts_raw[j])}, more than "
                                  f"{spec.window.max_future:g} s ahead of the clock")
        if spec.fields.id is not None:
            ids = _gather(docs, spec.fields.id, get["id"])
            if not set(map(type, ids)) <= _ID:
                for j, v in enumerate(ids):
                    if event_id(v) is None:
                        bad.setdefault(j, _id_problem(spec.fields.id, v))
        if bad:
            keep = [j for j in range(len(docs)) if j not in bad]
            if not keep:
                return None, bad
            feats, docs, ts = [feats[j] for j in keep], [docs[j] for j in keep], ts[keep]
            if spec.labels is not None:
                ids = [ids[j] for j in keep]
        columns = dict(zip(spec.features, map(_column, _transpose(feats, list(spec.features)),
                                                 spec.features.values())))
        if spec.prediction is not None:
            preds = _gather(docs, spec.fields.prediction, get["prediction"])
            if _FAILED in preds:
                preds = [None if p is _FAILED else p for p in preds]
            columns["prediction"] = _column(preds, spec.prediction)
        text = None if spec.labels is None else id_array(ids)
        return Columns(ts, columns, _extra(feats, spec.features), text), bad

    @staticmethod
    def _bad_fields(spec: ModelSpec, get: dict, docs: list[dict]) -> tuple[dict[int, str], list, list]:
        """Records without a features object or a timestamp, by index; the features and ts read."""
        feats = _gather(docs, spec.fields.features, get["features"])
        ts_raw = _gather(docs, spec.fields.ts, get["ts"])
        if set(map(type, feats)) == {dict} and _FAILED not in ts_raw and None not in ts_raw:
            return {}, feats, ts_raw
        bad: dict[int, str] = {}
        for j, (f, t) in enumerate(zip(feats, ts_raw)):
            if f is _FAILED:
                bad[j] = f"missing field '{spec.fields.features}'"
            elif not isinstance(f, dict):
                bad[j] = f"field '{spec.fields.features}' is a {_kind(f)}, expected an object"
            elif t is _FAILED or t is None:
                bad[j] = f"missing field '{spec.fields.ts}'"
        return bad, feats, ts_raw




def _kept(idx: list[int], bad: dict[int, str]) -> np.ndarray:
    """The batch rows ``idx`` without the ``bad`` ones (indices into ``idx``)."""
    return np.asarray(idx if not bad else [i for j, i in enumerate(idx) if j not in bad], dtype=np.int64)


def id_array(ids: list) -> np.ndarray:
    """Ids (checked: strings or integers) as an object array of text."""
    if set(map(type, ids)) <= {str}:
        return np.array(ids, dtype=object).reshape(len(ids))
    out = np.empty(len(ids), dtype=object)
    out[:] = [v if type(v) is str else event_id(v) for v in ids]
    return out


def _label_values(raw: list) -> np.ndarray:
    """Labels as float64 (a boolean as 0/1); NaN where a label is not a finite number or a boolean."""
    if set(map(type, raw)) <= {int, float, bool}:
        try:
            return np.array(raw, dtype=np.float64)
        except OverflowError:
            pass
    out = np.full(len(raw), np.nan)
    for j, v in enumerate(raw):
        if type(v) in (int, float, bool):
            try:
                out[j] = float(v)
            except OverflowError:
                pass
    return out


def _label_problem(v, path: str = "label") -> str:
    if v is None:
        return f"field '{path}' is null, expected a number or a boolean"
    if isinstance(v, float) or isinstance(v, int):
        return f"field '{path}' is not finite: {_show(v)}"
    return f"field '{path}' is a {_kind(v)}, expected a number or a boolean"


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
