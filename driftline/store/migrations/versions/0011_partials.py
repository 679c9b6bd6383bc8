"""Scale-out (``kafka.scale_out``): partial windows and per-partition watermarks.

``partials``: one row per closed partial window of one source partition (model, version,
window start and end in epoch ms, topic, partition, why it closed, its event count and its
encoded :class:`~driftline.streams.windows.Window` state), written in the transaction of
the partition's checkpoint and deleted in the transaction that merges the window. The key
``(group, model, version, start_ms, topic, partition)`` makes a replayed checkpoint harmless.

``partitions``: per consumer group and source partition, its event-time watermark (the
newest event time read from it, epoch ms; ``NULL`` before its first event), the models
it has carried, whether it is idle (no record for ``kafka.partition_idle``; its open
windows were closed), the process that owns it (a fencing token) and when it was written.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("closed_by", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("group", "model", "version", "start_ms", "topic", "partition", name="uq_partial"),
    )
    op.create_index("ix_partials_model", "partials", ["group", "model", "start_ms"])
    op.create_table(
        "partitions",
        sa.Column("group", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(300), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("watermark", sa.BigInteger),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("idle", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(120)),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partitions")
    op.drop_index("ix_partials_model", "partials")
    op.drop_table("partials")
