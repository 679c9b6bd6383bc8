"""The SQL store (SQLite by default, PostgreSQL in production).

``commit`` writes a whole :class:`~driftline.pipeline.CommitUnit` — window
summaries, drift results, alert state, outbox entries, triggers, reference
profiles, the detector checkpoint and the source offsets — in one transaction.
Keys make a replayed unit harmless: a window or notification already stored is
skipped, not written twice.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from driftline.errors import StoreError, StoreUnavailable
from driftline.store import migrate
from driftline.store import schema as t
from driftline.store.lock import GroupLock
from driftline.summary import subjects
from driftline.types import AlertState, to_ms


def _dumps(obj) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    sink: str
    kind: str
    payload: dict
    attempts: int
    created_at: float = 0.0
    deadline_at: float | None = None  # None: created_at + alerts.delivery_deadline
    last_error: str | None = None


def _item(r) -> OutboxItem:
    return OutboxItem(r.id, r.key, r.sink, r.kind, r.payload, r.attempts, r.created_at, r.deadline_at, r.last_error)


def _transactional_sqlite(engine) -> None:
    """Make every SQLAlchemy transaction a real SQLite transaction, DDL included.

    pysqlite begins a transaction only before INSERT/UPDATE/DELETE, so a migration's
    CREATE TABLEs each committed on their own, and a first start killed mid-migration
    left a half-made database that the next start refused. This is SQLAlchemy's recipe
    for pysqlite: the driver in autocommit mode, and a ``BEGIN`` when SQLAlchemy begins."""

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")


def store_error(exc: SQLAlchemyError, what: str) -> StoreError:
    """Ours from SQLAlchemy's: an unreachable database (waited out) or a refused write (a bug or bad data)."""
    detail = f"{exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return StoreUnavailable(f"{what}: the database is unreachable: {detail}")
    return StoreError(f"{what}: {detail}")


def mapped(what: str):
    """Decorate a store method so SQLAlchemy's errors leave it as ours (see :func:`store_error`)."""
    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except SQLAlchemyError as exc:
                raise store_error(exc, what) from exc
        return call
    return wrap


