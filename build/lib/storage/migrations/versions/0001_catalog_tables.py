"""catalog tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:37:18.751270
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("nickname", sa.String(length=256), nullable=True),
        sa.Column("avatar_url", sa.String(length=2048), nullable=True),
        sa.Column("is_placeholder", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "inbox_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.Integer(), nullable=True),
        sa.Column("stream_id", sa.String(length=256), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key"),
    )
    with op.batch_alter_table("inbox_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_entry_event_type"), ["event_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbox_entry_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbox_entry_stream_id"), ["stream_id"], unique=False)

    op.create_table(
        "stream",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_id", sa.String(length=256), nullable=False),
        sa.Column("anchor_id", sa.Integer(), nullable=False),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("current_broadcast_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["anchor_id"],
            ["anchor.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_id"),
    )
    with op.batch_alter_table("stream", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stream_anchor_id"), ["anchor_id"], unique=False)

    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_pk", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("playback_url", sa.String(length=2048), nullable=True),
        sa.Column("recording_count", sa.Integer(), nullable=False),
        sa.Column("room_rank", sa.Integer(), nullable=True),
        sa.Column("room_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_pk"],
            ["stream.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broadcast_replay_order", ["stream_pk", "room_rank", "ended_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_broadcast_room_order", ["room_rank", "room_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_broadcast_stream_started", ["stream_pk", "started_at", "id"], unique=False
        )

    op.create_table(
        "push_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_pk", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.Integer(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.String(length=128), nullable=False),
        sa.Column("push_duration_ms", sa.Integer(), nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(length=512), nullable=True),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
        ),
        sa.ForeignKeyConstraint(
            ["stream_pk"],
            ["stream.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_pk", "event_type", "event_time", "sequence"),
    )
    with op.batch_alter_table("push_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_push_event_broadcast_id"), ["broadcast_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_push_event_stream_pk"), ["stream_pk"], unique=False)

    op.create_table(
        "recording_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=128), nullable=False),
        sa.Column("stream_pk", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("video_url", sa.String(length=2048), nullable=False),
        sa.Column("video_id", sa.String(length=256), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=256), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
        ),
        sa.ForeignKeyConstraint(
            ["stream_pk"],
            ["stream.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_id"),
    )
    with op.batch_alter_table("recording_file", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recording_file_broadcast_start", ["broadcast_id", "start_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_recording_file_stream_start", ["stream_pk", "start_time", "id"], unique=False
        )

    op.create_table(
        "screenshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_pk", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
        ),
        sa.ForeignKeyConstraint(
            ["stream_pk"],
            ["stream.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_pk", "url"),
    )
    with op.batch_alter_table("screenshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_screenshot_broadcast_id"), ["broadcast_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_screenshot_stream_pk"), ["stream_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("screenshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screenshot_stream_pk"))
        batch_op.drop_index(batch_op.f("ix_screenshot_broadcast_id"))

    op.drop_table("screenshot")
    with op.batch_alter_table("recording_file", schema=None) as batch_op:
        batch_op.drop_index("ix_recording_file_stream_start")
        batch_op.drop_index("ix_recording_file_broadcast_start")

    op.drop_table("recording_file")
    with op.batch_alter_table("push_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_event_stream_pk"))
        batch_op.drop_index(batch_op.f("ix_push_event_broadcast_id"))

    op.drop_table("push_event")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_stream_started")
        batch_op.drop_index("ix_broadcast_room_order")
        batch_op.drop_index("ix_broadcast_replay_order")

    op.drop_table("broadcast")
    with op.batch_alter_table("stream", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_anchor_id"))

    op.drop_table("stream")
    with op.batch_alter_table("inbox_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_entry_stream_id"))
        batch_op.drop_index(batch_op.f("ix_inbox_entry_outcome"))
        batch_op.drop_index(batch_op.f("ix_inbox_entry_event_type"))

    op.drop_table("inbox_entry")
    op.drop_table("anchor")
