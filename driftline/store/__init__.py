"""The store: the only package that imports SQLAlchemy."""

from driftline.store.sql import OutboxItem, SqlStore

__all__ = ["OutboxItem", "SqlStore"]
