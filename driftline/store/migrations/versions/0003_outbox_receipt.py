"""Delivery receipts: what a sink said when it accepted a notification.

A nullable JSON ``receipt`` on ``outbox``: Slack's ``channel`` and message ``ts``, a
webhook's HTTP ``status``, a topic's partition and offset. Rows sent before this
revision have none.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("receipt", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("receipt")
