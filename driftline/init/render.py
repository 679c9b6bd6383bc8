"""The proposal as commented YAML, and as the lines ``driftline init`` prints."""

from __future__ import annotations

import json
import re
from datetime import date

from driftline.init.kinds import Inferred
from driftline.init.propose import EXAMPLES, ModelProposal, Proposal

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
COMMENT_AT = 52
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def scalar(value: object) -> str:
    """A YAML scalar: plain when safe, else double-quoted (JSON's quoting is valid YAML)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if (_PLAIN.match(text) or _DURATION.match(text)) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(mapping: dict) -> str:
    return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in mapping.items()) + "}"


def _line(text: str, comment: str | None = None) -> str:
    if not comment:
        return text
    comment = _CONTROL.sub(" ", comment)
    return f"{text.ljust(COMMENT_AT)}  # {comment}" if len(text) < COMMENT_AT else f"{text}  # {comment}"


def _kind(f: Inferred) -> str:
    return f.kind if f.kind != "categorical" else flow({"kind": "categorical", "top_k": f.top_k})


def _feature(f: Inferred, indent: str) -> str:
    if f.kind is None:
        return f"{indent}# {scalar(f.name)}: not monitored — {f.flag}"
    value = _kind(f)
    why = f"{f.distinct} distinct values in {f.values}" if f.kind != "numeric" else f"{f.values} values"
    if f.missing:
        why += f", {f.missing} missing"
    if f.note:
        why += f"; {f.note}"
    return _line(f"{indent}{scalar(f.name)}: {value}", why)


def _window(m: ModelProposal) -> dict:
    w = m.window
    out = {"duration": w.duration} if w.duration else {"size": w.size}
    if w.allowed_lateness:
        out["allowed_lateness"] = w.allowed_lateness
    if w.idle_close:
        out["idle_close"] = w.idle_close
    if w.min_count is not None:
        out["min_count"] = w.min_count
    if m.max_future_off:
        out["max_future"] = None
    return out


def _model(m: ModelProposal, mapping: dict) -> list[str]:
    versions = ", ".join(f"{v} ({n})" for v, n in m.versions.most_common(8)) or "none in a table"
    lines = [_line(f"  - name: {scalar(m.name)}", f"{m.events} events; versions: {versions}")]
    if mapping:
        lines.append(_line(f"    fields: {flow(mapping)}", "where each part of an event is (dotted paths)"))
    lines.append("    features:")
    lines += [_feature(f, "      ") for f in m.features]
    if m.prediction is not None and m.prediction.kind is not None:
        lines.append(_line(f"    prediction: {_kind(m.prediction)}", "the model's output, monitored like a feature"))
    elif m.prediction is not None:
        lines.append(f"    # prediction: not monitored — {m.prediction.flag}")
    lines.append(_CONTROL.sub(" ", f"    # window: {m.window.why}"))
    lines.append(f"    window: {flow(_window(m))}")
    lines.append(_CONTROL.sub(" ", f"    # reference: {m.reference_why}"))
    lines.append(f"    reference: {flow(m.reference)}")
    lines += ["    false_alarms: 1 per 1000 windows" + "      # every threshold calibrated on the reference",
              "    rules:                                # the defaults",
              "      - {name: feature_drift, count: 1}   # any monitored feature drifts",
              "      - {name: data_quality, quality: true, retrain: false}"]
    lines += [_CONTROL.sub(" ", f"    # note: {n}") for n in m.notes]
    return lines


def yaml_text(p: Proposal, kafka: dict | None = None, today: date | None = None) -> str:
    """The whole configuration, every inference explained in a comment."""
    kafka = kafka or {}
    bootstrap = kafka.get("bootstrap") or "${KAFKA_BOOTSTRAP:-localhost:9092}"
    topic = kafka.get("topic") or "model-events"
    out = [f"# driftline configuration proposed by `driftline init` from {p.source} on {today or date.today()}.",
           "# The comments say what was inferred and why: read them, then edit freely.",
           "# Check it: driftline check-config FILE    Try it: driftline replay -c FILE EVENTS.jsonl",
           "kafka:",
           _line(f"  bootstrap_servers: {scalar(bootstrap)}", "host:port of your brokers"),
           _line(f"  topics: [{scalar(topic)}]", "where the models' events are published"),
           "store:",
           _line("  url: ${DRIFTLINE_DATABASE_URL:-sqlite:///.driftline/driftline.db}", "or postgresql://…"),
           "alerts:",
           _line("  console: true", "alerts printed; add Slack below"),
           '  # slack: {token: "${SLACK_BOT_TOKEN}", channel: "#ml-oncall"}',
           "models:"]
    for m in p.models:
        out += _model(m, p.mapping)
    return "\n".join(out) + "\n"


def report(p: Proposal) -> list[str]:
    """What was inferred and why, for the terminal."""
    lines = [f"{p.source}: {p.read} record(s) read, {len(p.skipped)} skipped, {len(p.unfit)} would not fit"]
    for line, reason in p.skipped[:EXAMPLES]:
        lines.append(f"  skipped line {line}: {reason}")
    if len(p.skipped) > EXAMPLES:
        lines.append(f"  … and {len(p.skipped) - EXAMPLES} more skipped line(s)")
    for line, reason in p.unfit[:EXAMPLES]:
        lines.append(f"  line {line} would be a bad record: {reason}")
    if len(p.unfit) > EXAMPLES:
        lines.append(f"  … and {len(p.unfit) - EXAMPLES} more")
    lines.append(f"shape: {p.shape_why}")
    lines += [f"not proposed: {reason}" for reason in p.rejected]
    for m in p.models:
        lines.append(f"model {m.name}: {m.events} events"
                     + (f", versions {', '.join(m.versions)}" if m.versions else ""))
        lines += [f"  {f.name}: {f.describe()}" for f in m.features]
        if m.prediction is not None:
            lines.append(f"  prediction: {m.prediction.describe()}")
        lines.append(f"  window: {flow(_window(m))} — {m.window.why}")
        lines.append(f"  reference: {flow(m.reference)} — {m.reference_why}")
        lines += [f"  note: {n}" for n in m.notes]
    return lines
