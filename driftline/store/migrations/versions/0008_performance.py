"""Realized performance per window (docs/labels.md, "In the pipeline").

One row per model, version and window (``window_key``: a time window's start in epoch
ms, a count window's seq), upserted with each revision as the window's labels come.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "performance",
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
        sa.UniqueConstraint("model", "version", "window_key", name="uq_performance"),
    )


def downgrade() -> None:
    op.drop_table("performance")
