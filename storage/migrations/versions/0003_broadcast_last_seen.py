"""When each broadcast was last seen on air, so that silent live rooms can end;
indexes for listing the inbox newest first

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_broadcast_live_last_seen", ["is_live", "last_seen_at"], unique=False
        )
    op.create_index("ix_inbox_entry_received", "inbox_entry", ["received_at", "id"])
    op.create_index(
        "ix_inbox_entry_outcome_received", "inbox_entry", ["outcome", "received_at", "id"]
    )
    # A lower bound: a live broadcast that looks silent by it is regrouped from all
    # its facts by the next sweep, which sets the real value (or keeps it live).
    op.execute("UPDATE broadcast SET last_seen_at = COALESCE(ended_at, started_at)")


def downgrade() -> None:
    op.drop_index("ix_inbox_entry_outcome_received", table_name="inbox_entry")
    op.drop_index("ix_inbox_entry_received", table_name="inbox_entry")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_live_last_seen")
        batch_op.drop_column("last_seen_at")
