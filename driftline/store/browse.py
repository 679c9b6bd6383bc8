"""Read queries for the HTTP API and the dashboard: paged and downsampled in SQL.

Nothing here writes, and nothing loads a whole table: every list is bounded by a
``limit`` and continued with an ``after`` cursor (the row id), and a feature's drift
series over a long range is reduced in SQL to at most ``points`` buckets (the
largest statistic of each bucket, so a spike is never averaged away). Values inside
window summaries are read with the database's own JSON functions (SQLite's
``json_extract``, PostgreSQL's ``#>>``) through SQLAlchemy's JSON paths.
"""

from __future__ import annotations

from sqlalchemy import Integer, and_, case, func, or_, select, text

from driftline.silencing import Silence
from driftline.store import schema as t
from driftline.store.engine import Queries, mapped
from driftline.store.performance import PerformanceReads
from driftline.store.silences import silences_of

W = t.windows


def drift_path(subject: str) -> tuple[str, ...]:
    """Where a subject's most severe result sits in a window summary."""
    if subject == "multivariate":
        return ("multivariate",)
    if subject == "prediction":
        return ("prediction", "drift")
    return ("features", subject, "drift")


def _in_range(q, model: str, version: str, start: str | None, end: str | None):
    q = q.where(W.c.model == model, W.c.version == version)
    if start is not None:
        q = q.where(W.c.end > start)
    if end is not None:
        q = q.where(W.c.start < end)
    return q


