"""State per key instead of one pickled checkpoint per consumer group.

``states`` holds each stateful part's encoded state (``driftline/state.py``) under
(consumer group, model, key, source): ``key`` is a model version, or ``""`` for the
model's own state; ``source`` is the topic-partition it came from (``"*"`` while one
process serves every partition). The old ``checkpoints`` table stays until the
service has converted a group's pickle on its first start (then its row is deleted).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "states",
        sa.Column("group", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(300), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("states")
