"""Read queries for the CLI, the tests and (later) the HTTP API: nothing here writes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from driftline.store import schema as t
from driftline.store.engine import mapped


class Reads:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _rows(self, q) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

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

    @mapped("could not read silences")
    def silences(self, now: float) -> list[dict]:
        """Silences still in force at ``now``."""
        return self._rows(select(t.silences).where(t.silences.c.until > now))
