"""Rules turn window summaries into alert state: ok → pending → firing → resolved.

An alert is identified by a fingerprint of model, version, rule and the
rule's condition, so the same problem is one alert however many windows show it.

>>> from driftline.config.settings import RuleSpec
>>> rule = RuleSpec(feature="amount", resolve_after=1)
>>> w = {"model": "m", "version": "v", "start": "s", "end": "e1", "tests_run": True,
...      "features": {"amount": {"drift": {"method": "psi", "statistic": 0.3,
...                   "threshold": 0.2, "p_value": None, "drifted": True}}}}
>>> state, event = evaluate(rule, w, None)
>>> event["status"], event["subject"], event["value"]
('firing', 'amount', 0.3)
>>> w["features"]["amount"]["drift"] |= {"statistic": 0.01, "drifted": False}
>>> evaluate(rule, w, state)[1]["status"]
'resolved'
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from driftline.config.settings import LABEL_METRICS, RuleSpec
from driftline.detectors.performance.compare import LOWER_IS_BETTER
from driftline.summary import drift_results, subjects
from driftline.types import AlertState


def fingerprint(model: str, version: str, rule: RuleSpec, segment: str | None = None) -> str:
    """``segment`` (``feature=value``) names one segment's alert of a ``metric`` rule; the
    whole version's (``None``) keeps the fingerprint it always had."""
    if rule.share is not None:
        cond = f"share={rule.share}"
    elif rule.count is not None:
        cond = f"count={rule.count}"
    elif rule.quality:
        cond = "quality"
    elif rule.no_data is not None:
        cond = f"no_data={rule.no_data}"
    elif rule.volume is not None:
        cond = f"volume={rule.volume.below}:{rule.volume.above}"
    elif rule.dead_letters is not None:
        cond = f"dead_letters={rule.dead_letters}"
    elif rule.metric is not None:
        cond = f"metric={rule.metric}:{rule.below}:{rule.above}"
    elif rule.concept_drift:
        cond = "concept_drift"
    else:
        cond = f"feature={rule.feature}"
    text = "|".join((model, version, rule.name, cond) + ((f"segment={segment}",) if segment is not None else ()))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def labels(state: AlertState, rule: RuleSpec, segment: str | None = None) -> dict[str, str]:
    """What identifies an alert to grouping and silences: model, version, rule, severity, for
    a rule on one feature its ``subject``, and for one segment's alert its ``segment``."""
    out = {"model": state.model, "version": state.version, "rule": rule.name, "severity": rule.severity}
    if rule.feature is not None:
        out["subject"] = rule.feature
    if segment is not None:
        out["segment"] = segment
    return out


def segment_of(revision: dict) -> str | None:
    """A performance line's segment as ``feature=value`` (as the store keys it), ``None`` for the whole version."""
    seg = revision.get("segment")
    return None if seg is None else f"{seg['feature']}={seg['value']}"


def window_segment(summary: dict) -> tuple[str, str | None]:
    """A window's version and segment (``feature=value``): a segment's window (docs/segments.md)
    is stored as version ``v3[country=DE]``; its alerts are of version ``v3``, segment ``country=DE``."""
    seg = summary.get("segment")
    return (summary["version"], None) if seg is None else (seg["version"], f"{seg['feature']}={seg['value']}")


def _quality(summary: dict):
    found = summary.get("quality") or []
    evidence = {f"{f['feature']} {f['check']}": f for f in found}
    return bool(found), ", ".join(evidence) or "no data-quality findings", len(found), 1, evidence


def _drift(rule: RuleSpec, results: dict[str, dict], n_subjects: int):
    drifted = {k: v for k, v in results.items() if v["drifted"]}
    if rule.feature is not None:
        r = results.get(rule.feature)
        if r is None:
            return None
        return r["drifted"], rule.feature, r["statistic"], r["threshold"], {rule.feature: r}
    if rule.share is not None:
        share = len(drifted) / max(n_subjects, 1)
        return share >= rule.share, ", ".join(drifted) or "no drifted features", share, rule.share, drifted
    return len(drifted) >= rule.count, ", ".join(drifted) or "no drifted features", len(drifted), rule.count, drifted


def _volume(rule: RuleSpec, summary: dict):
    """Events in a whole window (closed by the watermark) against the reference's rate."""
    expected = summary.get("expected_count")
    if not expected or summary.get("closed_by") not in ("watermark", "empty"):
        return None
    ratio, v = summary["count"] / expected, rule.volume
    low, high = v.below is not None and ratio < v.below, v.above is not None and ratio > v.above
    bound = v.below if (low or v.above is None) else v.above
    what = (f"{summary['count']} events, {ratio:.0%} of the {expected:.0f} the reference's rate gives"
            + (" (too few)" if low else " (too many)" if high else ""))
    return low or high, what, ratio, bound, {}


def _dead_letters(rule: RuleSpec, summary: dict):
    total = summary["count"] + summary["invalid"]
    if total == 0:
        return None
    share = summary["invalid"] / total
    return share >= rule.dead_letters, f"{summary['invalid']} of {total} records bad", share, rule.dead_letters, {}


