"""Broadcasts: one session on air, derived from a stream's pushes, files and screenshots."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Index, Select, bindparam, func, or_, text, update
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.anchors import Anchor
from storage.database import table_of
from storage.keyset import Listing
from storage.streams import Stream

MAX_TITLE_LENGTH = 128

# room_rank orders the room list: live rooms, then featured replays, then the others.
ROOM_RANK_LIVE = 0
ROOM_RANK_FEATURED = 1
ROOM_RANK_REPLAY = 2
REPLAY_RANKS = (ROOM_RANK_FEATURED, ROOM_RANK_REPLAY)


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"
    __table_args__ = (
        # The room list's order (storage.keyset negates the ascending room_rank).
        Index(
            "ix_broadcast_room_list",
            text("(-room_rank)"),
            "room_time",
            "id",
            postgresql_where=text("room_rank IS NOT NULL"),
            sqlite_where=text("room_rank IS NOT NULL"),
        ),
        Index("ix_broadcast_stream_started", "stream_pk", "started_at", "id"),
        Index("ix_broadcast_replay_order", "stream_pk", "room_rank", "ended_at", "id"),
        Index("ix_broadcast_live_last_seen", "is_live", "last_seen_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_pk: int = Field(foreign_key="stream.id")
    started_at: datetime
    ended_at: datetime | None = None
    is_live: bool = False
    duration_seconds: int | None = None
    playback_url: str | None = Field(default=None, max_length=2048)
    # More than one HLS part: apps play the stitched playlist (GET /replays/{id}.m3u8).
    hls_part_count: int = 0
    recording_count: int = 0
    # Position in the room list (see place_in_room_list), or None when the broadcast
    # is not a room (ended without a recording). room_time is the push time for live
    # rooms and the end time for replays; each part of the list runs newest first.
    room_rank: int | None = None
    room_time: datetime | None = None
    # The latest time its facts show the stream on air: a live broadcast silent for
    # LIVE_SILENCE_SECONDS stops being live (found by the index below).
    last_seen_at: datetime | None = None
    # A screenshot from inside the broadcast: the latest while live, else the first.
    cover_url: str | None = Field(default=None, max_length=2048)
    # Curation by admins: a title, featured replays right after the live rooms, and
    # hidden or (soft) deleted broadcasts that only admins see.
    title: str | None = Field(default=None, max_length=MAX_TITLE_LENGTH)
    featured: bool = False
    hidden: bool = False
    deleted_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utc_now)

    def place_in_room_list(self) -> None:
        """Set room_rank and room_time from what the broadcast is now."""
        if self.is_live:
            self.room_rank, self.room_time = ROOM_RANK_LIVE, self.started_at
        elif self.recording_count:
            rank = ROOM_RANK_FEATURED if self.featured else ROOM_RANK_REPLAY
            self.room_rank, self.room_time = rank, self.ended_at
        else:
            self.room_rank, self.room_time = None, None

    def in_public_room_list(self) -> bool:
        """Whether anyone, not only admins, sees it in the room list."""
        return self.room_rank is not None and not self.hidden and self.deleted_at is None

    def public_room_position(self) -> tuple[Any, ...] | None:
        """What places it in the public room list (None: not in it); a change of it
        changes the list's membership or order."""
        return (self.room_rank, self.room_time) if self.in_public_room_list() else None


def visible_to_public() -> list[ColumnElement[bool]]:
    """The conditions that keep hidden and deleted broadcasts out of public answers."""
    return [col(Broadcast.hidden).is_(False), col(Broadcast.deleted_at).is_(None)]


# Before any broadcast: the boundary when none started before a new fact.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


_OF_STREAM = select(Broadcast).where(col(Broadcast.stream_pk) == bindparam("stream_pk"))
_BOUNDARY = (
    select_columns(func.max(col(Broadcast.started_at)))
    .where(
        col(Broadcast.stream_pk) == bindparam("stream_pk"),
        col(Broadcast.started_at) < bindparam("after"),
    )
    .scalar_subquery()
)
# Not `boundary IS NULL OR started_at >= boundary`: with the OR, PostgreSQL reads every
# broadcast of the stream and filters them; this is a range on the index.
_FROM_BOUNDARY = select_columns(Broadcast, _BOUNDARY.label("boundary")).where(
    col(Broadcast.stream_pk) == bindparam("stream_pk"),
    col(Broadcast.started_at) >= func.coalesce(_BOUNDARY, EARLIEST),
)


