"""What each endpoint answers, from the store's paged reads: plain data, no HTTP here."""

from __future__ import annotations

import time

from driftline import summary as layout
from driftline.api import histograms
from driftline.api import incidents as inc
from driftline.api import params as p
from driftline.api import performance as perf
from driftline.silencing import view
from driftline.summary import alert_row, segment_version
from driftline.types import iso

SPARK = 48  # windows in the fleet page's sparklines


class NotFound(LookupError):
    """An unknown model, version, feature or window (answered with 404)."""


def _page(items: list[dict], limit: int, cursor: str = "id") -> dict:
    nxt = items[-1][cursor] if len(items) == limit else None
    return {"items": items, "next": nxt}


def _status(last: dict | None, firing: list[str], incidents: int = 0) -> str:
    if last is None:
        return "no data"
    if firing or incidents:
        return "firing"
    levels = {r.get("level") for r in layout.drift_results(last).values()}
    return "warning" if levels & {"warning", "drift"} else "ok"


class Views:
    def __init__(self, browse, models: list[str] | None = None, clock=time.time, lag=None,
                 labels: dict[str, float] | None = None):
        """``lag()`` → the consumer's lag per partition (``driftline run``); None: no consumer here.
        ``labels``: model → its ``labels.min_labelled``, for the models with ``labels`` configured."""
        self.browse, self.configured, self.clock, self.lag_of = browse, models or [], clock, lag
        self.labels = labels or {}

    def lag(self) -> dict:
        if self.lag_of is None:
            return {"available": False, "reason": "no consumer in this process (driftline ui reads the store "
                    "only); see driftline_consumer_lag on the service's /metrics", "items": []}
        items = sorted(self.lag_of(), key=lambda r: (r["topic"], r["partition"]))
        return {"available": True, "reason": None if items else "not measured yet (every 5 s, once "
                "partitions are assigned)", "items": items, "total": sum(r["lag"] for r in items)}

    def models(self) -> dict:
        alerts = self.browse.alert_states()
        versions = self.browse.versions()
        open_ = self.browse.firing_incidents()
        found = perf.summaries(self.browse, self.labels)
        shown = {(v["model"], v["version"]) for v in versions}
        for a in alerts:
            (a["model"], a["version"]), a["rule"] = alert_row(a["model"], a["version"], a["rule"], a["segment"], shown)
        items = [self._version(v, alerts, open_.get((v["model"], v["version"]), 0))
                 | {"performance": perf.for_version(v["model"], v["version"], found, self.labels)} for v in versions]
        seen = {v["model"] for v in versions}
        items += [{"model": m, "version": None, "status": "no data", "windows": 0, "firing_incidents": 0,
                   "performance": None}
                  for m in self.configured
                  if m not in seen]
        return {"items": items}

    def _version(self, v: dict, alerts: list[dict], incidents: int) -> dict:
        last = self.browse.window(v["last_id"])["summary"]
        firing = [a["rule"] for a in alerts if a["model"] == v["model"] and a["version"] == v["version"]
                  and a["status"] == "firing"]
        recent = self.browse.recent(v["model"], v["version"], SPARK)
        events = sum(r["count"] for r in recent)
        invalid = sum(r["invalid"] for r in recent)
        return {"model": v["model"], "version": v["version"], "status": _status(last, firing, incidents),
                "windows": v["windows"], "last_window_end": v["last_end"], "firing": firing,
                "firing_incidents": incidents,
                "drifted": last.get("drifted", []), "recent": recent,
                "invalid_rate": invalid / (events + invalid) if events + invalid else 0.0,
                "subjects": list(layout.drift_results(last)), "trends": list(_trends(last))}

    def _known(self, model: str, version: str) -> dict:
        for v in self.browse.versions():
            if v["model"] == model and v["version"] == version:
                return v
        raise NotFound(f"no windows stored for model {model!r} version {version!r}")

    def windows(self, model: str, version: str, q) -> dict:
        p.only(q, {"from", "to", "limit", "after"})
        start, end = p.time_range(q)
        limit = p.limit(q)
        self._known(model, version)
        return _page(self.browse.windows(model, version, start, end, limit, p.after(q)), limit)

    def series(self, model: str, version: str, subject: str, q) -> dict:
        p.only(q, {"from", "to", "points", "test"})
        start, end = p.time_range(q)
        points = p.points(q)
        v = self._known(model, version)
        last = self.browse.window(v["last_id"])["summary"]
        if subject not in layout.drift_results(last):
            raise NotFound(f"model {model!r} version {version!r} has no tested subject {subject!r}")
        test = None
        if q.get("test") is not None:
            if q["test"] != "trend":
                raise p.BadRequest(f"test must be trend (or absent: the most severe result), got {q['test']!r}")
            if subject not in _trends(last):
                raise NotFound(f"{subject!r} of model {model!r} version {version!r} has no trend test")
            test = (_trends(last)[subject], "trend")
        return {"model": model, "version": version, "subject": subject, "test": q.get("test"),
                **self.browse.series(model, version, subject, start, end, points, test)}

    def performance(self, model: str, q) -> dict:
        version, segment, limit = perf.query(q)
        if model not in self.configured and model not in self.browse.performance_models():
            raise NotFound(f"no model {model!r} configured or stored")
        if version is not None and not any(v["model"] == model and v["version"] == version
                                           for v in self.browse.versions()):
            raise NotFound(f"no windows stored for model {model!r} version {version!r}")
        return perf.rows(self.browse, model, version, segment, limit, self.labels)

    def window(self, window_id: int) -> dict:
        if not 0 <= window_id < 2 ** 63:  # past a 64-bit key no window can exist (and SQLite refuses the bind)
            raise NotFound(f"no window {window_id}")
        row = self.browse.window(window_id)
        if row is None:
            raise NotFound(f"no window {window_id}")
        s = row["summary"]
        seg = s.get("segment")  # a segment's window is compared with the segment's own reference
        ref = s["model"] if not isinstance(seg, dict) else segment_version(s["model"], f"{seg['feature']}={seg['value']}")
        return {"id": window_id, "summary": s, "histograms": histograms.for_window(s, self.browse.reference(ref))}

    def alerts(self, q) -> dict:
        p.only(q, {"model", "from", "to", "limit", "after"})
        start, end = p.time_range(q)
        limit = p.limit(q)
        rows = self.browse.alert_events(q.get("model"), start, end, limit, p.after(q))
        keys = [f"{r['payload']['fingerprint']}:{r['payload']['status']}:{r['payload']['window_end']}:" for r in rows]
        sent = self.browse.deliveries(keys)
        items = [{"id": r["id"], **r["payload"], "deliveries": _of(sent, k)} for r, k in zip(rows, keys)]
        return {**_page(items, limit), "states": self.browse.alert_states(q.get("model"))}

    def incidents(self, q) -> dict:
        p.only(q, {"model", "status", "from", "to", "limit", "after"})
        status = p.one_of(q, "status", ("firing", "resolved"))
        start, end = p.time_range(q)
        limit, after = p.limit(q), p.cursor(q)
        rows = self.browse.incidents(q.get("model"), status, start, end, limit, after)
        nxt = f"{rows[-1]['updated_at']},{rows[-1]['id']}" if len(rows) == limit else None
        return {"items": inc.items(self.browse, rows), "next": nxt}

    def incident(self, incident_id: str) -> dict:
        row = self.browse.incident(incident_id) if len(incident_id) <= 40 else None
        if row is None:
            raise NotFound(f"no incident {incident_id[:60]!r}")
        return inc.detail(self.browse, row)

    def triggers(self, q) -> dict:
        p.only(q, {"model", "limit", "after"})
        limit = p.limit(q)
        rows = self.browse.triggers(q.get("model"), limit, p.after(q))
        keys = [f"trigger:{r['event']['data'].get('incident') or r['event']['data']['alert']}:{r['event']['time']}:"
                for r in rows]  # keyed by its incident since incidents exist, by its alert before
        sent = self.browse.deliveries(keys)
        items = [{"window_end_ms": r["window_end_ms"], "window_end": iso(r["window_end_ms"]),
                  "event": r["event"], "deliveries": _of(sent, k)} for r, k in zip(rows, keys)]
        return _page(items, limit, "window_end_ms")

    def silences(self, q) -> dict:
        p.only(q, {"model", "all"})
        now, model = self.clock(), q.get("model")
        rows = self.browse.silences(now, include_expired=p.flag(q, "all"))
        return {"items": [view(s, now) for s in rows if model is None or _may_mute(s, model)]}


def _may_mute(s, model: str) -> bool:
    """Whether silence ``s`` can mute alerts of ``model``: its ``model`` matchers (if any) accept it."""
    return all(m.matches(model) for m in s.matchers if m.name == "model")


def _trends(summary: dict) -> dict[str, int]:
    """Features with a trend (slow drift) test in this window → where it sits in their ``tests``."""
    return {name: i for name, f in summary["features"].items() for i, t in enumerate(f.get("tests") or [])
            if t.get("method") == "trend"}


def _of(deliveries: list[dict], prefix: str) -> list[dict]:
    return [{k: v for k, v in d.items() if k != "key"} for d in deliveries if d["key"].startswith(prefix)]
