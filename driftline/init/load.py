"""From what the user named (a file, or records sampled from a topic) to a checked proposal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from driftline.config import parse_settings
from driftline.errors import ConfigError, DriftlineError, InputError, ReferenceError_
from driftline.init import render
from driftline.init.propose import Proposal, from_events, from_table, is_flat
from driftline.init.sample import Sample, check_path, from_records, is_table, read_lines
from driftline.streams.files import read_table, table_columns

LIMIT = 200_000  # records read at most


def _reference(path: str | None) -> tuple[str, list[str]] | None:
    if path is None:
        return None
    try:
        return path, table_columns(path)
    except ReferenceError_ as exc:
        raise InputError(str(exc)) from exc


def _table(path: Path, name: str | None) -> Proposal:
    try:
        columns = read_table(path)
    except ReferenceError_ as exc:
        raise InputError(str(exc)) from exc
    return from_table(columns, str(path), name or model_name(path))


def model_name(path: Path) -> str:
    """A model name from a training file's name: ``fraud_train.csv`` → ``fraud_train``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem).strip("_")
    return stem or "model"


def propose_file(path: str | Path, reference: str | None = None, name: str | None = None, limit: int = LIMIT,
                 advance: Callable[[int], None] = lambda n: None) -> Proposal:
    """A proposal from events in JSON lines, or from a training table (CSV, Parquet, flat JSON lines)."""
    path = check_path(path)
    if is_table(path):
        return _table(path, name)
    sample = read_lines(path, limit, advance)
    if sample.docs and is_flat(sample):
        return _table(path, name)
    return from_events(sample, _reference(reference))


def propose_records(source: str, records: list[bytes], reference: str | None = None,
                    limit: int = LIMIT) -> Proposal:
    return from_events(from_records(source, records, limit), _reference(reference))


def checked_yaml(proposal: Proposal, kafka: dict | None = None) -> str:
    """The configuration text, validated as ``check-config`` would (a bug here, not the user's)."""
    text = render.yaml_text(proposal, kafka)
    try:
        parse_settings(yaml.safe_load(text), source="the proposed configuration", env={})
    except ConfigError as exc:
        raise DriftlineError(f"driftline init proposed an invalid configuration (a bug: please report it "
                             f"with the input's shape): {exc}") from exc
    return text


__all__ = ["Sample", "checked_yaml", "from_events", "is_table", "model_name", "propose_file", "propose_records"]
