"""Broadcasts: one session on air, derived from a stream's pushes, files and screenshots."""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Index,
    Integer,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    text,
    update,
)
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.anchors import Anchor
from storage.database import Lookup, execute, keys_in, numbered, table_of, union_of
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
        self.room_rank, self.room_time = room_place(
            self.is_live, self.recording_count, self.featured, self.started_at, self.ended_at
        )

    def in_public_room_list(self) -> bool:
        """Whether anyone, not only admins, sees it in the room list."""
        return self.public_room_position() is not None

    def public_room_position(self) -> tuple[Any, ...] | None:
        """What places it in the public room list (None: not in it); a change of it
        changes the list's membership or order."""
        return public_room_position(self)


class BroadcastPlace(Protocol):
    """What places a broadcast (an ORM object or a row read by regrouping) in the list."""

    @property
    def room_rank(self) -> int | None: ...
    @property
    def room_time(self) -> datetime | None: ...
    @property
    def hidden(self) -> bool: ...
    @property
    def deleted_at(self) -> datetime | None: ...


def room_place(
    is_live: bool,
    recording_count: int,
    featured: bool,
    started_at: datetime,
    ended_at: datetime | None,
) -> tuple[int | None, datetime | None]:
    """(room_rank, room_time) of a broadcast that is so: live rooms by their push time,
    replays by their end, and none for a broadcast that ended without a recording."""
    if is_live:
        return ROOM_RANK_LIVE, started_at
    if recording_count:
        return (ROOM_RANK_FEATURED if featured else ROOM_RANK_REPLAY), ended_at
    return None, None


def public_room_position(broadcast: BroadcastPlace) -> tuple[Any, ...] | None:
    """What places a broadcast in the public room list (None: not in it)."""
    return room_position(
        broadcast.room_rank, broadcast.room_time, broadcast.hidden, broadcast.deleted_at
    )


def room_position(
    room_rank: int | None, room_time: datetime | None, hidden: bool, deleted_at: datetime | None
) -> tuple[Any, ...] | None:
    """public_room_position, of a broadcast's columns."""
    if room_rank is None or hidden or deleted_at is not None:
        return None
    return (room_rank, room_time)


def visible_to_public() -> list[ColumnElement[bool]]:
    """The conditions that keep hidden and deleted broadcasts out of public answers."""
    return [col(Broadcast.hidden).is_(False), col(Broadcast.deleted_at).is_(None)]


# Before any broadcast: the boundary when none started before a new fact.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


# What regrouping reads of a stream's broadcasts: what it derives, and the curation that
# places them in the room list. Read as plain rows and written by the statements below
# (no ORM objects: a callback costs a third of what it did through the session).
SHAPED_COLUMNS = (
    "started_at",
    "ended_at",
    "is_live",
    "duration_seconds",
    "playback_url",
    "hls_part_count",
    "recording_count",
    "cover_url",
    "last_seen_at",
)
_TABLE = table_of(Broadcast)
_REGROUPED = [
    _TABLE.c.id,
    *(_TABLE.c[name] for name in SHAPED_COLUMNS),
    _TABLE.c.room_rank,
    _TABLE.c.room_time,
    _TABLE.c.featured,
    _TABLE.c.hidden,
    _TABLE.c.deleted_at,
]


def _from_boundary(position: int) -> list[Select[Any]]:
    """The broadcasts of stream `:stream_pk_N` from the last one that started before
    `:after_N` on (all of them when none did, or `after_N` is NULL), with that one's start
    (`boundary`) and N (`position`)."""
    stream_pk: Any = bindparam(f"stream_pk_{position}")
    after: Any = bindparam(f"after_{position}")
    boundary = (
        select_columns(func.max(_TABLE.c.started_at))
        .where(_TABLE.c.stream_pk == stream_pk, _TABLE.c.started_at < after)
        .scalar_subquery()
    )
    # Not `boundary IS NULL OR started_at >= boundary`: with the OR, PostgreSQL reads every
    # broadcast of the stream and filters them; this is a range on the index.
    columns = (boundary.label("boundary"), literal_column(str(position), Integer).label("position"))
    return [
        select_columns(*_REGROUPED, *columns).where(
            _TABLE.c.stream_pk == stream_pk,
            _TABLE.c.started_at >= func.coalesce(boundary, EARLIEST),
        )
    ]


# Streams whose broadcasts one statement reads at most (SQLite allows 500 selects in a
# compound one; a batch of callbacks has 32 streams at most).
STREAMS_PER_READ = 32
# Built once each (their SQL and cache keys are then computed once, not per callback).
_INSERT = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
_RESHAPE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("broadcast_id"))
    .values({name: bindparam(name) for name in (*SHAPED_COLUMNS, "room_rank", "room_time")})
    .values(updated_at=bindparam("changed_at"))
)
_DELETE = delete(_TABLE).where(_TABLE.c.id == bindparam("broadcast_id"))


def broadcasts_of_streams(
    session: Session, wanted: Sequence[tuple[int, datetime | None]]
) -> list[tuple[list[Any], datetime | None]]:
    """For each (stream pk, after) wanted, the stream's broadcasts as read-only rows of
    what regrouping reads, and where they start from, in one statement.

    With `after` (a new fact's time): only those from the last one that started before
    it on, and that one's start; if none started before it (or `after` is None), all of
    them and None.
    """
    found: list[tuple[list[Any], datetime | None]] = []
    for first in range(0, len(wanted), STREAMS_PER_READ):
        chunk = wanted[first : first + STREAMS_PER_READ]
        statement = union_of(_from_boundary, len(chunk))
        parameters = numbered([{"stream_pk": pk, "after": after} for pk, after in chunk])
        rows: list[list[Any]] = [[] for _ in chunk]
        for row in execute(session, statement, parameters):
            rows[row.position].append(row)
        found.extend((own, own[0].boundary if own else None) for own in rows)
    return found


