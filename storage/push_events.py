"""Pushes started and cut off, the raw material of broadcast sessions."""

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, func
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col


class PushEvent(SQLModel, table=True):
    __tablename__ = "push_event"
    __table_args__ = (
        UniqueConstraint(
            "stream_pk", "started", "event_time", "sequence", name="uq_push_event_fact"
        ),
        # Regrouping after a new fact reads the pushes from one broadcast on, and a push's
        # partners by sequence: neither may cost more on a stream with a long history.
        Index("ix_push_event_stream_time", "stream_pk", "event_time"),
        Index("ix_push_event_stream_sequence", "stream_pk", "sequence", "event_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_pk: int = Field(foreign_key="stream.id", index=True)
    # True: the push started; False: it was cut off.
    started: bool
    event_time: datetime
    # Tencent's message id; a push and its cut-off share it. Empty when absent.
    sequence: str = Field(default="", max_length=128)
    push_duration_ms: int | None = None
    errcode: int | None = None
    errmsg: str | None = Field(default=None, max_length=512)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)


PUSH_FACT_COLUMNS = (
    col(PushEvent.id),
    col(PushEvent.started),
    col(PushEvent.event_time),
    col(PushEvent.sequence),
    col(PushEvent.push_duration_ms),
    col(PushEvent.broadcast_id),
)


def pushes_of_stream(session: Session, stream_pk: int, since: datetime | None = None) -> list[Any]:
    """The stream's pushes and cut-offs (from `since` on, if given, with every other one
    of their sequences: a session's start need not be its earliest cut-off), as
    read-only records (what grouping reads)."""
    of_stream = select_columns(*PUSH_FACT_COLUMNS).where(col(PushEvent.stream_pk) == stream_pk)
    if since is None:
        return list((session.execute(of_stream)).all())
    # Two plain reads, each on its own index (a union of both, measured, got a generic
    # plan on PostgreSQL that took 20 times as long on a stream with a long history).
    since_then = of_stream.where(col(PushEvent.event_time) >= since)
    pushes = list((session.execute(since_then)).all())
    sequences = sorted({push.sequence for push in pushes if push.sequence})
    if sequences:
        earlier = of_stream.where(
            col(PushEvent.sequence).in_(sequences), col(PushEvent.event_time) < since
        )
        pushes += (session.execute(earlier)).all()
    return pushes


def earliest_partner(
    session: Session, stream_pk: int, at: datetime, sequence: str
) -> datetime | None:
    """The earliest time a push or cut-off that may pair with one at `at` was stamped:
    with a sequence, any of the same sequence; without, the last unsequenced push at or
    before it (time order pairs a cut-off with the push before it)."""
    if sequence:
        query = select_columns(func.min(col(PushEvent.event_time))).where(
            col(PushEvent.stream_pk) == stream_pk, col(PushEvent.sequence) == sequence
        )
    else:
        query = select_columns(func.max(col(PushEvent.event_time))).where(
            col(PushEvent.stream_pk) == stream_pk,
            col(PushEvent.sequence) == "",
            col(PushEvent.started).is_(True),
            col(PushEvent.event_time) <= at,
        )
    found: datetime | None = (session.execute(query)).scalar_one_or_none()
    return found
