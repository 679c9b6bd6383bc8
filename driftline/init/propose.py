"""A proposal per model from a sample of events or a training table."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from driftline.errors import InputError
from driftline.init import shape as shapes
from driftline.init.kinds import Inferred, infer
from driftline.init.sample import Sample
from driftline.init.timing import TARGET, WindowProposal, count_window, first_n, propose_window
from driftline.streams.decode import TS_MAX_MS, event_id, parse_ts

MIN_EVENTS = 200  # a reference of at least 100 events and windows after it
LABELS = ("label", "target", "y", "y_true", "ground_truth", "actual", "outcome")
EXAMPLES = 5  # skipped lines named one by one; the rest counted


@dataclass
class ModelProposal:
    name: str
    events: int
    versions: Counter
    features: list[Inferred]
    prediction: Inferred | None
    window: WindowProposal
    reference: dict
    reference_why: str
    max_future_off: bool = False
    notes: list[str] = field(default_factory=list)

    def monitored(self) -> list[Inferred]:
        return [f for f in self.features if f.kind is not None]


@dataclass
class Proposal:
    source: str
    mapping: dict  # the ``fields:`` entries that differ from the default shape
    shape_why: str
    models: list[ModelProposal]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # lines that are not JSON objects
    unfit: list[tuple[int, str]] = field(default_factory=list)  # objects the config would dead-letter
    read: int = 0
    rejected: list[str] = field(default_factory=list)  # models seen but not proposed, and why


def _no_events(sample: Sample) -> InputError:
    if not sample.skipped:
        return InputError(f"{sample.source}: no records to learn from (the input is empty)")
    line, reason = sample.skipped[0]
    return InputError(f"{sample.source}: none of its {sample.read} record(s) is a JSON object "
                      f"(line {line}: {reason})")


def is_flat(sample: Sample) -> bool:
    """Rows without a model or a features object: a training table in JSON lines."""
    found = shapes.find(sample.docs)
    return found.model is None and found.features is None and found.ts is None


def _require(found: shapes.Shape, sample: Sample) -> None:
    keys = ", ".join(list(dict.fromkeys(k for d in sample.docs[:100] for k in d))[:12])
    for part, what in (("model", "the model's name (e.g. \"model\": \"fraud\")"),
                       ("features", "the features as one object (e.g. \"features\": {\"amount\": 1.5})"),
                       ("ts", "the event time (ISO-8601 or epoch milliseconds, e.g. \"ts\": 1764590000000)")):
        if getattr(found, part) is None:
            raise InputError(f"{sample.source}: found no field for {what}; the records have: {keys}. "
                             f"driftline needs a model name, a timestamp and a features object in each event")


def from_events(sample: Sample, reference: tuple[str, list[str]] | None = None,
                now_ms: int | None = None) -> Proposal:
    """Propose models from sampled events; ``reference`` is a training file's path and columns."""
    if not sample.docs:
        raise _no_events(sample)
    found = shapes.find(sample.docs)
    _require(found, sample)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    groups: dict[str, list[int]] = {}
    unfit: list[tuple[int, str]] = []
    for i, doc in enumerate(sample.docs):
        name = shapes.get(doc, found.model)
        if isinstance(name, str) and name:
            groups.setdefault(name, []).append(i)
        else:
            unfit.append((sample.lines[i], f"field '{found.model}' is not a model name"))
    models, rejected = [], []
    for name, idx in groups.items():
        model = _model(name, [sample.docs[i] for i in idx], [sample.lines[i] for i in idx], found,
                       reference, now_ms, unfit, sample.source)
        if isinstance(model, str):
            rejected.append(model)
        else:
            models.append(model)
    if not models:
        raise InputError(f"{sample.source}: no model can be proposed: " + ("; ".join(rejected) or "no model names"))
    mapping = found.mapping()
    why = ("the default event shape (model, version, id, ts, features, prediction)" if not mapping else
           "a nested shape: " + ", ".join(f"{k} at {v or 'nowhere'}" for k, v in mapping.items()))
    return Proposal(sample.source, mapping, why, models, sample.skipped, sorted(unfit), sample.read, rejected)


def _usable(docs: list[dict], lines: list[int], found: shapes.Shape, unfit: list,
            source: str) -> tuple[list[dict], list[int]]:
    """The events a configuration of this shape would accept (the others go to ``unfit``)."""
    keep, ts_raw = [], []
    for doc, line in zip(docs, lines):
        feats, ts = shapes.get(doc, found.features), shapes.get(doc, found.ts)
        ident = shapes.get(doc, found.id) if found.id else "-"
        if not isinstance(feats, dict):
            unfit.append((line, f"no '{found.features}' object"))
        elif ts is None:
            unfit.append((line, f"no '{found.ts}'"))
        elif event_id(ident) is None:
            unfit.append((line, f"field '{found.id}' is missing or not a string or integer"))
        else:
            keep.append((doc, line))
            ts_raw.append(ts)
    ms, bad = parse_ts(ts_raw)
    bad = set(bad)
    for j in sorted(bad):
        unfit.append((keep[j][1], f"field '{found.ts}' is not ISO-8601 or epoch ms: {str(ts_raw[j])[:40]}"))
    if bad and len(bad) == len(keep):
        raise InputError(_ts_hint(found.ts, ts_raw, source))
    good = [j for j in range(len(keep)) if j not in bad]
    return [keep[j][0] for j in good], [int(ms[j]) for j in good]


