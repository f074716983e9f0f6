"""Streams: one push address each, owned by an anchor."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.anchors import Anchor, placeholder_user_id
from storage.database import insert_or_ignore, table_of


class Stream(SQLModel, table=True):
    __tablename__ = "stream"

    id: int | None = Field(default=None, primary_key=True)
    stream_id: str = Field(max_length=256, unique=True)
    anchor_id: int = Field(foreign_key="anchor.id", index=True)
    # Derived by regrouping: the stream's broadcast that is on air now, if any.
    is_live: bool = False
    current_broadcast_id: int | None = None
    created_at: datetime = Field(default_factory=utc_now)


_LOCKED_STREAM = (
    select(Stream).where(col(Stream.stream_id) == bindparam("stream_id")).with_for_update()
)


def lock_stream(session: Session, stream_id: str) -> Stream:
    """The stream row, created with a placeholder anchor if new, locked for this transaction.

    The lock serialises regrouping per stream across processes on PostgreSQL; on
    SQLite the writer already holds the database lock.
    """
    stream = session.execute(_LOCKED_STREAM, {"stream_id": stream_id}).scalar_one_or_none()
    if stream is not None:
        return stream
    now = utc_now()
    anchor_table = table_of(Anchor)
    insert_or_ignore(
        session,
        anchor_table,
        {
            "user_id": placeholder_user_id(stream_id),
            "is_placeholder": True,
            "created_at": now,
            "updated_at": now,
        },
        ["user_id"],
    )
    anchor_id = (
        session.execute(
            select(Anchor.id).where(col(Anchor.user_id) == placeholder_user_id(stream_id))
        )
    ).scalar_one()
    stream_table = table_of(Stream)
    insert_or_ignore(
        session,
        stream_table,
        {"stream_id": stream_id, "anchor_id": anchor_id, "is_live": False, "created_at": now},
        ["stream_id"],
    )
    return session.execute(_LOCKED_STREAM, {"stream_id": stream_id}).scalar_one()


def claim_streams(
    session: Session, anchor: Anchor, stream_ids: Iterable[str]
) -> tuple[list[Stream], set[int]]:
    """Attach streams to `anchor`, creating them if new, and drop placeholders left empty;
    the streams, and the anchors that owned any of them before."""
    previous_owners: set[int] = set()
    streams: list[Stream] = []
    for stream_id in stream_ids:
        stream = lock_stream(session, stream_id)
        if stream.anchor_id != anchor.id:
            previous_owners.add(stream.anchor_id)
            assert anchor.id is not None
            stream.anchor_id = anchor.id
            session.add(stream)
        streams.append(stream)
    session.flush()
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
