"""Outbox claims: several processes deliver from one outbox, none twice (docs/alerting.md).

``outbox`` gains ``incident`` (the incident a row belongs to: an incident notification's,
or a trigger's; with ``sink`` the unit one process owns at a time), ``claimed_by`` (the
process that claimed the row last) and ``claimed_until`` (its lease, epoch seconds; ``NULL``
once released), and an index on ``(incident, sink)``. ``incident`` is filled in for the rows
still to be delivered (``pending``, and ``failed``, which ``--retry-failed`` revives); rows
already delivered are not claimed again and keep ``NULL``. The downgrade drops the three.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                  sa.column("status", sa.String), sa.column("payload", sa.JSON), sa.column("incident", sa.String))


def _incident(kind: str, payload) -> str | None:
    """As ``driftline.store.outbox.incident_of`` at this revision (a migration does not import the app)."""
    value = payload.get("incident") if isinstance(payload, dict) else None
    if kind == "incident" and isinstance(value, dict):
        value = value.get("id")
    return value[:40] if kind in ("incident", "trigger") and isinstance(value, str) and value else None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("incident", sa.String(40)))
        batch.add_column(sa.Column("claimed_by", sa.String(120)))
        batch.add_column(sa.Column("claimed_until", sa.Float))
    op.create_index("ix_outbox_incident", "outbox", ["incident", "sink"])
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.kind, outbox.c.payload).where(
        outbox.c.status.in_(("pending", "failed")), outbox.c.kind.in_(("incident", "trigger")))).all()
    for row_id, kind, payload in rows:
        incident = _incident(kind, payload)
        if incident is not None:
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(incident=incident))


def downgrade() -> None:
    op.drop_index("ix_outbox_incident", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("incident")
