"""The window summary's layout, for the code that reads summaries (rules, store, metrics).

A window summary (the JSON contract in the README) has per-feature statistics under
``features`` (the prediction under ``prediction``), each with its most severe test
result under ``drift``, and each test of the whole window under its own key, listed
here in the order the detector registry runs them.
"""

from __future__ import annotations

#: the window summary's fields that hold a test of the whole window (see detectors/registry.py)
WINDOW_TESTS = ("multivariate", "domain_classifier")


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
