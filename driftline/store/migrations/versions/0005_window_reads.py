"""An index for the recent-windows reads (``driftline status`` and ``windows``).

``ix_windows_recent`` on windows (model, version, end): the newest windows of a model
version and the events of the last hour are read from it instead of from every window.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_windows_recent", "windows", ["model", "version", "end"])


def downgrade() -> None:
    op.drop_index("ix_windows_recent", table_name="windows")
