"""An index in the room list's order, so that a page deep in the list starts where its
cursor points instead of reading every room before it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # storage.keyset orders rooms by (-room_rank DESC, room_time DESC, id DESC), so that
    # one row comparison finds the page after a cursor.
    op.create_index(
        "ix_broadcast_room_list",
        "broadcast",
        [sa.text("(-room_rank)"), "room_time", "id"],
        postgresql_where=sa.text("room_rank IS NOT NULL"),
        sqlite_where=sa.text("room_rank IS NOT NULL"),
    )
    op.drop_index("ix_broadcast_room_order", table_name="broadcast")


def downgrade() -> None:
    op.create_index("ix_broadcast_room_order", "broadcast", ["room_rank", "room_time", "id"])
    op.drop_index("ix_broadcast_room_list", table_name="broadcast")
