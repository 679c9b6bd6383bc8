"""Reading a sample: JSON lines (or raw records) into objects, garbage named and skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from driftline.errors import InputError

TABLES = (".csv", ".parquet", ".pq")
JSON_LINES = (".jsonl", ".json", ".ndjson")


@dataclass
class Sample:
    """Objects read from the input, and the lines skipped with their reasons."""

    source: str
    docs: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line (or record) number of each doc, from 1
    skipped: list[tuple[int, str]] = field(default_factory=list)
    read: int = 0

    def add(self, number: int, raw: bytes) -> None:
        self.read += 1
        doc, reason = parse_record(raw)
        if reason is None:
            self.docs.append(doc)
            self.lines.append(number)
        else:
            self.skipped.append((number, reason))


def parse_record(raw: bytes) -> tuple[dict | None, str | None]:
    """One JSON object, or why not (never raises)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"malformed JSON ({str(exc).split(':')[0]})"
    except Exception as exc:  # noqa: BLE001 - total: any parser failure is a reason
        return None, f"unreadable ({type(exc).__name__})"
    if not isinstance(doc, dict):
        return None, f"a JSON {type(doc).__name__}, not an object"
    return doc, None


def from_records(source: str, records: Iterable[bytes | None], limit: int) -> Sample:
    """A sample of raw records (e.g. Kafka message values), numbered from 1."""
    sample = Sample(source)
    for number, raw in enumerate(records, 1):
        if number > limit:
            break
        if raw is not None and raw.strip():
            sample.add(number, raw)
    return sample


def read_lines(path: str | Path, limit: int, advance: Callable[[int], None] = lambda n: None) -> Sample:
    """The first ``limit`` non-blank lines of a JSON-lines file; ``advance(bytes)`` reports progress."""
    path = Path(path)
    sample = Sample(str(path))
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, 1):
                advance(len(raw))
                if raw.strip():
                    sample.add(number, raw.rstrip(b"\r\n"))
                if sample.read >= limit:
                    break
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return sample


def is_table(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TABLES


def check_path(path: str | Path) -> Path:
    """The input file, if it exists and has a format ``init`` reads."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    if path.suffix.lower() not in TABLES + JSON_LINES:
        raise InputError(f"{path}: unknown format {path.suffix!r} (expected JSON lines: .jsonl/.json/.ndjson; "
                         "or a training table: .csv/.parquet)")
    return path