def condition(rule: RuleSpec, summary: dict):
    """``(breach, subject, value, threshold, evidence)`` for one window, or ``None`` when the
    window says nothing about the rule (tests not run, its feature absent, a partial window)."""
    if rule.no_data is not None or rule.metric is not None or rule.concept_drift:
        return None  # by the clock (see no_data()), or by performance revisions (see performance())
    if rule.volume is not None:
        return _volume(rule, summary)
    if rule.dead_letters is not None:
        return _dead_letters(rule, summary)
    if not summary.get("tests_run"):
        return None
    if rule.quality:
        return _quality(summary)
    return _drift(rule, drift_results(summary), len(subjects(summary)))


def _new(rule: RuleSpec, model: str, version: str, segment: str | None = None) -> AlertState:
    return AlertState(fingerprint(model, version, rule, segment), model, version, rule.name, severity=rule.severity)


def evaluate(rule: RuleSpec, summary: dict, state: AlertState | None):
    """Advance ``state`` by one window; return ``(new_state, event_or_None)``. A segment's window
    is its own alert, as a segment's performance is (see :func:`performance`)."""
    version, segment = window_segment(summary)
    state = state or _new(rule, summary["model"], version, segment)
    checked = condition(rule, summary)
    if checked is None:
        return state, None
    if segment is not None:
        breach, what, value, bound, evidence = checked
        checked = breach, f"segment {segment}: {what}", value, bound, evidence
    state, event = step(rule, state, checked, summary["start"], summary["end"])
    if event is not None and segment is not None:
        event["segment"] = segment
    return state, event


def performance(rule: RuleSpec, revision: dict, state: AlertState | None):
    """A ``metric`` or ``concept_drift`` rule on one revision of a window's performance: one
    observation per revision of the newest window observed so far or of a newer one; late
    labels of an older window are none (else an older, healthy window's revisions would clear
    what the newest ones fire — only a concept-drift detection in it still counts). None while
    the metric is undefined; for a realized metric or a label delay, none while the window has
    too few labels (``enough`` false); an ``estimated_`` metric needs no label;
    ``label_coverage`` with ``after`` waits until the window is that old. A segment's revision
    is its own alert (fingerprint, ``segment`` in the event, named first in the subject); a
    concept-drift rule reads the whole version's only."""
    segment = segment_of(revision)
    state = state or _new(rule, revision["model"], revision["version"], segment)
    key = revision["window_key"]
    if rule.concept_drift and segment is not None:
        return state, None
    if rule.concept_drift:  # a detection counts once, in whichever window; the newest windows clear it
        found = [f for f in _concept_findings(revision) if f.get("at", 0) > state.seen]
        if not found and state.judged is not None and key < state.judged:
            return state, None  # an older window's late labels: no observation
        state, event = concept_drift(rule, revision, state, found)
        return replace(state, judged=max(key, state.judged if state.judged is not None else key),
                       seen=max([state.seen] + [f.get("at", 0) for f in found])), event
    if state.judged is not None and key < state.judged:
        return state, None  # late labels of an older window than the newest one judged
    source, name = _metric_source(rule.metric)
    observed = _observe(rule, revision, source, name)
    if observed is None:
        return state, None
    state = replace(state, judged=key)
    breach, value, bound, how = observed
    w = revision["window"]
    what = (f"{rule.metric} {value:.4g} of window #{w['seq']} ({revision['labelled']} labelled)"
            + (f" ({how})" if breach else ""))
    metrics = revision.get(source) if source in ("metrics", "estimated") else {}
    evidence = {rule.metric: {"value": value, "se": ((metrics or {}).get("se") or {}).get(name),
                              "labelled": revision["labelled"], "labelled_share": revision["labelled_share"],
                              "revision": revision["revision"]}}
    if bound is not None and how.startswith("worse than"):
        evidence[rule.metric]["previous" if rule.drop_from_previous is not None else "reference"] = bound
        if rule.drop_from_previous is not None:
            evidence[rule.metric]["baseline"] = revision["versions"]["baseline"]
    if segment is not None:
        what = f"segment {segment}: {what}"
    state, event = step(rule, state, (breach, what, value, bound, evidence), w["start"], w["end"])
    if event is not None and segment is not None:
        event["segment"] = segment
    return state, event


def _metric_source(metric: str) -> tuple[str, str]:
    """Where a rule's metric is read: ``metrics`` (realized), ``estimated``, ``labels`` (coverage, delay)."""
    if metric.startswith("estimated_"):
        return "estimated", metric[len("estimated_"):]
    if metric in LABEL_METRICS:
        return "labels", metric
    return "metrics", metric


