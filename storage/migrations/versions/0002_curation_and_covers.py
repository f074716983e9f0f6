"""Curation (title, featured, hidden, soft delete), covers and HLS part counts

Featured replays get their own room rank, so plain replays move from rank 1 to 2.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVER = (
    "UPDATE broadcast SET cover_url = (SELECT s.url FROM screenshot s "
    "WHERE s.broadcast_id = broadcast.id ORDER BY s.taken_at {order}, s.url {order} LIMIT 1) "
    "WHERE {which}"
)


def upgrade() -> None:
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cover_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("title", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("featured", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("hls_part_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE broadcast SET room_rank = 2 WHERE room_rank = 1")
    op.execute(
        "UPDATE broadcast SET hls_part_count = (SELECT count(*) FROM recording_file r "
        "WHERE r.broadcast_id = broadcast.id AND r.format = 'HLS')"
    )
    op.execute(COVER.format(order="DESC", which="is_live"))
    op.execute(COVER.format(order="ASC", which="NOT is_live"))


def downgrade() -> None:
    op.execute("UPDATE broadcast SET room_rank = 1 WHERE room_rank = 2 OR room_rank = 1")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_column("hls_part_count")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("hidden")
        batch_op.drop_column("featured")
        batch_op.drop_column("title")
        batch_op.drop_column("cover_url")
