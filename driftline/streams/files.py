"""Files: a JSON-lines source for ``driftline replay`` and reference tables."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import orjson

from driftline.errors import InputError, ReferenceError_
from driftline.types import Batch, SourcePosition

log = logging.getLogger(__name__)


class FileSource:
    """Reads a JSON-lines file in batches; a record's offset is its line number (from 0).

    Its topic, ``file:<name>@<hash of the first non-blank line>``, names the file by its
    content, so two different files of the same name keep separate positions and
    a file that grew keeps its own: ``resume`` continues after the lines already
    stored for it.
    """

    def __init__(self, path: str | Path, batch_size: int = 10000, start: int = 0):
        self.path = Path(path)
        self.batch_size = batch_size
        try:
            self._fh = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror} (an events file in JSON lines; "
                             "standard input is not read)") from exc
        self.topic = f"file:{self.path.name}@{self._head()}"
        self.line = 0
        self.done = False
        self._skip(start)
        self.first = self.line

    def _head(self) -> str:
        """A hash of the first line that is not blank (12 hex digits)."""
        line = b""
        for line in self._fh:
            if line.strip():
                break
        self._fh.seek(0)
        return hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()[:12]

    def _skip(self, lines: int) -> None:
        while self.line < lines and self._fh.readline():
            self.line += 1

    def _seek(self, line: int) -> None:
        self._fh.seek(0)
        self.line = 0
        self.done = False
        self._skip(line)

    def skip_stored(self, offsets: dict[tuple[str, int], int]) -> int:
        """Skip the lines ``offsets`` (a store's) say were already processed; return how many."""
        stored = offsets.get((self.topic, 0), 0)
        self._skip(stored)
        self.first = self.line
        if self.line < stored:
            log.warning("%s has %d lines, fewer than the %d already processed from a file with the "
                        "same name and first line; nothing of it is processed again", self.path,
                        self.line, stored)
        return stored

    def poll(self) -> Batch:
        values, offsets, first = [], [], self.line
        while len(values) < self.batch_size:
            raw = self._fh.readline()
            if not raw:
                self.done = True
                break
            self.line += 1
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                values.append(raw)
                offsets.append(self.line - 1)
        topic = self.topic

        def position(i: int) -> SourcePosition:
            return SourcePosition(topic, 0, offsets[i])

        return Batch(values, position, {(topic, 0): self.line} if self.line > first else {})

    def bytes_read(self) -> int:
        """How far into the file reading has got (for a progress bar)."""
        return self._fh.tell()

    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None

    def rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        """Read again from the line in ``offsets`` (or from where this run started)."""
        self._seek(offsets.get((self.topic, 0), self.first))

    def pause(self) -> None:
        pass

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        self.rewind(offsets)

    def outage(self) -> float:
        return 0.0

    def commit(self, offsets) -> None:
        pass

    def close(self) -> None:
        self._fh.close()


def read_table(path: str | Path) -> dict[str, list | np.ndarray]:
    """Columns of a CSV, Parquet or JSON-lines file.

    JSON lines may be flat rows or events of the default shape, whose
    ``features`` are flattened and whose ``prediction`` becomes a column.
    """
    path = Path(path)
    if not path.exists():
        raise ReferenceError_(f"reference file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            return _arrow(pq.read_table(path))
        if suffix == ".csv":
            import pyarrow.csv as pcsv
            return _arrow(pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True)))
        if suffix in (".jsonl", ".json", ".ndjson"):
            return _jsonl(path)
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"cannot read reference {path}: {exc}") from exc
    raise ReferenceError_(f"reference {path}: unknown format {suffix!r} (expected .csv, .parquet, .jsonl)")


def table_columns(path: str | Path) -> list[str]:
    """The column names of a reference table, from its head only: a CSV file's header
    line, a Parquet file's schema, or the first record of JSON lines (an event's
    ``features`` and ``prediction``). Raises :class:`ReferenceError_` if it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".jsonl", ".json", ".ndjson"):
        raise ReferenceError_(f"{path}: unknown format {suffix!r} (expected .csv, .parquet, .jsonl)")
    if not path.exists():
        raise ReferenceError_(f"reference file {path} does not exist")
    if not path.is_file():
        raise ReferenceError_(f"reference {path} is not a file")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            return list(pq.read_schema(path).names)
        with path.open("rb") as fh:
            first = next((line for line in fh if line.strip()), None)
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"cannot read reference {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if first is None:
        raise ReferenceError_(f"reference {path} is empty")
    return _csv_header(path, first) if suffix == ".csv" else _first_record(path, first)


def _csv_header(path: Path, line: bytes) -> list[str]:
    import csv
    try:
        return next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceError_(f"cannot read reference {path}: its header: {exc}") from exc


def _first_record(path: Path, line: bytes) -> list[str]:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ReferenceError_(f"{path}: its first record is malformed JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise ReferenceError_(f"{path}: its first record is not a JSON object")
    if isinstance(row.get("features"), dict):
        return [*row["features"], "prediction"]
    return list(row)


def _arrow(table) -> dict:
    out = {}
    for name in table.column_names:
        col = table.column(name)
        kind = str(col.type)
        if kind.startswith(("int", "uint", "float", "double", "decimal")):
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[name] = col.to_pylist()
    return out


def _jsonl(path: Path) -> dict:
    rows = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ReferenceError_(f"{path}:{n}: malformed JSON: {exc}") from exc
            if isinstance(row.get("features"), dict):
                row = {**row["features"], "prediction": row.get("prediction"),
                       **({"label": row["label"]} if "label" in row else {})}  # a labelled reference
            rows.append(row)
    names = list(dict.fromkeys(k for r in rows for k in r))
    out: dict = {}
    for name in names:
        col = [r.get(name) for r in rows]
        if set(map(type, col)) <= {int, float, type(None)}:
            out[name] = np.array(col, dtype=np.float64)
        else:
            out[name] = col
    return out
