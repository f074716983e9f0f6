"""Indexes of each stream's pushes by time and by sequence, so that regrouping after a
push or cut-off reads only the pushes from the broadcast it can change on

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 23:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_push_event_stream_time", "push_event", ["stream_pk", "event_time"])
    op.create_index(
        "ix_push_event_stream_sequence", "push_event", ["stream_pk", "sequence", "event_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_push_event_stream_sequence", table_name="push_event")
    op.drop_index("ix_push_event_stream_time", table_name="push_event")
