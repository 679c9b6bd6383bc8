"""Read queries for the CLI, the tests and (later) the HTTP API: nothing here writes."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from driftline.store import schema as t
from driftline.store.engine import Queries, mapped


class Reads(Queries):

    def _values(self, q) -> list:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q)]

    @mapped("could not read windows")
    def windows(self, model: str | None = None) -> list[dict]:
        """Window summaries in the order they were stored, of ``model`` or of every model."""
        q = select(t.windows.c.summary).order_by(t.windows.c.id)
        if model:
            q = q.where(t.windows.c.model == model)
        return self._values(q)

    @mapped("could not read alert events")
    def alert_events(self) -> list[dict]:
        return self._values(select(t.alert_events.c.payload).order_by(t.alert_events.c.id))

    @mapped("could not read the outbox")
    def outbox(self) -> list[dict]:
        """Every outbox row, with its ``receipt`` (what the sink said, once sent)."""
        return self._rows(select(t.outbox).order_by(t.outbox.c.id))

    @mapped("could not read triggers")
    def triggers(self) -> list[dict]:
        return self._values(select(t.triggers.c.event))

    @mapped("could not read triggers")
    def trigger_history(self, model: str | None = None, limit: int = 20) -> list[dict]:
        """The ``limit`` newest triggers (of ``model``), newest first: ``id`` (the CloudEvent's),
        ``model``, ``version``, ``window_end_ms``, ``event`` (the CloudEvent), ``incident`` (or
        ``None``) and ``deliveries``: its outbox rows of kind ``trigger``, one per sink, oldest
        first (``sink``, ``status``, ``attempts``, ``last_error``, ``receipt``, ``created_at``,
        ``sent_at``). Matched by the CloudEvent id in the outbox payload, so either payload
        shape (with or without ``incident`` beside ``event``) is found."""
        g = t.triggers.c
        q = select(g.id, g.model, g.version, g.window_end_ms, g.event)
        if model:
            q = q.where(g.model == model)
        rows = self._rows(q.order_by(g.window_end_ms.desc(), g.id.desc()).limit(limit))
        sent = self._trigger_deliveries([r["id"] for r in rows])
        return [_history(r, sent.get(r["id"], [])) for r in rows]

    def _trigger_deliveries(self, ids: list[str]) -> dict[str, list[dict]]:
        if not ids:
            return {}
        o = t.outbox.c
        event_id = o.payload[("event", "id")].as_string()
        q = (select(event_id.label("event_id"), o.sink, o.status, o.attempts, o.last_error, o.receipt,
                    o.created_at, o.sent_at, o.payload)
             .where(o.kind == "trigger", event_id.in_(ids)).order_by(o.id))
        out: dict[str, list[dict]] = {}
        for r in self._rows(q):
            out.setdefault(r.pop("event_id"), []).append(r)
        return out

    @mapped("could not read incidents")
    def incidents(self, resolved: int = 10) -> list[dict]:
        """The open incidents (oldest first), then the ``resolved`` newest resolved ones (newest
        first): each its stored state (``Incident.to_state()``) with ``deliveries``, the outbox
        rows of its notifications, oldest first (``event``, ``sink``, ``status``, ``attempts``,
        ``last_error``, ``receipt``, ``created_at``, ``sent_at``)."""
        i = t.incidents.c
        states = self._values(select(i.state).where(i.status == "firing").order_by(i.opened_at, i.id))
        states += self._values(select(i.state).where(i.status != "firing")
                               .order_by(i.updated_at.desc(), i.id.desc()).limit(resolved))
        sent = self._incident_deliveries([s["id"] for s in states])
        return [{**s, "deliveries": sent.get(s["id"], [])} for s in states]

    def _incident_deliveries(self, ids: list[str]) -> dict[str, list[dict]]:
        if not ids:
            return {}
        o = t.outbox.c
        q = (select(o.key, o.sink, o.status, o.attempts, o.last_error, o.receipt, o.created_at, o.sent_at)
             .where(o.kind == "incident", or_(*[o.key.startswith(f"incident:{i}:", autoescape=True) for i in ids]))
             .order_by(o.id))
        out: dict[str, list[dict]] = {}
        for r in self._rows(q):
            _, ident, event = r.pop("key").split(":", 3)[:3]  # incident:{id}:{event}:{suffix}:{sink}
            out.setdefault(ident, []).append({"event": event, **r})
        return out

    @mapped("could not read the model versions")
    def latest_windows(self) -> list[dict]:
        """Each model version's newest window: model, version, seq, end, count, invalid and its summary
        (one row per version, found on the ``uq_window`` index)."""
        w = t.windows.c
        newest = (select(w.model, w.version, func.max(w.seq).label("seq"))
                  .group_by(w.model, w.version).subquery())
        q = (select(w.model, w.version, w.seq, w.end, w.count, w.invalid, w.summary)
             .join(newest, (w.model == newest.c.model) & (w.version == newest.c.version) & (w.seq == newest.c.seq))
             .order_by(w.model, w.version))
        return self._rows(q)

    @mapped("could not read recent windows")
    def counts_since(self, model: str, version: str, end: str) -> dict:
        """Events and invalid records of the version's windows ending at or after ``end`` (ISO-8601, UTC)."""
        w = t.windows.c
        q = (select(func.count().label("windows"), func.coalesce(func.sum(w.count), 0).label("count"),
                    func.coalesce(func.sum(w.invalid), 0).label("invalid"))
             .where(w.model == model, w.version == version, w.end >= end))
        return self._rows(q)[0]

    @mapped("could not read recent windows")
    def recent_windows(self, model: str, last: int, version: str | None = None) -> list[dict]:
        """The ``last`` newest window summaries of ``model`` (of one ``version``), oldest first."""
        w = t.windows.c
        q = select(w.summary).where(w.model == model)
        if version is not None:
            q = q.where(w.version == version)
        q = q.order_by(w.end.desc(), w.id.desc()).limit(last)
        return self._values(q)[::-1]

    @mapped("could not read alert state")
    def firing(self) -> list[dict]:
        """Alerts firing now: model, version, rule and their state (``since``, ``severity``)."""
        a = t.alerts.c
        return self._rows(select(a.model, a.version, a.rule, a.state).where(a.status == "firing")
                          .order_by(a.model, a.version, a.rule))

    @mapped("could not read the outbox")
    def pending_payloads(self) -> list[dict]:
        """The payloads of notifications not delivered yet (on the ``ix_outbox_due`` index)."""
        return self._values(select(t.outbox.c.payload).where(t.outbox.c.status == "pending"))


def _history(row: dict, deliveries: list[dict]) -> dict:
    """A trigger row with its deliveries; the incident from whichever payload names one."""
    event = row["event"]
    payloads = [d.pop("payload") for d in deliveries]
    if isinstance(event, dict) and event.get("type") == "trigger" and isinstance(event.get("event"), dict):
        payloads.insert(0, event)  # a whole trigger payload stored, not its CloudEvent alone
        event = event["event"]
    incident = next((_incident_id(p.get("incident")) for p in payloads if isinstance(p, dict) and p.get("incident")),
                    _incident_id((event.get("data") or {}).get("incident")) if isinstance(event, dict) else None)
    return {**row, "event": event, "incident": incident, "deliveries": deliveries}


def _incident_id(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return None if value is None else str(value)
