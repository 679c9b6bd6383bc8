"""Outbox delivery by deadline: ``deadline_at``, an index for due rows, and a second chance.

Rows the old ``max_attempts`` rule left ``failed`` become ``pending`` again (due now)
when they were created less than 24 hours ago; the new rule then retries them until
their deadline. URL paths and queries in stored ``last_error`` texts (the old webhook
sink wrote them there, tokens included) are cut to ``scheme://host[:port]/…``.

Revision ID: 0002
Revises: 0001
"""

import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_URL_TAIL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s?#]+)[/?#][^\s'\"]*")

outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("status", sa.String),
                  sa.column("next_attempt_at", sa.Float), sa.column("created_at", sa.Float),
                  sa.column("last_error", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("deadline_at", sa.Float))
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.execute(outbox.update().where(outbox.c.status == "failed", outbox.c.created_at >= time.time() - 86400)
               .values(status="pending", next_attempt_at=0.0))
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.last_error).where(outbox.c.last_error.like("%://%"))).all()
    for row_id, error in rows:
        conn.execute(outbox.update().where(outbox.c.id == row_id)
                     .values(last_error=_URL_TAIL.sub(r"\1/…", error)))


def downgrade() -> None:
    op.drop_index("ix_outbox_due", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("deadline_at")