def _observe(rule: RuleSpec, revision: dict, source: str, name: str):
    """``(breach, value, bound, how)`` of one revision, or ``None`` when it says nothing."""
    if source == "labels":
        if name == "label_coverage":
            if rule.after is not None and (revision.get("age") is None or revision["age"] < rule.after):
                return None
            value = revision["labelled_share"]
        else:
            value = revision["delay"].get(name[len("label_delay_"):]) if revision.get("enough") else None
    elif source == "estimated":
        value = (revision.get("estimated") or {}).get(name)
    else:
        value = revision["metrics"].get(name) if revision.get("enough") else None
    if value is None:
        return None
    drop, against = rule.reference_drop, "reference"
    if rule.drop_from_previous is not None:
        drop, against = rule.drop_from_previous, "versions"
    if drop is None:
        low, high = rule.below is not None and value < rule.below, rule.above is not None and value > rule.above
        bound = rule.below if (low or rule.above is None) else rule.above
        return low or high, value, bound, f"below {rule.below:g}" if low else f"above {rule.above:g}" if high else ""
    ref = revision.get(against) or {}
    c = ref.get("estimated" if source == "estimated" else "realized", {}).get(name)
    if c is None or c.get("delta") is None:
        return None  # no labelled reference (no previous version), or the metric is undefined in one
    ref_value = value - c["delta"]  # the reference's realized value (its estimated one for an estimate)
    what = "the reference" if against == "reference" else f"version {ref['baseline']}"
    worse = c["delta"] if name in LOWER_IS_BETTER else -c["delta"]
    if drop == "significant":
        z = "" if c["z"] is None else f", z {c['z']:.2f}"
        return bool(c["significant"]), value, ref_value, f"worse than {what} {ref_value:.4g}{z}"
    return worse > drop, value, ref_value, f"worse than {what} {ref_value:.4g} by {worse:.4g} > {drop:g}"


def _concept_findings(revision: dict) -> list[dict]:
    return [f for f in revision.get("findings") or () if f.get("kind") == "concept_drift"
            and not f.get("informational") and f.get("direction") == "worse"]


def concept_drift(rule: RuleSpec, revision: dict, state: AlertState, found: list[dict] | None = None):
    """A ``concept_drift`` rule on one revision: breached when its ``findings`` hold a concept-drift
    detection that made the error stream worse and is not informational (one observation per
    revision, as a ``metric`` rule; the finding stays with its window, so each of that window's
    revisions breaches again)."""
    found = _concept_findings(revision) if found is None else found
    w = revision["window"]
    what = (", ".join(f"{f['detector']} on the {f['signal']}: {f['before']:.4g} → {f['after']:.4g} at {f['ts']}"
                      for f in found) + f" (window #{w['seq']})" if found else "no concept drift detected")
    evidence = {f"{f['detector']} {f['signal']}": f for f in found}
    return step(rule, state, (bool(found), what, len(found), 1, evidence), w["start"], w["end"])


def no_data(rule: RuleSpec, model: str, version: str, silent_for: float, last_event: str,
            state: AlertState | None):
    """The no-data rule for one model version that has sent nothing for ``silent_for``
    seconds (the longer of wall-clock and event-time silence; ``last_event`` is the newest
    event's time). Fires as soon as it passes ``rule.no_data``, resolves as soon as events return."""
    state = state or _new(rule, model, version)
    breach = silent_for >= rule.no_data
    if breach == (state.status == "firing"):
        return state, None
    subject = (f"no events for {_span(silent_for)} (last at {last_event})" if breach
               else f"events again (last at {last_event})")
    immediate = rule.model_copy(update={"for_windows": 1, "resolve_after": 1, "keep_firing_for": 0})
    return step(immediate, state, (breach, subject, silent_for, rule.no_data, {}), last_event, last_event)


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f}h" if seconds >= 7200 else f"{seconds / 60:.0f}m" if seconds >= 120 else \
        f"{seconds:.0f}s"


def step(rule: RuleSpec, state: AlertState, checked, start: str, end: str):
    """One observation of the rule's condition: pending after a breach, firing after
    ``for_windows`` of them in a row; once firing, it stays so for ``keep_firing_for`` clear
    windows and resolves after ``resolve_after`` more."""
    breach, subject, value, threshold, evidence = checked
    event = {"type": "alert", "fingerprint": state.fingerprint, "model": state.model, "version": state.version,
             "rule": rule.name, "subject": subject, "severity": rule.severity, "value": value,
             "threshold": threshold, "window_start": start, "window_end": end, "features": evidence}
    if breach:
        since = state.since if state.status != "ok" else start
        state = replace(state, breaches=state.breaches + 1, clears=0, since=since)
        if state.status != "firing" and state.breaches >= rule.for_windows:
            event |= {"status": "firing", "since": since}
            return replace(state, status="firing", last_event=event), event
        if state.status == "ok":
            state = replace(state, status="pending")
        return state, None
    if state.status == "pending":
        return replace(state, status="ok", breaches=0, since=None), None
    if state.status == "firing":
        state = replace(state, clears=state.clears + 1)
        if state.clears >= rule.keep_firing_for + rule.resolve_after:
            event |= {"status": "resolved", "since": state.since}
            return replace(state, status="ok", breaches=0, clears=0, since=None,
                           last_event=event), event
    return state, None
