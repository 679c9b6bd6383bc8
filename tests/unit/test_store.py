"""The store's schema comes from Alembic migrations and matches the table definitions."""

import pytest
from sqlalchemy import create_engine, inspect

from driftline.errors import StoreError
from driftline.store import SqlStore, migrate
from driftline.store.schema import metadata


def columns(engine):
    insp = inspect(engine)
    return {t: sorted((c["name"], str(c["type"]).split("(")[0], c["nullable"]) for c in insp.get_columns(t))
            for t in insp.get_table_names() if t != "alembic_version"}


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    migrated = SqlStore(f"sqlite:///{tmp_path / 'a.db'}")
    declared = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    metadata.create_all(declared)
    assert columns(migrated.engine) == columns(declared)
    assert migrated.schema_version() == migrate.head()


def test_a_database_behind_the_code_is_refused_until_upgraded(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = SqlStore(url)
    with store.engine.begin() as c:  # pretend an older driftline made it
        c.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(StoreError, match="which this driftline does not know"):
        SqlStore(url)


def test_tables_without_a_schema_version_are_not_touched(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    engine = create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE something_else (id integer)")
    with pytest.raises(StoreError, match="no driftline schema version"):
        SqlStore(url)


def test_a_first_migration_that_dies_half_way_leaves_an_empty_database(tmp_path, monkeypatch):
    """SQLite DDL runs in the migration's transaction: a start killed mid-migration leaves
    nothing, and the next start builds the schema (it used to refuse a half-made database)."""
    from alembic.operations import Operations

    url = f"sqlite:///{tmp_path / 'e.db'}"
    real = Operations.create_table
    made = []

    def dies_after_three_tables(self, *args, **kw):
        if len(made) == 3:
            raise KeyboardInterrupt("killed mid-migration")
        made.append(args[0])
        return real(self, *args, **kw)

    monkeypatch.setattr(Operations, "create_table", dies_after_three_tables)
    with pytest.raises(KeyboardInterrupt):
        SqlStore(url)
    assert len(made) == 3
    assert inspect(create_engine(url)).get_table_names() == []
    monkeypatch.setattr(Operations, "create_table", real)
    assert SqlStore(url).schema_version() == migrate.head()
