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
