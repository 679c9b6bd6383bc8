"""Results: window summaries, their drift results, alert state and events, incidents, triggers.

Each is written by its key with ``INSERT … ON CONFLICT DO NOTHING`` (alert state, which
changes, by upsert), so a replayed :class:`~driftline.types.CommitUnit` writes nothing
twice; a window's drift results are written only when its window row was new.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from driftline.store import schema as t
from driftline.store.engine import insert_ignore, mapped, upsert
from driftline.types import AlertState, to_ms

_DRIFT = ("method", "statistic", "p_value", "threshold", "drifted")


class Results:
    def __init__(self, engine: Engine):
        self.engine = engine

    @mapped("could not load alert state")
    def load_alert_states(self) -> dict[str, AlertState]:
        with self.engine.connect() as c:
            return {r.fingerprint: AlertState(**r.state) for r in c.execute(select(t.alerts))}

    @mapped("could not load open incidents")
    def load_open_incidents(self) -> list[dict]:
        """The state of every incident still firing (``Incident.to_state()``)."""
        q = select(t.incidents.c.state).where(t.incidents.c.status == "firing")
        with self.engine.connect() as c:
            return [r.state for r in c.execute(q)]

    @mapped("could not load triggers")
    def load_last_triggers(self) -> dict[tuple[str, str], int]:
        """The newest trigger's window end (epoch ms) per model and version."""
        q = select(t.triggers.c.model, t.triggers.c.version, t.triggers.c.window_end_ms)
        out: dict[tuple[str, str], int] = {}
        with self.engine.connect() as c:
            for model, version, end in c.execute(q):
                out[(model, version)] = max(end, out.get((model, version), end))
        return out

    @classmethod
    def write(cls, c: Connection, unit) -> None:
        """The windows, alert states and triggers of ``unit``, inside the caller's transaction."""
        for summary in unit.windows:
            cls._window(c, summary)
        for state in unit.alert_states:
            cls._alert(c, state)
        for trig in unit.triggers:
            cls._trigger(c, trig["event"])
        for rev in unit.performance:
            cls._performance(c, rev)
        latest = {inc["id"]: inc for inc in unit.incidents}  # the newest of each
        for inc in latest.values():
            cls._incident(c, inc)

    @staticmethod
    def _incident(c: Connection, inc: dict) -> None:
        upsert(c, t.incidents, {"id": inc["id"]},
               {"key": inc["key"], "model": inc["model"], "version": inc["version"], "status": inc["status"],
                "severity": inc["severity"], "opened_at": inc["opened_at"], "updated_at": inc["updated_at"],
                "resolved_at": inc["resolved_at"], "state": inc})

    @staticmethod
    def _performance(c: Connection, r: dict) -> None:
        w, d = r["window"], r["delay"]
        seg = r.get("segment")
        upsert(c, t.performance, {"model": r["model"], "version": r["version"], "window_key": r["window_key"],
                                  "segment": "" if seg is None else f"{seg['feature']}={seg['value']}"},
               {"window_kind": r["window_kind"], "start": w["start"], "end": w["end"],
                "seq": w["seq"], "count": r["count"], "labelled": r["labelled"],
                "labelled_share": r["labelled_share"], "delay_p50": d.get("p50"), "delay_p90": d.get("p90"),
                "delay_max": d.get("max"), "metrics": r["metrics"], "revision": r["revision"],
                "estimated": r.get("estimated"), "reference": r.get("reference"), "versions": r.get("versions"),
                "findings": r.get("findings") or None, "updated_at": time.time()})

    @mapped("could not load performance")
    def performance(self, model: str | None = None) -> list[dict]:
        """The newest revision of each window's performance, by model, version and window."""
        q = select(t.performance).order_by(t.performance.c.model, t.performance.c.version,
                                           t.performance.c.window_key, t.performance.c.segment)
        if model is not None:
            q = q.where(t.performance.c.model == model)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    @staticmethod
    def _window(c: Connection, s: dict) -> None:
        wid = insert_ignore(c, t.windows, dict(
            model=s["model"], version=s["version"], seq=s["seq"], start=s["start"], end=s["end"],
            count=s["count"], invalid=s["invalid"], late=s["late"], tests_run=s["tests_run"],
            drifted=len(s["drifted"]), summary=s), returning=t.windows.c.id)
        if wid is None:
            return  # stored by an earlier commit of the same window
        subjects = dict(s["features"])
        if "prediction" in s:
            subjects["prediction"] = s["prediction"]
        rows = [{"window_id": wid, "feature": name, **{k: v["drift"][k] for k in _DRIFT}}
                for name, v in subjects.items() if v.get("drift")]
        if rows:
            c.execute(t.drift_results.insert(), rows)

    @staticmethod
    def _alert(c: Connection, state: AlertState) -> None:
        upsert(c, t.alerts, {"fingerprint": state.fingerprint},
               {"model": state.model, "version": state.version, "rule": state.rule,
                "status": state.status, "state": state.to_dict()})
        ev = state.last_event
        if ev is not None:
            insert_ignore(c, t.alert_events, dict(fingerprint=state.fingerprint, status=ev["status"],
                                                  window_end=ev["window_end"], payload=ev))

    @staticmethod
    def _trigger(c: Connection, ev: dict) -> None:
        d = ev["data"]
        insert_ignore(c, t.triggers, dict(id=ev["id"], model=d["model"], version=d["version"],
                                          window_end_ms=to_ms(d["window"]["end"]), event=ev))
