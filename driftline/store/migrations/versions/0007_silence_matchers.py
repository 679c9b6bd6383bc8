"""Silences by label matchers (Alertmanager's): ``matchers``, a start, an end, an author, a comment.

``silences`` gains ``matchers`` (JSON ``[[name, op, value], …]``), ``starts_at``,
``ends_at``, ``author``, ``comment``, ``created_at``, ``expired_at`` (nullable) and the
index ``ix_silences_ends``; ``model``, ``rule``, ``until`` and ``reason`` go. A stored
silence ``(model, rule, until, reason)`` becomes ``[["model", "=", model]]`` (plus
``["rule", "=", rule]`` when it had a rule), ``ends_at = until``, ``comment = reason``,
``author = "unknown"``; the old rows kept no creation time, so ``created_at`` and
``starts_at`` are the time of the upgrade (an earlier ``until`` if the silence had already
ended): one in force stays in force until its ``until``, one that ended stays ended. The
table is made anew with the converted rows (their ids kept), not altered column by column.

The downgrade keeps only the silences that the old columns can say (``model=M`` and at
most ``rule=R``, nothing else); the others are deleted.

Revision ID: 0007
Revises: 0006
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

old_silences = sa.table("silences", sa.column("id", sa.Integer), sa.column("model", sa.String),
                        sa.column("rule", sa.String), sa.column("until", sa.Float), sa.column("reason", sa.String))


def _create_new() -> sa.Table:
    return op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expired_at", sa.Float))


def _create_old() -> sa.Table:
    return op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200)),
        sa.Column("until", sa.Float, nullable=False),
        sa.Column("reason", sa.String(500)))


def _recreate(create, rows: list[dict]) -> None:
    """Drop ``silences`` and make it again with ``create``, holding ``rows`` (ids kept). A silences
    table is small; one new table is cheaper than altering every column (SQLite copies the table
    for each batch of changes), and a new database pays nothing for it."""
    op.drop_table("silences")
    table = create()
    if not rows:
        return
    op.bulk_insert(table, rows)
    if op.get_bind().dialect.name == "postgresql":  # explicit ids do not move the id sequence
        op.execute("SELECT setval(pg_get_serial_sequence('silences', 'id'), (SELECT max(id) FROM silences))")


def upgrade() -> None:
    conn, now, s = op.get_bind(), time.time(), old_silences.c
    rows = []
    for row in conn.execute(sa.select(s.id, s.model, s.rule, s.until, s.reason).order_by(s.id)).all():
        start = min(now, row.until)
        rows.append({"id": row.id, "matchers": [["model", "=", row.model]]
                     + ([["rule", "=", row.rule]] if row.rule is not None else []),
                     "starts_at": start, "ends_at": row.until, "author": "unknown",
                     "comment": row.reason or "", "created_at": start, "expired_at": None})
    _recreate(_create_new, rows)
    op.create_index("ix_silences_ends", "silences", ["ends_at"])


def _old(matchers) -> tuple[str, str | None] | None:
    """``(model, rule)`` when the old columns can say these matchers, else ``None``."""
    eq = {name: value for name, op_, value in matchers if op_ == "="}
    if "model" not in eq or len(matchers) != len(eq) or set(eq) - {"model", "rule"}:
        return None
    return eq["model"], eq.get("rule")


def downgrade() -> None:
    new = sa.table("silences", sa.column("id", sa.Integer), sa.column("matchers", sa.JSON),
                   sa.column("ends_at", sa.Float), sa.column("comment", sa.String))
    rows = []
    for row in op.get_bind().execute(sa.select(new.c.id, new.c.matchers, new.c.ends_at, new.c.comment)
                                     .order_by(new.c.id)).all():
        old = _old(row.matchers)
        if old is not None:
            rows.append({"id": row.id, "model": old[0], "rule": old[1], "until": row.ends_at,
                         "reason": row.comment[:500]})
    op.drop_index("ix_silences_ends", table_name="silences")
    _recreate(_create_old, rows)
