"""Incidents: the alerts of one group while any of them fires (docs/alerting.md).

One row per incident, upserted by the checkpoint that changes it; ``state`` is the
router's ``Incident.to_state()``. Open incidents (status ``firing``) are loaded on start.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("opened_at", sa.String(40)),
        sa.Column("updated_at", sa.String(40)),
        sa.Column("resolved_at", sa.String(40)),
        sa.Column("state", sa.JSON, nullable=False),
    )
    op.create_index("ix_incidents_status", "incidents", ["status", "model"])


def downgrade() -> None:
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_table("incidents")
