"""Realized performance as the API answers it: a model's windows, and each model version's
summary for the fleet (label coverage and the newest trustworthy headline metric). Plain
data from the store's reads (``driftline/store/performance.py``); no HTTP here."""

from __future__ import annotations

from driftline import performance_view as pv
from driftline.api import params as p

MAX_NAME = 200  # the model and version columns' width


def summaries(browse, labels: dict[str, float]) -> dict[tuple[str, str], dict]:
    """Per (model, version) with stored performance: :func:`~driftline.performance_view.summary`
    over its newest :data:`~driftline.performance_view.COVERAGE_WINDOWS` windows."""
    recent = browse.performance_recent(pv.COVERAGE_WINDOWS)
    return {key: pv.summary([pv.from_row(r, labels.get(key[0])) for r in rows]) for key, rows in recent.items()}


def for_version(model: str, version: str, found: dict, labels: dict[str, float]) -> dict | None:
    """What a fleet row shows: ``None`` for a model without ``labels`` and without stored
    performance; ``labels``: whether it has them configured now."""
    s = found.get((model, version))
    if s is None and model not in labels:
        return None
    s = s or {"task": None, "coverage": pv.coverage([]), "headline": None}
    return {"labels": model in labels, "min_labelled": labels.get(model), **s}


def query(q) -> tuple[str | None, str, int]:
    """``version``, ``segment`` and ``limit``, validated."""
    p.only(q, {"version", "segment", "limit"})
    limit = p.limit(q)
    version = q.get("version") or None
    if version is not None and len(version) > MAX_NAME:
        raise p.BadRequest(f"version: at most {MAX_NAME} characters, got {len(version)}")
    try:
        segment = pv.check_segment(q.get("segment"), "segment")
    except ValueError as exc:
        raise p.BadRequest(str(exc)) from None
    return version, segment, limit


def rows(browse, model: str, version: str | None, segment: str, limit: int, labels: dict[str, float]) -> dict:
    items = [pv.from_row(r, labels.get(model)) for r in browse.performance_rows(model, version, segment, limit)]
    return {"model": model, "labels": model in labels, "min_labelled": labels.get(model),
            "headline_metrics": {task: list(names) for task, names in pv.HEADLINE.items()}, "items": items}
