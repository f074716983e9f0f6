"""Broadcasts: one session on air, derived from a stream's pushes, files and screenshots."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Select, func, update
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from storage.database import table_of
from storage.keyset import Listing
from storage.streams import Stream
from storage.times import utc_now

# room_rank orders the room list: live rooms first, then replays.
ROOM_RANK_LIVE = 0
ROOM_RANK_REPLAY = 1


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"
    __table_args__ = (
        Index("ix_broadcast_room_order", "room_rank", "room_time", "id"),
        Index("ix_broadcast_stream_started", "stream_pk", "started_at", "id"),
        Index("ix_broadcast_replay_order", "stream_pk", "room_rank", "ended_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_pk: int = Field(foreign_key="stream.id")
    started_at: datetime
    ended_at: datetime | None = None
    is_live: bool = False
    duration_seconds: int | None = None
    playback_url: str | None = Field(default=None, max_length=2048)
    recording_count: int = 0
    # Position in the room list: ROOM_RANK_LIVE / ROOM_RANK_REPLAY, or None when the
    # broadcast is not a room (ended without a recording). room_time is the push
    # time for live rooms and the end time for replays; both lists run newest first.
    room_rank: int | None = None
    room_time: datetime | None = None
    updated_at: datetime = Field(default_factory=utc_now)


async def broadcasts_of_stream(session: AsyncSession, stream_pk: int) -> list[Broadcast]:
    rows = await session.execute(select(Broadcast).where(col(Broadcast.stream_pk) == stream_pk))
    return list(rows.scalars())


async def move_members(
    session: AsyncSession,
    member: type[SQLModel],
    ids: Iterable[int],
    broadcast_id: int,
) -> None:
    """Point pushes, files or screenshots (`member` is their table) at a broadcast."""
    id_list = sorted(ids)
    if id_list:
        table = table_of(member)
        await session.execute(
            update(table).where(table.c.id.in_(id_list)).values(broadcast_id=broadcast_id)
        )


# Live rooms first (newest push first), then replays (newest end first).
ROOMS = Listing(Broadcast, (("room_rank", False), ("room_time", True), ("id", True)))
# An anchor's replays and a stream's broadcasts, newest first.
REPLAYS = Listing(Broadcast, (("ended_at", True), ("id", True)))
BROADCASTS = Listing(Broadcast, (("started_at", True), ("id", True)))


def rooms_query(after: Sequence[Any] | None, limit: int) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.room_rank).is_not(None))
    return ROOMS.page(query, after, limit)


def replays_query(anchor_pk: int, after: Sequence[Any] | None, limit: int) -> Select[Any]:
    query = (
        select(Broadcast)
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(col(Stream.anchor_id) == anchor_pk, col(Broadcast.room_rank) == ROOM_RANK_REPLAY)
    )
    return REPLAYS.page(query, after, limit)


def stream_broadcasts_query(stream_pk: int, after: Sequence[Any] | None, limit: int) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.stream_pk) == stream_pk)
    return BROADCASTS.page(query, after, limit)


def ended_since_query(since: datetime) -> Select[str, datetime]:
    """(stream id, earliest start) of each stream with a broadcast that ended since `since`."""
    return (
        select_columns(col(Stream.stream_id), func.min(col(Broadcast.started_at)))
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(col(Broadcast.ended_at) >= since)
        .group_by(col(Stream.stream_id))
        .order_by(col(Stream.stream_id))
    )
