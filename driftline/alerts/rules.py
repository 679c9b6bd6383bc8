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

from driftline.config.settings import RuleSpec
from driftline.summary import drift_results, subjects
from driftline.types import AlertState


def fingerprint(model: str, version: str, rule: RuleSpec) -> str:
    cond = f"share={rule.share}" if rule.share is not None else (
        f"count={rule.count}" if rule.count is not None else (
            "quality" if rule.quality else f"feature={rule.feature}"))
    text = "|".join((model, version, rule.name, cond))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _quality(summary: dict):
    found = summary.get("quality") or []
    evidence = {f"{f['feature']} {f['check']}": f for f in found}
    return bool(found), ", ".join(evidence) or "no data-quality findings", len(found), 1, evidence


def _check(rule: RuleSpec, results: dict[str, dict], n_subjects: int):
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


def evaluate(rule: RuleSpec, summary: dict, state: AlertState | None):
    """Advance ``state`` by one window; return ``(new_state, event_or_None)``."""
    model, version = summary["model"], summary["version"]
    if state is None:
        state = AlertState(fingerprint(model, version, rule), model, version, rule.name,
                           severity=rule.severity)
    if not summary.get("tests_run"):
        return state, None
    results = drift_results(summary)
    checked = (_quality(summary) if rule.quality else
               _check(rule, results, len(subjects(summary))))
    if checked is None:
        return state, None
    breach, subject, value, threshold, evidence = checked
    event = {"type": "alert", "fingerprint": state.fingerprint, "model": model, "version": version,
             "rule": rule.name, "subject": subject, "severity": rule.severity, "value": value,
             "threshold": threshold, "window_start": summary["start"], "window_end": summary["end"],
             "features": evidence}
    if breach:
        since = state.since if state.status != "ok" else summary["start"]
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
        if state.clears >= rule.resolve_after:
            event |= {"status": "resolved", "since": state.since}
            return replace(state, status="ok", breaches=0, clears=0, since=None,
                           last_event=event), event
    return state, None
