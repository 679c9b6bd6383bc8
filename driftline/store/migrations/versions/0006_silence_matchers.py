"""Silences by label matchers (Alertmanager's): ``matchers``, a start, an end, an author, a comment.

``silences`` gains ``matchers`` (JSON ``[[name, op, value], …]``), ``starts_at``,
``ends_at``, ``author``, ``comment``, ``created_at``, ``expired_at`` (nullable) and the
index ``ix_silences_ends``; ``model``, ``rule``, ``until`` and ``reason`` go. A stored
silence ``(model, rule, until, reason)`` becomes ``[["model", "=", model]]`` (plus
``["rule", "=", rule]`` when it had a rule), ``ends_at = until``, ``comment = reason``,
``author = "unknown"``; the old rows kept no creation time, so ``created_at`` and
``starts_at`` are the time of the upgrade (an earlier ``until`` if the silence had already
ended): one in force stays in force until its ``until``, one that ended stays ended.

The downgrade keeps only the silences that the old columns can say (``model=M`` and at
most ``rule=R``, nothing else); the others are deleted.

Revision ID: 0006
Revises: 0005
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

silences = sa.table("silences", sa.column("id", sa.Integer), sa.column("model", sa.String),
                    sa.column("rule", sa.String), sa.column("until", sa.Float), sa.column("reason", sa.String),
                    sa.column("matchers", sa.JSON), sa.column("starts_at", sa.Float), sa.column("ends_at", sa.Float),
                    sa.column("author", sa.String), sa.column("comment", sa.String),
                    sa.column("created_at", sa.Float), sa.column("expired_at", sa.Float))

NEW = ("matchers", "starts_at", "ends_at", "author", "comment", "created_at")
OLD = ("model", "until")


def _new_columns() -> list[sa.Column]:
    return [sa.Column("matchers", sa.JSON), sa.Column("starts_at", sa.Float), sa.Column("ends_at", sa.Float),
            sa.Column("author", sa.String(200)), sa.Column("comment", sa.String(1000)),
            sa.Column("created_at", sa.Float), sa.Column("expired_at", sa.Float)]


def upgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        for column in _new_columns():
            batch.add_column(column)
    conn, now = op.get_bind(), time.time()
    s = silences.c
    for row in conn.execute(sa.select(s.id, s.model, s.rule, s.until, s.reason)).all():
        matchers = [["model", "=", row.model]] + ([["rule", "=", row.rule]] if row.rule is not None else [])
        start = min(now, row.until)
        conn.execute(silences.update().where(s.id == row.id).values(
            matchers=matchers, starts_at=start, ends_at=row.until, author="unknown",
            comment=row.reason or "", created_at=start))
    with op.batch_alter_table("silences") as batch:
        for name in NEW:
            batch.alter_column(name, nullable=False)
        for name in ("model", "rule", "until", "reason"):
            batch.drop_column(name)
    op.create_index("ix_silences_ends", "silences", ["ends_at"])


def _old(matchers) -> tuple[str, str | None] | None:
    """``(model, rule)`` when the old columns can say these matchers, else ``None``."""
    eq = {name: value for name, op_, value in matchers if op_ == "="}
    if "model" not in eq or len(matchers) != len(eq) or set(eq) - {"model", "rule"}:
        return None
    return eq["model"], eq.get("rule")


def downgrade() -> None:
    op.drop_index("ix_silences_ends", table_name="silences")
    with op.batch_alter_table("silences") as batch:
        for column in (sa.Column("model", sa.String(200)), sa.Column("rule", sa.String(200)),
                       sa.Column("until", sa.Float), sa.Column("reason", sa.String(500))):
            batch.add_column(column)
    conn, s = op.get_bind(), silences.c
    for row in conn.execute(sa.select(s.id, s.matchers, s.ends_at, s.comment)).all():
        old = _old(row.matchers)
        if old is None:
            conn.execute(silences.delete().where(s.id == row.id))
            continue
        conn.execute(silences.update().where(s.id == row.id).values(
            model=old[0], rule=old[1], until=row.ends_at, reason=row.comment[:500]))
    with op.batch_alter_table("silences") as batch:
        for name in OLD:
            batch.alter_column(name, nullable=False)
        for column in _new_columns():
            batch.drop_column(column.name)
