"""The store: the only package that imports SQLAlchemy."""

from driftline.store.outbox import OutboxItem
from driftline.store.sql import SqlStore

__all__ = ["OutboxItem", "SqlStore"]
