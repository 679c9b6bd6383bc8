"""The store's edge: engines, SQLAlchemy's errors as ours, and writes by key.

:func:`open_engine` makes an engine for a URL (PostgreSQL through psycopg, SQLite with
real transactions); :func:`store_error` and :func:`mapped` turn SQLAlchemy's errors into
:class:`~driftline.errors.StoreError`; :func:`insert_ignore` and :func:`upsert` write a
row by its unique key with ``INSERT … ON CONFLICT``, in the dialect of the connection.
"""

from __future__ import annotations

import functools
from pathlib import Path

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from driftline.errors import StoreError, StoreUnavailable

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _dumps(obj) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one per connection: it cannot be opened twice)."""
    parsed = make_url(url)
    return parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:")


#: seconds (PostgreSQL ``idle_in_transaction_session_timeout``)
IDLE_IN_TRANSACTION = 30


def open_engine(url: str) -> Engine:
    """An engine for ``url``; the parent folder of a SQLite file is made."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and not in_memory(url):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # pre-ping: a connection that died in a database restart is replaced, not used;
    # hidden parameters: a refused statement's error never carries the values it wrote
    # PostgreSQL ends a transaction left open for IDLE_IN_TRANSACTION: a process frozen (SIGSTOP, a
    # paused VM) inside a checkpoint or a merge would otherwise hold its row and advisory locks, and
    # with them every other scale-out process, until it woke
    extra = {"connect_args": {"options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION * 1000}"}} \
        if parsed.drivername.startswith("postgresql") else {}
    engine = create_engine(parsed, json_serializer=_dumps, json_deserializer=orjson.loads,
                           pool_pre_ping=True, hide_parameters=True, **extra)
    if parsed.drivername.startswith("sqlite"):
        _transactional_sqlite(engine)
    return engine


def _transactional_sqlite(engine: Engine) -> None:
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


#: SQLSTATEs of a session the server ended: connection exceptions, operator intervention
#: (shutdown, terminated backend), and the idle-in-transaction timeout (a frozen process woken)
_SESSION_ENDED = ("08", "57P", "25P03")


def store_error(exc: SQLAlchemyError, what: str) -> StoreError:
    """Ours from SQLAlchemy's: an unreachable database (waited out) or a refused write (a bug or bad data)."""
    detail = f"{exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated) or sqlstate.startswith(_SESSION_ENDED):
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


def _insert(c: Connection, table):
    return _INSERTS[c.dialect.name](table)


def insert_ignore(c: Connection, table, values: dict, returning=None):
    """Insert ``values`` unless a row with the same unique key exists (``ON CONFLICT DO
    NOTHING``). With ``returning`` (a column), its value for the new row, or ``None``
    when nothing was inserted."""
    stmt = _insert(c, table).values(**values).on_conflict_do_nothing()
    if returning is None:
        c.execute(stmt)
        return None
    return c.execute(stmt.returning(returning)).scalar()


def upsert(c: Connection, table, key: dict, values: dict, inserted: dict | None = None) -> None:
    """Insert the row ``key`` with ``values`` (and ``inserted``), or set ``values`` on the one that exists."""
    stmt = _insert(c, table).values(**(key | (inserted or {}) | values))
    c.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=values))


class Queries:
    """A read-only part of the store: its engine and a query's rows as dicts."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _rows(self, q) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]
