"""Scale-out with labels: each partition's performance accumulator of a window.

``perf_partials``: one row per (group, model, version, window start, topic, partition), the
partition's accumulated realized (and estimated) performance of that window
(``driftline/realized.py`` ``_Window``, encoded) and the partition's newest event or label
time of the model (epoch ms: the merged line's clock), upserted in the transaction of the
partition's checkpoint whenever it changes. ``stamp`` is a new random value at every write;
``dirty`` is set by a write whose change must be revised (labels credited, the estimate
complete, a label_coverage age passed; a write of new predictions alone keeps the flag) and
cleared by the merge that revised the window from every partition's row, only if the row
still has the stamp it read; ``finished`` is set once no label can reach the partition's
share (all its predictions past ``labels.max_delay``); a window whose rows are all finished
is deleted by the merge.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "perf_partials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("window_key", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("newest", sa.BigInteger, nullable=False),
        sa.Column("stamp", sa.BigInteger, nullable=False),
        sa.Column("dirty", sa.Boolean, nullable=False),
        sa.Column("finished", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("group", "model", "version", "window_key", "topic", "partition",
                            name="uq_perf_partial"),
    )
    op.create_index("ix_perf_partials_model", "perf_partials", ["group", "model", "dirty"])


def downgrade() -> None:
    op.drop_index("ix_perf_partials_model", "perf_partials")
    op.drop_table("perf_partials")
