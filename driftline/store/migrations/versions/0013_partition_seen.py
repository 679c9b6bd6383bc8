"""Scale-out: what each partition's mark says of its model versions, for the no-data rules.

``partitions.seen``: ``{"claimed": wall-clock seconds, "versions": {model: {version: [newest
event time (epoch ms), wall-clock seconds of its last arrival]}}}`` of the partition as its
owner read it (``claimed``: when that owner took the partition); ``NULL`` in marks written
before this revision (read as nothing seen). The merger computes each version's silence from
every partition's (``driftline/scale/silence.py``).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("seen", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("seen")
