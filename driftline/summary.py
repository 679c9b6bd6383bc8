"""The window summary's layout, for the code that reads summaries (rules, store, metrics).

A window summary (the JSON contract in the README) has per-feature statistics under
``features`` (the prediction under ``prediction``), each with its most severe test
result under ``drift``, and each test of the whole window under its own key, listed
here in the order the detector registry runs them.
"""

from __future__ import annotations

#: the window summary's fields that hold a test of the whole window (see detectors/registry.py)
WINDOW_TESTS = ("multivariate", "domain_classifier")


def segment_version(version: str, segment: str) -> str:
    """The version a segment's windows are stored as: ``v3`` and ``country=DE`` → ``v3[country=DE]``."""
    return f"{version}[{segment}]"


def is_segment_version(version: str, features) -> bool:
    """Whether an event's ``version`` is spelled like a segment's of one of the model's segment
    ``features`` (``v3[country=…]``): such an event is refused, its windows would be confused."""
    return version.endswith("]") and any(f"[{f}=" in version for f in features)


def tagging_features(spec) -> list[str]:
    """The features whose segments tag a version of the model ``spec`` (``v3[country=DE]``):
    drift's ``segments`` and performance's ``labels.segments``."""
    return list(dict.fromkeys([*spec.segments, *(spec.labels.segments if spec.labels else [])]))


def alert_row(model: str, version: str, rule: str, segment: str | None, rows) -> tuple[tuple[str, str], str]:
    """Where a listing of model versions (``rows``: the (model, version) pairs it shows) puts an
    alert, and under what name: a segment's alert on its segment's row when there is one (drift
    per segment), else on its version's row as ``rule [segment]``.

    >>> alert_row("m", "v1", "feature_drift", "country=DE", {("m", "v1"), ("m", "v1[country=DE]")})
    (('m', 'v1[country=DE]'), 'feature_drift')
    >>> alert_row("m", "v1", "auc", "country=DE", {("m", "v1")})
    (('m', 'v1'), 'auc [country=DE]')
    """
    if segment is None:
        return (model, version), rule
    own = (model, segment_version(version, segment))
    return (own, rule) if own in rows else ((model, version), f"{rule} [{segment}]")


def subjects(summary: dict) -> dict[str, dict]:
    """Every summarised feature of a window, the prediction included."""
    out = dict(summary["features"])
    if summary.get("prediction"):
        out["prediction"] = summary["prediction"]
    return out


def drift_results(summary: dict) -> dict[str, dict]:
    """Every tested subject of a window (features, the prediction, whole-window tests) → its result."""
    out = {k: v["drift"] for k, v in subjects(summary).items() if v.get("drift")}
    for name in WINDOW_TESTS:
        if summary.get(name):
            out[name] = summary[name]
    return out
