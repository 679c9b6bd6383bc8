"""The SQL store (SQLite by default, PostgreSQL in production), split by job.

:class:`SqlStore` owns the engine and the one transaction, :meth:`SqlStore.commit`,
which writes a whole :class:`~driftline.types.CommitUnit` — window summaries, drift
results, alert state, triggers (``store.results``), outbox entries (``store.outbox``),
reference profiles, the checkpoint and the source offsets (``store.state``). Keys make
a replayed unit harmless: every row is inserted by its unique key with ``ON CONFLICT``.
The rest is reached through the job parts: ``store.state.load_offsets(group)``,
``store.outbox.due(now)``, ``store.reads.windows("fraud")``.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from driftline.store import migrate
from driftline.store.browse import Browse
from driftline.store.engine import in_memory, open_engine, store_error
from driftline.store.outbox import Outbox
from driftline.store.partials import Partials
from driftline.store.reads import Reads
from driftline.store.results import Results
from driftline.store.state import State


class SqlStore:
    def __init__(self, url: str, upgrade: bool = False):
        self.url = url
        try:
            self.engine = open_engine(url)
            if upgrade:
                migrate.upgrade(self.engine)
            migrate.ensure_current(self.engine)
        except SQLAlchemyError as exc:
            raise store_error(exc, f"cannot open the store at {self.describe()}") from exc
        self.state = State(self.engine, url)
        self.results = Results(self.engine)
        self.outbox = Outbox(self.engine)
        self.reads = Reads(self.engine)
        self.browse = Browse(self.engine)  # the HTTP API's paged reads
        self.partials = Partials(self.engine)  # scale-out: partial windows and partition marks

    def schema_version(self) -> str | None:
        return migrate.current(self.engine)

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def outbox_for_thread(self) -> Outbox | None:
        """The outbox on an engine of its own (same URL), for a delivery thread; ``None``
        for an in-memory SQLite store, which a second engine would see empty."""
        if in_memory(self.url):
            return None
        try:
            return Outbox(open_engine(self.url), owns_engine=True)
        except SQLAlchemyError as exc:
            raise store_error(exc, f"cannot open the store at {self.describe()}") from exc

    def commit(self, group: str, unit) -> None:
        """Write ``unit`` in one transaction: results, outbox, state and offsets, or nothing."""
        try:
            with self.engine.begin() as c:
                self.write(c, group, unit)
                Partials.write(c, group, unit)
        except SQLAlchemyError as exc:
            raise store_error(exc, "could not commit window results") from exc

    def write(self, c, group: str, unit) -> None:
        """Results, outbox, state and offsets of ``unit`` inside the caller's transaction ``c``."""
        self.results.write(c, unit)
        self.outbox.enqueue(c, unit.notifications)
        self.state.write(c, group, unit)

    def close(self) -> None:
        self.state.release()
        self.engine.dispose()