class SqlStore:
    def __init__(self, url: str, upgrade: bool = False):
        self.url = url
        self._lock: GroupLock | None = None
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg")
        try:
            # pre-ping: a connection that died in a database restart is replaced, not used;
            # hidden parameters: a refused statement's error never carries the values it wrote
            self.engine = create_engine(url, json_serializer=_dumps, json_deserializer=orjson.loads,
                                        pool_pre_ping=True, hide_parameters=True)
            if parsed.drivername.startswith("sqlite"):
                _transactional_sqlite(self.engine)
            if upgrade:
                migrate.upgrade(self.engine)
            migrate.ensure_current(self.engine)
        except SQLAlchemyError as exc:
            raise store_error(exc, f"cannot open the store at {parsed.render_as_string(hide_password=True)}") from exc

    def schema_version(self) -> str | None:
        return migrate.current(self.engine)

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @mapped("could not take the consumer group's lock")
    def lock_group(self, group: str) -> None:
        """Refuse to run beside another process serving ``group`` (see ``store/lock.py``)."""
        if self._lock is None:
            self._lock = GroupLock(self.engine, make_url(self.url).database, group)

    @mapped("could not take the consumer group's lock again")
    def check_lock(self) -> None:
        """Take the group's lock again if the database session that held it ended in an outage."""
        if self._lock is not None:
            self._lock.check()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.engine.dispose()

    # -- loading state ----------------------------------------------------------

    @mapped("could not load reference profiles")
    def load_references(self) -> dict[str, dict]:
        with self.engine.connect() as c:
            return {r.model: r.profile for r in c.execute(select(t.references))}

    @mapped("could not load the stored state")
    def load_states(self, group: str) -> dict[tuple[str, str, str], bytes]:
        """Every state key of ``group`` → its encoded state."""
        q = select(t.states).where(t.states.c.group == group)
        with self.engine.connect() as c:
            return {(r.model, r.key, r.source): r.data for r in c.execute(q)}

    @mapped("could not load the checkpoint of the previous release")
    def load_checkpoint(self, group: str) -> bytes | None:
        """The pickled checkpoint an older release wrote (bytes, never unpickled here)."""
        with self.engine.connect() as c:
            return c.execute(select(t.checkpoints.c.state).where(t.checkpoints.c.group == group)).scalar()

    @mapped("could not load alert state")
    def load_alert_states(self) -> dict[str, AlertState]:
        with self.engine.connect() as c:
            return {r.fingerprint: AlertState(**r.state) for r in c.execute(select(t.alerts))}

    @mapped("could not load triggers")
    def load_last_triggers(self) -> dict[tuple[str, str], int]:
        q = select(t.triggers.c.model, t.triggers.c.version, t.triggers.c.window_end_ms)
        out: dict[tuple[str, str], int] = {}
        with self.engine.connect() as c:
            for model, version, end in c.execute(q):
                out[(model, version)] = max(end, out.get((model, version), end))
        return out

    @mapped("could not load offsets")
    def load_offsets(self, group: str) -> dict[tuple[str, int], int]:
        q = select(t.offsets).where(t.offsets.c.group == group)
        with self.engine.connect() as c:
            return {(r.topic, r.partition): r.offset for r in c.execute(q)}

    # -- the one transaction ----------------------------------------------------

    def commit(self, group: str, unit) -> None:
        try:
            with self.engine.begin() as c:
                for profile in unit.references:
                    self._upsert(c, t.references, {"model": profile.model},
                                 {"profile": profile.to_dict(), "created_at": time.time()})
                for summary in unit.windows:
                    self._window(c, summary)
                for state in unit.alert_states:
                    self._alert(c, state)
                for trig in unit.triggers:
                    self._trigger(c, trig["event"])
                for n in unit.notifications:
                    if not c.execute(select(t.outbox.c.id).where(t.outbox.c.key == n.key)).first():
                        c.execute(insert(t.outbox).values(
                            key=n.key, sink=n.sink, kind=n.kind, payload=n.payload, status="pending",
                            attempts=0, next_attempt_at=0.0, created_at=time.time()))
                for (topic, partition), offset in unit.offsets.items():
                    self._upsert(c, t.offsets, {"group": group, "topic": topic, "partition": partition},
                                 {"offset": offset})
                self._states(c, group, unit.states)
                if unit.drop_legacy:
                    c.execute(delete(t.checkpoints).where(t.checkpoints.c.group == group))
        except SQLAlchemyError as exc:
            raise store_error(exc, "could not commit window results") from exc

    def _states(self, c: Connection, group: str, states: dict) -> None:
        now = time.time()
        for (model, key, source), data in states.items():
            where = {"group": group, "model": model, "key": key, "source": source}
            if data is None:
                c.execute(delete(t.states).where(and_(*(t.states.c[k] == v for k, v in where.items()))))
            else:
                self._upsert(c, t.states, where, {"data": data, "updated_at": now})

    @staticmethod
    def _upsert(c: Connection, table, key: dict, values: dict) -> None:
        cond = and_(*(table.c[k] == v for k, v in key.items()))
        if c.execute(update(table).where(cond).values(**values)).rowcount == 0:
            c.execute(insert(table).values(**key, **values))

    @staticmethod
    def _window(c: Connection, s: dict) -> None:
        key = and_(t.windows.c.model == s["model"], t.windows.c.version == s["version"],
                   t.windows.c.seq == s["seq"], t.windows.c.start == s["start"])
        if c.execute(select(t.windows.c.id).where(key)).first():
            return
        wid = c.execute(insert(t.windows).values(
            model=s["model"], version=s["version"], seq=s["seq"], start=s["start"], end=s["end"],
            count=s["count"], invalid=s["invalid"], late=s["late"], tests_run=s["tests_run"],
            drifted=len(s["drifted"]), summary=s)).inserted_primary_key[0]
        rows = [{"window_id": wid, "feature": name, **{k: v["drift"][k] for k in
                 ("method", "statistic", "p_value", "threshold", "drifted")}}
                for name, v in subjects(s).items() if v.get("drift")]
        if rows:
            c.execute(insert(t.drift_results), rows)

    def _alert(self, c: Connection, state: AlertState) -> None:
        self._upsert(c, t.alerts, {"fingerprint": state.fingerprint},
                     {"model": state.model, "version": state.version, "rule": state.rule,
                      "status": state.status, "state": state.to_dict()})
        ev = state.last_event
        if ev is not None:
            exists = c.execute(select(t.alert_events.c.id).where(and_(
                t.alert_events.c.fingerprint == state.fingerprint,
                t.alert_events.c.status == ev["status"],
                t.alert_events.c.window_end == ev["window_end"]))).first()
            if not exists:
                c.execute(insert(t.alert_events).values(
                    fingerprint=state.fingerprint, status=ev["status"],
                    window_end=ev["window_end"], payload=ev))

    @staticmethod
    def _trigger(c: Connection, ev: dict) -> None:
        if c.execute(select(t.triggers.c.id).where(t.triggers.c.id == ev["id"])).first():
            return
        d = ev["data"]
        c.execute(insert(t.triggers).values(id=ev["id"], model=d["model"], version=d["version"],
                                            window_end_ms=to_ms(d["window"]["end"]), event=ev))

    # -- outbox -----------------------------------------------------------------

    def due_notifications(self, now: float, limit: int = 100, exclude_sinks: tuple = ()) -> list[OutboxItem]:
        """Pending notifications due at ``now``, the longest waiting first, none for ``exclude_sinks``."""
        q = (select(t.outbox).where(t.outbox.c.status == "pending", t.outbox.c.next_attempt_at <= now)
             .order_by(t.outbox.c.next_attempt_at, t.outbox.c.id).limit(limit))
        if exclude_sinks:
            q = q.where(t.outbox.c.sink.not_in(exclude_sinks))
        with self.engine.connect() as c:
            return [_item(r) for r in c.execute(q)]

    def overdue_notifications(self, now: float, deadline: float, limit: int = 100) -> list[OutboxItem]:
        """Pending notifications past their deadline (``deadline_at``, else ``created_at + deadline``)."""
        due = func.coalesce(t.outbox.c.deadline_at, t.outbox.c.created_at + deadline)
        q = select(t.outbox).where(t.outbox.c.status == "pending", due < now).order_by(t.outbox.c.id).limit(limit)
        with self.engine.connect() as c:
            return [_item(r) for r in c.execute(q)]

    def mark_sent(self, item_id: int, status: str = "sent") -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id)
                      .values(status=status, sent_at=time.time()))

    def mark_retry(self, item_id: int, attempts: int, next_at: float, error: str, give_up: bool) -> None:
        """A failed attempt: retry at ``next_at``, or (``give_up``) status ``failed``.
        ``error`` must already be redacted."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
                attempts=attempts, next_attempt_at=next_at, last_error=error[:500],
                status="failed" if give_up else "pending"))

    def outbox_counts(self, statuses: tuple[str, ...] = ("pending", "failed")) -> dict[str, int]:
        """How many notifications are in each of ``statuses`` (by the status index: sent rows,
        which only grow, are not counted unless asked for)."""
        q = (select(t.outbox.c.status, func.count()).where(t.outbox.c.status.in_(statuses))
             .group_by(t.outbox.c.status))
        with self.engine.connect() as c:
            return {status: n for status, n in c.execute(q)}

    def undelivered(self, limit: int = 1000) -> list[dict]:
        """Notifications still pending and those given up (``failed``), oldest first."""
        q = (select(t.outbox).where(t.outbox.c.status.in_(("pending", "failed")))
             .order_by(t.outbox.c.id).limit(limit))
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    def retry_failed(self, now: float, deadline_at: float) -> int:
        """Put every given-up notification back to pending, due now, with a fresh deadline."""
        with self.engine.begin() as c:
            return c.execute(update(t.outbox).where(t.outbox.c.status == "failed").values(
                status="pending", attempts=0, next_attempt_at=now, deadline_at=deadline_at)).rowcount

    # -- reading for the CLI and tests ------------------------------------------

    def windows(self, model: str | None = None) -> list[dict]:
        q = select(t.windows.c.summary).order_by(t.windows.c.id)
        if model:
            q = q.where(t.windows.c.model == model)
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q)]

    def alert_events(self) -> list[dict]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(select(t.alert_events.c.payload).order_by(t.alert_events.c.id))]

    def outbox(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(select(t.outbox).order_by(t.outbox.c.id))]

    def triggers(self) -> list[dict]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(select(t.triggers.c.event))]

    def add_silence(self, model: str, rule: str | None, until: float, reason: str) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.silences).values(model=model, rule=rule, until=until, reason=reason))

    def silenced(self, model: str, rule: str | None, now: float) -> bool:
        q = select(t.silences.c.id).where(t.silences.c.model == model, t.silences.c.until > now)
        with self.engine.connect() as c:
            rows = c.execute(q.add_columns(t.silences.c.rule)).all()
        return any(r.rule in (None, rule) for r in rows)

    def silences(self, now: float) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(select(t.silences).where(t.silences.c.until > now))]

    def reset(self, group: str) -> int:
        """Forget ``group``'s open windows and detector state (closed windows, alerts and offsets stay)."""
        with self.engine.begin() as c:
            c.execute(delete(t.checkpoints).where(t.checkpoints.c.group == group))
            return c.execute(delete(t.states).where(t.states.c.group == group)).rowcount