def _ts_hint(path: str, raw: list, source: str) -> str:
    example = next((v for v in raw if v is not None), None)
    hint = ""
    if isinstance(example, (int, float)) and example > TS_MAX_MS:
        hint = " (these look like epoch micro- or nanoseconds: driftline reads epoch milliseconds)"
    return f"{source}: no event has a readable '{path}': ISO-8601 or epoch milliseconds expected, e.g. {example!r}{hint}"


def _model(name: str, docs: list[dict], lines: list[int], found: shapes.Shape, reference, now_ms: int,
           unfit: list, source: str) -> ModelProposal | str:
    """A model's proposal, or why there is none."""
    docs, ts = _usable(docs, lines, found, unfit, source)
    if len(docs) < MIN_EVENTS:
        return f"model {name!r} has {len(docs)} usable event(s); each model needs at least {MIN_EVENTS}"
    versions = Counter(_version(shapes.get(d, found.version)) if found.version else "default" for d in docs)
    feats = [shapes.get(d, found.features) for d in docs]
    names = list(dict.fromkeys(k for f in feats for k in f))
    features = [infer(n, [f.get(n) for f in feats]) for n in names]
    prediction = infer("prediction", [shapes.get(d, found.prediction) for d in docs]) if found.prediction else None
    notes = []
    if reference is None:
        n_ref = first_n(len(docs))
        ref, ref_why = {"first_n": n_ref}, (f"the first {n_ref} events (half this sample) become the reference; "
                                            "in production more is better, e.g. a day of traffic")
        window = propose_window(ts, len(docs) - n_ref)
    else:
        path, columns = reference
        features = [_in_table(f, columns) for f in features]
        ref, ref_why = {"path": path}, f"the training file {path} is the reference"
        window = propose_window(ts, len(docs))
    if ts and max(ts) < 1e11:
        notes.append(f"'{found.ts}' looks like epoch seconds; driftline reads numbers as epoch milliseconds, "
                     "so stored times will be wrong (send milliseconds or ISO-8601)")
    future = bool(ts) and max(ts) > now_ms + 86_400_000
    if future:
        notes.append("some events are stamped more than a day ahead of this clock: window.max_future is off")
    if not any(f.kind for f in features):
        return f"model {name!r}: no feature can be monitored (" + \
            ("; ".join(f"{f.name}: {f.flag}" for f in features[:EXAMPLES]) or "its features objects are empty") + ")"
    return ModelProposal(name, len(docs), versions, features, prediction, window, ref, ref_why, future, notes)


def _version(v: object) -> str:
    return (v if isinstance(v, str) else event_id(v)) or "default"


def _in_table(f: Inferred, columns: list[str]) -> Inferred:
    if f.kind is None or f.name in columns:
        return f
    return Inferred(f.name, None, f.values, f.missing, f.distinct, flag="not a column of the reference file")


def _column(values) -> list:
    if isinstance(values, np.ndarray):
        return [None if np.isnan(v) else float(v) for v in values.tolist()]
    return list(values)


def from_table(columns: dict, source: str, name: str) -> Proposal:
    """Propose one model from a training table, which becomes its reference."""
    rows = max((len(v) for v in columns.values()), default=0)
    if rows == 0:
        raise InputError(f"{source}: the table has no rows")
    names = {n.lower(): n for n in columns}
    pred_name = next((names[p] for p in shapes.PREDICTION if p in names), None)
    features, notes = [], []
    for col, values in columns.items():
        if col == pred_name:
            continue
        low = col.lower()
        if low in LABELS:
            features.append(Inferred(col, None, rows, 0, 0, flag="looks like the ground truth (labels are not "
                                                                 "monitored as features)"))
        elif low in shapes.TS or low in shapes.MODEL or low in shapes.VERSION:
            features.append(Inferred(col, None, rows, 0, 0, flag="event metadata, not a feature"))
        else:
            features.append(infer(col, _column(values)))
    prediction = infer("prediction", _column(columns[pred_name])) if pred_name else None
    if pred_name and pred_name != "prediction":
        notes.append(f"column {pred_name!r} is taken as the prediction: reference columns are matched by name, "
                     f"so rename it to 'prediction' in the file or leave the prediction out")
        prediction = None
    if not any(f.kind for f in features):
        raise InputError(f"{source}: no column can be monitored: "
                         + "; ".join(f"{f.name}: {f.flag}" for f in features))
    window = count_window(2 * TARGET, "a training table has no event times to measure a rate")
    model = ModelProposal(name, rows, Counter(), features, prediction, window, {"path": source},
                          f"the training file {source} ({rows} rows) is the reference", notes=notes)
    return Proposal(source, {}, "a training table: the events are expected in the default shape", [model],
                    read=rows)
