"""Schema migrations with Alembic.

A new, empty database is brought to the newest schema on start; an existing
one that is behind is left alone until ``driftline db upgrade``, so an upgrade
of the service never changes a production schema by surprise.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from driftline.errors import StoreError

_SCRIPTS = str(Path(__file__).with_name("migrations"))


def _config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as c:
        command.upgrade(_config(c), revision)


#: the PostgreSQL advisory lock under which a new database's schema is created ("dlschema")
SCHEMA_LOCK = 0x646C736368656D61


def ensure_current(engine: Engine) -> None:
    """Create the schema in an empty database; refuse one that is behind or unknown. Processes
    that start together on a new PostgreSQL database (scale-out replicas) take turns under an
    advisory lock: the first creates the schema, the others find it made."""
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(text("select pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        rev = MigrationContext.configure(c).get_current_revision()
        if rev is None:
            if inspect(c).get_table_names():
                raise StoreError("the database has tables but no driftline schema version; "
                                 "point driftline at an empty database")
            command.upgrade(_config(c), "head")
            return
    newest = head()
    if rev != newest:
        known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
        if rev not in known:
            raise StoreError(f"the database schema is at {rev}, which this driftline does not know "
                             f"(newest here: {newest}); is a newer driftline writing to it?")
        raise StoreError(f"the database schema is at {rev}, driftline needs {newest}: "
                         f"run `driftline db upgrade -c CONFIG`")