class Browse(PerformanceReads, Queries):

    @mapped("the store did not answer")
    def ping(self) -> None:
        with self.engine.connect() as c:
            c.execute(text("SELECT 1"))

    @mapped("could not read models")
    def versions(self) -> list[dict]:
        """Every model version with windows: how many, the newest window's id and end."""
        q = (select(W.c.model, W.c.version, func.count().label("windows"), func.max(W.c.id).label("last_id"),
                    func.max(W.c.end).label("last_end"))
             .group_by(W.c.model, W.c.version).order_by(W.c.model, W.c.version))
        return self._rows(q)

    @mapped("could not read windows")
    def recent(self, model: str, version: str, n: int) -> list[dict]:
        """The newest ``n`` windows' counts, oldest first (a sparkline)."""
        q = (select(W.c.id, W.c.seq, W.c.end, W.c.count, W.c.invalid, W.c.drifted)
             .where(W.c.model == model, W.c.version == version).order_by(W.c.id.desc()).limit(n))
        return self._rows(q)[::-1]

    @mapped("could not read windows")
    def windows(self, model: str, version: str, start: str | None, end: str | None,
                limit: int, after: int | None) -> list[dict]:
        """Windows overlapping ``[start, end)``, without their summaries, ``limit`` after id ``after``."""
        q = select(W.c.id, W.c.seq, W.c.start, W.c.end, W.c.count, W.c.invalid, W.c.late, W.c.tests_run,
                   W.c.summary["drifted"].label("drifted"), W.c.summary["closed_by"].as_string().label("closed_by"))
        q = _in_range(q, model, version, start, end)
        if after is not None:
            q = q.where(W.c.id > after)
        return self._rows(q.order_by(W.c.id).limit(limit))

    @mapped("could not read the drift series")
    def series(self, model: str, version: str, subject: str, start: str | None, end: str | None,
               points: int, test: tuple[int, str] | None = None) -> dict:
        """One subject's drift statistic per window, at most ``points`` buckets of consecutive
        windows. ``ratio`` is statistic / threshold (drift at 1; ``warning_ratio`` likewise), one
        scale for every test a window's most severe result may come from; a bucket of several
        windows keeps the largest of each column (a spike is never averaged away).

        ``test=(i, method)``: a feature's ``i``-th test result instead of its most severe,
        in the windows where that one's method is ``method`` (the trend test's series)."""
        path = drift_path(subject) if test is None else ("features", subject, "tests", test[0])
        stat = W.c.summary[path + ("statistic",)].as_float()
        if test is not None:
            stat = case((W.c.summary[path + ("method",)].as_string() == test[1], stat), else_=None)
        threshold = W.c.summary[path + ("threshold",)].as_float()
        warning = W.c.summary[path + ("warning_threshold",)].as_float()
        base = _in_range(select(W.c.id), model, version, start, end).where(stat.is_not(None))
        with self.engine.connect() as c:
            n = c.execute(select(func.count()).select_from(base.subquery())).scalar_one()
        step = max(1, -(-n // points))
        inner = _in_range(select(
            (func.row_number().over(order_by=W.c.id) - 1).label("rn"), W.c.id, W.c.seq, W.c.start, W.c.end,
            stat.label("statistic"), threshold.label("threshold"), warning.label("warning"),
            (stat / func.nullif(threshold, 0)).label("ratio"), (warning / func.nullif(threshold, 0)).label("wratio"),
            W.c.summary[path + ("method",)].as_string().label("method"),
            func.coalesce(W.c.summary[path + ("drifted",)].as_boolean(), False).cast(Integer).label("drifted"),
        ), model, version, start, end).where(stat.is_not(None)).subquery()
        bucket = inner.c.rn // step
        q = (select(func.min(inner.c.id).label("id"), func.max(inner.c.id).label("last_id"),
                    func.min(inner.c.start).label("start"), func.max(inner.c.end).label("end"),
                    func.max(inner.c.statistic).label("statistic"), func.max(inner.c.threshold).label("threshold"),
                    func.max(inner.c.warning).label("warning"), func.max(inner.c.method).label("method"),
                    func.max(inner.c.ratio).label("ratio"), func.max(inner.c.wratio).label("warning_ratio"),
                    func.max(inner.c.drifted).label("drifted"), func.count().label("windows"))
             .group_by(bucket).order_by(func.min(inner.c.id)))
        return {"windows": n, "per_point": step, "points": self._rows(q)}

    @mapped("could not read the window")
    def window(self, window_id: int) -> dict | None:
        q = select(W.c.id, W.c.summary).where(W.c.id == window_id)
        rows = self._rows(q)
        return rows[0] if rows else None

    @mapped("could not read the reference")
    def reference(self, model: str) -> dict | None:
        rows = self._rows(select(t.references.c.profile).where(t.references.c.model == model))
        return rows[0]["profile"] if rows else None

    @mapped("could not read alerts")
    def alert_states(self, model: str | None = None) -> list[dict]:
        q = select(t.alerts.c.fingerprint, t.alerts.c.model, t.alerts.c.version, t.alerts.c.rule, t.alerts.c.status,
                   t.alerts.c.state[("last_event", "segment")].as_string().label("segment"))
        if model:
            q = q.where(t.alerts.c.model == model)
        return self._rows(q.order_by(t.alerts.c.model, t.alerts.c.version, t.alerts.c.rule))

    @mapped("could not read alert events")
    def alert_events(self, model: str | None, start: str | None, end: str | None,
                     limit: int, after: int | None) -> list[dict]:
        """Alert state changes, oldest first, by ``window_end`` in ``[start, end)``."""
        e = t.alert_events
        q = select(e.c.id, e.c.payload)
        if model:
            q = q.where(e.c.payload["model"].as_string() == model)
        if start is not None:
            q = q.where(e.c.window_end >= start)
        if end is not None:
            q = q.where(e.c.window_end < end)
        if after is not None:
            q = q.where(e.c.id > after)
        return self._rows(q.order_by(e.c.id).limit(limit))

    @mapped("could not read incidents")
    def incidents(self, model: str | None, status: str | None, start: str | None, end: str | None,
                  limit: int, after: tuple[str, str] | None) -> list[dict]:
        """Incidents open at some time in ``[start, end)``, newest first by ``updated_at`` (then id);
        ``after`` is the previous page's last ``(updated_at, id)``."""
        i = t.incidents.c
        updated = func.coalesce(i.updated_at, "")
        q = select(i.id, i.status, i.state, updated.label("updated_at"))
        if model:
            q = q.where(i.model == model)
        if status:
            q = q.where(i.status == status)
        if end is not None:
            q = q.where(func.coalesce(i.opened_at, i.updated_at) < end)
        if start is not None:
            q = q.where(or_(i.resolved_at.is_(None), i.resolved_at >= start))
        if after is not None:
            q = q.where(or_(updated < after[0], and_(updated == after[0], i.id < after[1])))
        return self._rows(q.order_by(updated.desc(), i.id.desc()).limit(limit))

    @mapped("could not read the incident")
    def incident(self, incident_id: str) -> dict | None:
        rows = self._rows(select(t.incidents.c.id, t.incidents.c.state).where(t.incidents.c.id == incident_id))
        return rows[0] if rows else None

    @mapped("could not read incidents")
    def firing_incidents(self) -> dict[tuple[str, str], int]:
        """How many incidents are firing, per model version (on ``ix_incidents_status``)."""
        i = t.incidents.c
        q = select(i.model, i.version, func.count().label("n")).where(i.status == "firing").group_by(i.model, i.version)
        return {(r["model"], r["version"]): r["n"] for r in self._rows(q)}

    @mapped("could not read deliveries")
    def notifications(self, kind: str, ids: list[str], per_id: int = 200) -> list[dict]:
        """Outbox rows of ``kind`` (``incident`` or ``trigger``) whose key is of one of the incidents
        ``ids`` (``{kind}:{id}:…``), oldest first; at most ``per_id`` rows per incident on average."""
        if not ids:
            return []
        o = t.outbox
        q = select(o.c.id, o.c.key, o.c.sink, o.c.status, o.c.attempts, o.c.created_at, o.c.sent_at,
                   o.c.last_error, o.c.receipt, o.c.payload["window"].label("window"),
                   o.c.payload[("incident", "new_features")].label("new_features"))
        q = q.where(o.c.kind == kind, or_(*[o.c.key.startswith(f"{kind}:{i}:", autoescape=True) for i in ids]))
        return self._rows(q.order_by(o.c.id).limit(per_id * len(ids)))

    @mapped("could not read triggers")
    def triggers_by_id(self, ids: list[str]) -> dict[str, dict]:
        """CloudEvents by their id."""
        if not ids:
            return {}
        rows = self._rows(select(t.triggers.c.id, t.triggers.c.event).where(t.triggers.c.id.in_(ids)))
        return {r["id"]: r["event"] for r in rows}

    @mapped("could not read alert events")
    def incident_events(self, incident_id: str, fingerprints: list[str], limit: int = 1000) -> list[dict]:
        """The alert events of the incident's alerts (``fingerprints``, on their index) whose payload
        names the incident, oldest first."""
        if not fingerprints:
            return []
        e = t.alert_events
        q = select(e.c.id, e.c.payload).where(e.c.fingerprint.in_(fingerprints),
                                              e.c.payload["incident"].as_string() == incident_id)
        return self._rows(q.order_by(e.c.id).limit(limit))

    @mapped("could not read triggers")
    def triggers(self, model: str | None, limit: int, after: int | None) -> list[dict]:
        """Retraining triggers by window end; ``after`` is a window end in epoch ms."""
        q = select(t.triggers.c.window_end_ms, t.triggers.c.event)
        if model:
            q = q.where(t.triggers.c.model == model)
        if after is not None:
            q = q.where(t.triggers.c.window_end_ms > after)
        return self._rows(q.order_by(t.triggers.c.window_end_ms, t.triggers.c.id).limit(limit))

    @mapped("could not read deliveries")
    def deliveries(self, prefixes: list[str]) -> list[dict]:
        """Outbox rows whose key starts with one of ``prefixes`` (an alert's or a trigger's)."""
        if not prefixes:
            return []
        o = t.outbox
        q = select(o.c.id, o.c.key, o.c.sink, o.c.kind, o.c.status, o.c.attempts, o.c.created_at, o.c.sent_at,
                   o.c.last_error, o.c.receipt)
        q = q.where(or_(*[o.c.key.startswith(p, autoescape=True) for p in prefixes]))
        return self._rows(q.order_by(o.c.id).limit(50 * len(prefixes)))

    @mapped("could not read silences")
    def silences(self, now: float, include_expired: bool = False, limit: int = 1000) -> list[Silence]:
        """Silences active at ``now`` or starting later (and ended ones with ``include_expired``),
        the ones ending first first, at most ``limit``."""
        s = t.silences
        q = select(s) if include_expired else select(s).where(s.c.ends_at > now)
        with self.engine.connect() as c:
            return silences_of(c.execute(q.order_by(s.c.ends_at, s.c.id).limit(limit)))

    @mapped("could not read offsets")
    def offsets(self) -> list[dict]:
        return self._rows(select(t.offsets).order_by(t.offsets.c.group, t.offsets.c.topic, t.offsets.c.partition))