def insert_broadcasts(session: Session, rows: Sequence[tuple[int, dict[str, Any]]]) -> list[int]:
    """New broadcasts, not curated, each (stream pk, its `placed` columns: SHAPED_COLUMNS,
    room_rank and room_time), in one statement; their ids, in the same order."""
    if not rows:
        return []
    now = utc_now()
    values = [
        {
            **placed,
            "stream_pk": stream_pk,
            "featured": False,
            "hidden": False,
            "title": None,
            "deleted_at": None,
            "updated_at": now,
        }
        for stream_pk, placed in rows
    ]
    return [int(broadcast_id) for broadcast_id in execute(session, _INSERT, values).scalars()]


def reshape_broadcasts(session: Session, reshaped: list[dict[str, Any]]) -> None:
    """Write new SHAPED_COLUMNS, room_rank and room_time of broadcasts, each a dict with
    its `broadcast_id`."""
    if reshaped:
        now = utc_now()
        execute(session, _RESHAPE, [{**values, "changed_at": now} for values in reshaped])


def delete_broadcasts(session: Session, broadcast_ids: Iterable[int]) -> None:
    """Delete broadcasts that no fact belongs to any more."""
    params = [{"broadcast_id": broadcast_id} for broadcast_id in sorted(broadcast_ids)]
    if params:
        execute(session, _DELETE, params)


@functools.cache
def _move(member: type[SQLModel]) -> Any:
    table = table_of(member)
    return (
        update(table)
        .where(table.c.id == bindparam("member_id"))
        .values(broadcast_id=bindparam("to_broadcast"))
    )


def move_members(
    session: Session, member: type[SQLModel], moves: Iterable[tuple[int, int]]
) -> None:
    """Point pushes, files or screenshots (`member` is their table) at broadcasts: each
    move is (member id, broadcast id)."""
    params = [{"member_id": i, "to_broadcast": to} for i, to in sorted(moves)]
    if params:
        execute(session, _move(member), params)


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


@functools.lru_cache(maxsize=16)
def _rooms(include_hidden: bool, given: frozenset[str], after: bool) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.room_rank).is_not(None))
    if "ranks" in given:
        query = query.where(keys_in(table_of(Broadcast).c.room_rank, "ranks"))
    if "anchor_user_id" in given:
        query = (
            query.join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
            .join(Anchor, col(Anchor.id) == col(Stream.anchor_id))
            .where(col(Anchor.user_id) == bindparam("anchor_user_id"))
        )
    if not include_hidden:
        query = query.where(*visible_to_public())
    return ROOMS.page(query, after)


# The parameter of the prebuilt statements that keep to replays (`keys_in`).
REPLAY_RANKS_GIVEN = {"replay_ranks": list(REPLAY_RANKS)}


def rooms_query(room_filter: RoomFilter, after: Sequence[Any] | None, limit: int) -> Lookup:
    ranks = room_filter.ranks
    return ROOMS.lookup(
        functools.partial(_rooms, room_filter.include_hidden),
        after,
        limit,
        ranks=None if ranks is None else list(ranks),
        anchor_user_id=room_filter.anchor_user_id,
    )


@functools.lru_cache(maxsize=8)
def _replays(include_hidden: bool, _given: frozenset[str], after: bool) -> Select[Any]:
    query = (
        select(Broadcast)
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(
            col(Stream.anchor_id) == bindparam("anchor_pk"),
            keys_in(table_of(Broadcast).c.room_rank, "replay_ranks"),
        )
    )
    return REPLAYS.page(query if include_hidden else query.where(*visible_to_public()), after)


def replays_query(
    anchor_pk: int, include_hidden: bool, after: Sequence[Any] | None, limit: int
) -> Lookup:
    build = functools.partial(_replays, include_hidden)
    return REPLAYS.lookup(build, after, limit, anchor_pk=anchor_pk, **REPLAY_RANKS_GIVEN)


@functools.cache
def _replay_totals(include_hidden: bool) -> Select[int, int, int | None]:
    query = (
        select_columns(
            col(Stream.anchor_id),
            func.count(col(Broadcast.id)),
            func.coalesce(func.sum(col(Broadcast.duration_seconds)), 0),
        )
        .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
        .where(keys_in(table_of(Stream).c.anchor_id))
        .where(keys_in(table_of(Broadcast).c.room_rank, "replay_ranks"))
        .group_by(col(Stream.anchor_id))
    )
    return query if include_hidden else query.where(*visible_to_public())


def replay_totals_query(anchor_pks: Sequence[int], include_hidden: bool) -> Lookup:
    """(anchor pk, number of replays, their total duration) per anchor."""
    return Lookup(_replay_totals(include_hidden), {"keys": list(anchor_pks), **REPLAY_RANKS_GIVEN})


@functools.lru_cache(maxsize=8)
def _stream_broadcasts(include_hidden: bool, _given: frozenset[str], after: bool) -> Select[Any]:
    query = select(Broadcast).where(col(Broadcast.stream_pk) == bindparam("stream_pk"))
    return BROADCASTS.page(query if include_hidden else query.where(*visible_to_public()), after)


def stream_broadcasts_query(
    stream_pk: int, include_hidden: bool, after: Sequence[Any] | None, limit: int
) -> Lookup:
    build = functools.partial(_stream_broadcasts, include_hidden)
    return BROADCASTS.lookup(build, after, limit, stream_pk=stream_pk)


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
