"""Streams: one push address each, owned by an anchor."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.anchors import Anchor, placeholder_user_id
from storage.database import execute, insert_or_ignore, table_of


class Stream(SQLModel, table=True):
    __tablename__ = "stream"

    id: int | None = Field(default=None, primary_key=True)
    stream_id: str = Field(max_length=256, unique=True)
    anchor_id: int = Field(foreign_key="anchor.id", index=True)
    # Derived by regrouping: the stream's broadcast that is on air now, if any.
    is_live: bool = False
    current_broadcast_id: int | None = None
    created_at: datetime = Field(default_factory=utc_now)


@dataclass
class LockedStream:
    """A stream row as a write transaction holds it locked (lock_stream)."""

    id: int
    stream_id: str
    anchor_id: int
    is_live: bool
    current_broadcast_id: int | None


_TABLE = table_of(Stream)
_LOCKED = select_columns(*(_TABLE.c[name] for name in LockedStream.__dataclass_fields__))
_LOCKED_STREAM = _LOCKED.where(_TABLE.c.stream_id == bindparam("stream_id")).with_for_update()
_IDS: Any = bindparam("stream_ids", expanding=True)
# Every stream of :stream_ids locked, in stream id order, if all of them exist (counted
# before anything is locked); none otherwise.
_ALL_LOCKED = (
    _LOCKED.where(
        _TABLE.c.stream_id.in_(_IDS),
        select_columns(func.count()).where(_TABLE.c.stream_id.in_(_IDS)).scalar_subquery()
        == bindparam("count"),
    )
    .order_by(_TABLE.c.stream_id)
    .with_for_update()
)
_PLACEHOLDER_ID = select_columns(table_of(Anchor).c.id).where(
    table_of(Anchor).c.user_id == bindparam("user_id")
)
_SET_LIVE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("stream_pk"))
    .values(is_live=bindparam("live"), current_broadcast_id=bindparam("current"))
)
_SET_ANCHOR = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("stream_pk"))
    .values(anchor_id=bindparam("new_anchor"))
)


def lock_stream(session: Session, stream_id: str) -> LockedStream:
    """The stream row, created with a placeholder anchor if new, locked for this transaction.

    The lock serialises regrouping per stream across processes on PostgreSQL; on
    SQLite the writer already holds the database lock.
    """
    found = execute(session, _LOCKED_STREAM, {"stream_id": stream_id}).first()
    if found is not None:
        return _locked(found)
    now = utc_now()
    user_id = placeholder_user_id(stream_id)
    insert_or_ignore(
        session,
        table_of(Anchor),
        {"user_id": user_id, "is_placeholder": True, "created_at": now, "updated_at": now},
        ["user_id"],
    )
    anchor_id = execute(session, _PLACEHOLDER_ID, {"user_id": user_id}).scalar_one()
    insert_or_ignore(
        session,
        _TABLE,
        {"stream_id": stream_id, "anchor_id": anchor_id, "is_live": False, "created_at": now},
        ["stream_id"],
    )
    return _locked(execute(session, _LOCKED_STREAM, {"stream_id": stream_id}).one())


def lock_streams(session: Session, stream_ids: Iterable[str]) -> dict[str, LockedStream]:
    """The streams (by stream id), created if new, locked for this transaction, in one
    statement when they all exist.

    Locks are taken in stream id order, by every writer in every process, so that two
    transactions never wait for each other in a cycle: all of them at once when all
    exist, else one by one in that order (creating a stream waits for another writer
    creating the same one, so creations must keep the order too).
    """
    wanted = sorted(set(stream_ids))
    rows = execute(session, _ALL_LOCKED, {"stream_ids": wanted, "count": len(wanted)}).all()
    if len(rows) == len(wanted):
        return {row.stream_id: _locked(row) for row in rows}
    return {stream_id: lock_stream(session, stream_id) for stream_id in wanted}


def _locked(row: Any) -> LockedStream:
    return LockedStream(row.id, row.stream_id, row.anchor_id, row.is_live, row.current_broadcast_id)


def set_streams_live(session: Session, changes: Iterable[tuple[LockedStream, int | None]]) -> None:
    """Each stream is on air in the broadcast given (`current`), or off air (None); one
    statement for those that change."""
    params = []
    for stream, current in changes:
        live = current is not None
        if (stream.is_live, stream.current_broadcast_id) != (live, current):
            params.append({"stream_pk": stream.id, "live": live, "current": current})
            stream.is_live, stream.current_broadcast_id = live, current
    if params:
        execute(session, _SET_LIVE, params)


def claim_streams(
    session: Session, anchor: Anchor, stream_ids: Iterable[str]
) -> tuple[list[LockedStream], set[int]]:
    """Attach streams to `anchor`, creating them if new, and drop placeholders left empty;
    the streams, and the anchors that owned any of them before."""
    assert anchor.id is not None
    previous_owners: set[int] = set()
    streams: list[LockedStream] = []
    for stream_id in stream_ids:
        stream = lock_stream(session, stream_id)
        if stream.anchor_id != anchor.id:
            previous_owners.add(stream.anchor_id)
            execute(session, _SET_ANCHOR, {"stream_pk": stream.id, "new_anchor": anchor.id})
            stream.anchor_id = anchor.id
        streams.append(stream)
    if previous_owners:
        still_used = select(Stream.anchor_id).where(col(Stream.anchor_id).in_(previous_owners))
        session.execute(
            delete(Anchor).where(
                col(Anchor.id).in_(previous_owners),
                col(Anchor.is_placeholder).is_(True),
                col(Anchor.id).not_in(still_used),
            )
        )
    return streams, previous_owners