def broadcasts_of_stream(
    session: Session, stream_pk: int, after: datetime | None = None
) -> tuple[list[Broadcast], datetime | None]:
    """The stream's broadcasts, and where they start from.

    With `after` (a new fact's time): only those from the last one that started before
    it on, and that one's start; if none started before it, all of them and None. One
    statement either way.
    """
    if after is None:
        return list(session.execute(_OF_STREAM, {"stream_pk": stream_pk}).scalars()), None
    rows = session.execute(_FROM_BOUNDARY, {"stream_pk": stream_pk, "after": after}).all()
    return [row[0] for row in rows], (rows[0][1] if rows else None)


def move_members(
    session: Session,
    member: type[SQLModel],
    ids: Iterable[int],
    broadcast_id: int,
) -> None:
    """Point pushes, files or screenshots (`member` is their table) at a broadcast."""
    id_list = sorted(ids)
    if id_list:
        table = table_of(member)
        session.execute(
            update(table).where(table.c.id.in_(id_list)).values(broadcast_id=broadcast_id)
        )


# Live rooms first (newest push first), then replays (newest end first).
ROOMS = Listing(Broadcast, (("room_rank", False), ("room_time", True), ("id", True)))
# An anchor's replays and a stream's broadcasts, newest first.
REPLAYS = Listing(Broadcast, (("ended_at", True), ("id", True)))
BROADCASTS = Listing(Broadcast, (("started_at", True), ("id", True)))


@dataclass(frozen=True)
class RoomFilter:
    """Which rooms to list: all, or only live ones or replays, of everyone or one anchor."""

    ranks: tuple[int, ...] | None = None
    anchor_user_id: str | None = None
    include_hidden: bool = False


def rooms_query(room_filter: RoomFilter, after: Sequence[Any] | None, limit: int) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.room_rank).is_not(None))
    if room_filter.ranks is not None:
        query = query.where(col(Broadcast.room_rank).in_(room_filter.ranks))
    if room_filter.anchor_user_id is not None:
        query = (
            query.join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
            .join(Anchor, col(Anchor.id) == col(Stream.anchor_id))
            .where(col(Anchor.user_id) == room_filter.anchor_user_id)
        )
    if not room_filter.include_hidden:
        query = query.where(*visible_to_public())
    return ROOMS.page(query, after, limit)


def _replays_of(anchor_pk: int, include_hidden: bool) -> Select[Any]:
    query = (
        select(Broadcast)
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(col(Stream.anchor_id) == anchor_pk, col(Broadcast.room_rank).in_(REPLAY_RANKS))
    )
    return query if include_hidden else query.where(*visible_to_public())


def replays_query(
    anchor_pk: int, include_hidden: bool, after: Sequence[Any] | None, limit: int
) -> Select[Any]:
    return REPLAYS.page(_replays_of(anchor_pk, include_hidden), after, limit)


def replay_totals_query(
    anchor_pks: Sequence[int], include_hidden: bool
) -> Select[int, int, int | None]:
    """(anchor pk, number of replays, their total duration) per anchor."""
    query = (
        select_columns(
            col(Stream.anchor_id),
            func.count(col(Broadcast.id)),
            func.coalesce(func.sum(col(Broadcast.duration_seconds)), 0),
        )
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(col(Stream.anchor_id).in_(list(anchor_pks)))
        .where(col(Broadcast.room_rank).in_(REPLAY_RANKS))
        .group_by(col(Stream.anchor_id))
    )
    return query if include_hidden else query.where(*visible_to_public())


def stream_broadcasts_query(
    stream_pk: int, include_hidden: bool, after: Sequence[Any] | None, limit: int
) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.stream_pk) == stream_pk)
    if not include_hidden:
        query = query.where(*visible_to_public())
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


def silent_live_streams(seen_before: datetime) -> Select[Any]:
    """The ids of streams with a live broadcast last seen on air before `seen_before`."""
    return (
        select_columns(col(Stream.stream_id))
        .join(Broadcast, col(Broadcast.stream_pk) == col(Stream.id))
        .where(
            col(Broadcast.is_live).is_(True),
            or_(
                col(Broadcast.last_seen_at).is_(None),
                col(Broadcast.last_seen_at) < seen_before,
            ),
        )
        .distinct()
        .order_by(col(Stream.stream_id))
    )
