"""Scale-out: where each partition's owner found its end.

``partitions.read_to``: the offset at which the owner's consumer last reported the partition's
end, when that is the offset it had read up to at the checkpoint (``NULL``: not read to its
end then, or a mark written before this revision). The merger counts a partition as read to
its end (``caught_up``, and ``idle``) only with it: a broker's high watermark alone may be
under-reported (Tansu answers the first offset of its last record batch, plus one), and a
partition read halfway through its last batch would look read to its end.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("read_to", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("read_to")
