"""Performance rows per segment, with the estimate, the reference comparison and findings.

``performance`` gains ``segment`` (``""`` for the whole model version, ``feature=value``
for one segment; part of the unique key), ``estimated`` (the estimated metrics of the
window, JSON, before and beside its labels), ``reference`` (the reference's metrics and the
comparison with them, JSON), ``versions`` (the comparison with the previous version,
JSON) and ``findings`` (JSON list, e.g. concept drift on the error stream). The table is
small (a row per window); it is made anew with its rows (ids kept), not altered column by
column. The downgrade keeps the whole-version rows only.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BASE = ("id", "model", "version", "window_key", "window_kind", "start", "end", "seq", "count", "labelled",
         "labelled_share", "delay_p50", "delay_p90", "delay_max", "metrics", "revision", "updated_at")


def _columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("window_key", sa.BigInteger, nullable=False),
        sa.Column("window_kind", sa.String(10), nullable=False),
        sa.Column("start", sa.String(40)),
        sa.Column("end", sa.String(40)),
        sa.Column("seq", sa.Integer),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("labelled", sa.Integer, nullable=False),
        sa.Column("labelled_share", sa.Float),
        sa.Column("delay_p50", sa.Float),
        sa.Column("delay_p90", sa.Float),
        sa.Column("delay_max", sa.Float),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    ]


def _recreate(new: bool, rows: list[dict]) -> None:
    op.drop_table("performance")
    extra = [sa.Column("segment", sa.String(400), nullable=False, server_default=""),
             sa.Column("estimated", sa.JSON), sa.Column("reference", sa.JSON), sa.Column("versions", sa.JSON),
             sa.Column("findings", sa.JSON),
             sa.UniqueConstraint("model", "version", "window_key", "segment", name="uq_performance")] if new \
        else [sa.UniqueConstraint("model", "version", "window_key", name="uq_performance")]
    table = op.create_table("performance", *_columns(), *extra)
    if rows:
        op.bulk_insert(table, rows)
        if op.get_bind().dialect.name == "postgresql":  # explicit ids do not move the id sequence
            op.execute("SELECT setval(pg_get_serial_sequence('performance', 'id'), (SELECT max(id) FROM performance))")


def _rows(where=None) -> list[dict]:
    # typed: an untyped column would read the JSON as text, and the insert encode it again
    cols = [sa.column(c, sa.JSON) if c == "metrics" else sa.column(c) for c in _BASE]
    q = sa.select(*cols).select_from(sa.table("performance")).order_by(sa.column("id"))
    if where is not None:
        q = q.where(where)
    return [{c: r._mapping[c] for c in _BASE} for r in op.get_bind().execute(q)]


def upgrade() -> None:
    _recreate(True, [r | {"segment": ""} for r in _rows()])


def downgrade() -> None:
    _recreate(False, _rows(sa.column("segment") == ""))
