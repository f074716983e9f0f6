"""An index of each stream's screenshots by time, so that regrouping after a new fact
reads only the screenshots from the broadcast it can change on

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_screenshot_stream_taken", "screenshot", ["stream_pk", "taken_at"])


def downgrade() -> None:
    op.drop_index("ix_screenshot_stream_taken", table_name="screenshot")
