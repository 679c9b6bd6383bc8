"""The fast path of decoding: a whole batch parsed by pyarrow's JSON reader.

The batch is read against an explicit schema built from the configuration
(numeric → float64, categorical → string, boolean → bool) straight into
columns, on pyarrow's threads, with no Python object per value. It is taken
only for a clean batch: every record one JSON object on one line, of a known
model with a version, a timestamp and a features object, every value of its
declared type, an id where the model requires one. Anything else returns
``None`` and the batch goes through the record-by-record path in
:mod:`driftline.streams.decode`, which names what is wrong with each record.
Both paths produce the same columns.

pyarrow's reader does not check UTF-8 and crashes the process on input nested
some thousands deep, so a batch that ``unsafe`` (from the record path, which
owns the rules) flags never reaches it; and nothing here raises: whatever
pyarrow or a conversion refuses sends the batch to the record path.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from driftline.config.settings import FeatureSpec, ModelSpec
from driftline.summary import is_segment_version, tagging_features
from driftline.types import MAX_VERSION, CategoricalColumn, Columns, NumericColumn

TS_MIN_MS = 0  # 1970-01-01T00:00:00.000Z (the range of every event time, both decoding paths)
TS_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

_TYPES = {"numeric": pa.float64(), "categorical": pa.string(), "boolean": pa.bool_()}


def build_schema(models: list[ModelSpec]) -> pa.Schema | None:
    """One schema for every configured model, or ``None`` if the fast path cannot apply
    (custom field paths, or one feature name declared with two kinds)."""
    fields: dict[str, pa.DataType] = {}
    preds: set[pa.DataType] = set()
    for m in models:
        f = m.fields
        if (f.model, f.version, f.ts, f.features, f.prediction) != (
                "model", "version", "ts", "features", "prediction") or f.id not in ("id", None):
            return None
        for name, spec in m.features.items():
            if fields.setdefault(name, _TYPES[spec.kind]) != _TYPES[spec.kind]:
                return None
        if m.prediction is not None:
            preds.add(_TYPES[m.prediction.kind])
    if len(preds) > 1:
        return None
    schema = [("model", pa.string()), ("version", pa.string()),
              ("features", pa.struct(list(fields.items())))]
    if preds:
        schema.append(("prediction", preds.pop()))
    return pa.schema(schema)


_REFUSED = (pa.ArrowException, UnicodeDecodeError, OverflowError, ValueError, TypeError, KeyError,
            IndexError)


class ArrowDecoder:
    def __init__(self, models: list[ModelSpec], parse_ts, unsafe=lambda values, buf: False):
        self.models = {m.name: m for m in models}
        self._tagged = [tagging_features(m) for m in models]  # a version spelled like a segment's: the record path
        self.schema = build_schema(models)
        self.parse_ts = parse_ts
        self.unsafe = unsafe
        self._need_id = {m.name for m in models if m.fields.id is not None}
        self._parse = pj.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="infer",
                                      newlines_in_values=False) if self.schema else None

    def decode(self, values: list, limits: dict[str, float] | None = None,
               rows: dict[tuple[str, str], np.ndarray] | None = None) -> dict[tuple[str, str], Columns] | None:
        """The columns of a clean batch, or ``None``: never an exception. ``rows``, if given, is
        filled with each group's rows (indices into ``values``)."""
        if self.schema is None or not values or None in values:
            return None
        try:
            return self._decode(values, limits, {} if rows is None else rows)
        except _REFUSED:
            return None

    def _decode(self, values: list, limits: dict[str, float] | None, rows: dict):
        buf = b"\n".join(values)
        if not buf.startswith(b"{") or self.unsafe(values, buf):  # pyarrow 26 crashes on a first row of null
            return None
        # one record per line, each an object: an empty record beside one holding two lines
        # would otherwise add up to the right row count (both are the record path's to name)
        if not _one_object_per_line(buf, len(values) - 1) or b"\r" in buf:
            return None
        table = pj.read_json(pa.py_buffer(buf), parse_options=self._parse,
                             read_options=pj.ReadOptions(block_size=max(1 << 20, len(buf) // 2 + 1)))
        if table.num_rows != len(values) or "ts" not in table.column_names:
            return None
        for name in ("model", "version", "ts", "features"):
            if table.column(name).null_count:
                return None
        models = pc.unique(table.column("model")).to_pylist()
        if any(m not in self.models for m in models):
            return None
        if self._need_id.intersection(models) and not _ids_present(table):
            return None
        ts, bad = _iso_ms(table.column("ts")) or self.parse_ts(_ts_values(table.column("ts")))
        if bad or (limits and ts.size and ts.max() > min(limits.get(m, np.inf) for m in models)):
            return None
        return self._groups(table, ts, len(models) == 1, rows)

    def _groups(self, table: pa.Table, ts: np.ndarray, one_model: bool, where: dict):
        versions = pc.unique(table.column("version")).to_pylist()
        if max(map(len, versions)) > MAX_VERSION or any(
                is_segment_version(v, tagged) for v in versions for tagged in self._tagged if tagged):
            return None  # the record path names the long one, or the one spelled like a segment's
        if one_model and len(versions) == 1:
            model = table.column("model")[0].as_py()
            where[(model, versions[0])] = np.arange(table.num_rows)
            return {(model, versions[0]): self._columns(model, table, ts)}
        key = pc.binary_join_element_wise(table.column("model"), table.column("version"), "\x1f")
        enc = key.combine_chunks().dictionary_encode()
        codes = enc.indices.to_numpy(zero_copy_only=False)
        out = {}
        for code, joined in enumerate(enc.dictionary.to_pylist()):
            rows = np.flatnonzero(codes == code)
            model, version = joined.split("\x1f", 1)
            out[(model, version)] = self._columns(model, table.take(rows), ts[rows])
            where[(model, version)] = rows
        return out

    def _columns(self, model: str, table: pa.Table, ts: np.ndarray) -> Columns:
        spec = self.models[model]
        feats = table.column("features").combine_chunks()
        cols = {name: _column(feats.field(name), fs) for name, fs in spec.features.items()}
        extra = {}
        for i, f in enumerate(feats.type):  # fields the schema did not declare were inferred
            if f.name not in spec.features and feats.field(i).null_count < len(feats):
                extra[f.name] = feats.field(i).is_valid().to_numpy(zero_copy_only=False)
        if spec.prediction is not None:
            cols["prediction"] = _column(table.column("prediction").combine_chunks()
                                         if "prediction" in table.column_names
                                         else pa.nulls(table.num_rows, _TYPES[spec.prediction.kind]),
                                         spec.prediction)
        ids = None
        if spec.labels is not None:  # checked by _ids_present: strings or integers, none null
            col = table.column("id")
            ids = col.to_numpy(zero_copy_only=False).astype(object) if pa.types.is_string(col.type) \
                else np.array([str(v) for v in col.to_pylist()], dtype=object)
        return Columns(ts, cols, extra, ids)


def _one_object_per_line(buf: bytes, n: int) -> bool:
    """Whether ``buf`` has exactly ``n`` newlines, each followed by ``{`` (as
    ``buf.count(b"\\n") == buf.count(b"\\n{") == n``, in one numpy pass instead of two searches)."""
    codes = np.frombuffer(buf, dtype=np.uint8)
    lines = np.flatnonzero(codes == 10)
    if lines.size != n or (n and lines[-1] + 1 == codes.size):  # a newline at the very end: no "{" after it
        return False
    return bool((codes[lines + 1] == 123).all())


def _ids_present(table: pa.Table) -> bool:
    """Every row has an id that is a string or an integer (the record path names the rest)."""
    if "id" not in table.column_names:
        return False
    col = table.column("id")
    return not col.null_count and (pa.types.is_string(col.type) or pa.types.is_integer(col.type))


def _iso_ms(col: pa.ChunkedArray) -> tuple[np.ndarray, list[int]] | None:
    """What ``parse_ts`` (streams/decode.py) makes of ISO-8601 strings that all end in ``Z``
    and start with an ASCII digit — its vectorised branch, with the tests and the ``Z``
    stripped by pyarrow instead of per string in Python; ``None``: ask ``parse_ts``."""
    if not pa.types.is_string(col.type) or col.null_count or not len(col):
        return None
    if not pc.all(pc.ends_with(col, "Z")).as_py():
        return None
    if not pc.all(pc.match_substring_regex(col, "^[0-9]")).as_py():
        return None
    text = pc.utf8_slice_codeunits(col, 0, -1).to_numpy(zero_copy_only=False)
    try:
        ms = text.astype("datetime64[ms]").astype(np.int64)
    except (ValueError, OverflowError):
        return None
    ok = (ms >= TS_MIN_MS) & (ms <= TS_MAX_MS)  # NaT is int64's minimum
    return np.where(ok, ms, 0), np.flatnonzero(~ok).tolist()


def _ts_values(col: pa.ChunkedArray):
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return col.to_numpy().tolist() if col.null_count == 0 else col.to_pylist()
    return col.to_pylist()


def _column(arr: pa.Array, spec: FeatureSpec):
    if spec.kind == "numeric":
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        missing = (arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count
                   else np.zeros(len(arr), dtype=bool))
        return NumericColumn(values, np.isfinite(values), missing)
    if spec.kind == "boolean":
        arr = pc.if_else(arr, "true", "false")
    # one Python string per distinct value, not per row; null is a category of its own (None)
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    codes = enc.indices.to_numpy(zero_copy_only=False)
    categories = np.empty(len(enc.dictionary), dtype=object)
    categories[:] = enc.dictionary.to_pylist()
    return CategoricalColumn(categories[codes], codes, categories)
