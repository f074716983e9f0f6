"""Pushes started and cut off, the raw material of broadcast sessions."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Index, UniqueConstraint, bindparam, func
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col

from storage.database import FactsOfStream


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


# Built once (a statement's SQL and cache key are then computed once, not per callback).
_PUSH_FACTS = FactsOfStream(PUSH_FACT_COLUMNS, col(PushEvent.stream_pk), col(PushEvent.event_time))
_EARLIER_OF_SEQUENCES = _PUSH_FACTS.all.where(
    col(PushEvent.sequence).in_(bindparam("sequences", expanding=True)),
    col(PushEvent.event_time) < bindparam("since"),
)
_FIRST_OF_SEQUENCE = select_columns(func.min(col(PushEvent.event_time))).where(
    col(PushEvent.stream_pk) == bindparam("stream_pk"),
    col(PushEvent.sequence) == bindparam("sequence"),
)
_LAST_UNSEQUENCED_PUSH = select_columns(func.max(col(PushEvent.event_time))).where(
    col(PushEvent.stream_pk) == bindparam("stream_pk"),
    col(PushEvent.sequence) == "",
    col(PushEvent.started).is_(True),
    col(PushEvent.event_time) <= bindparam("at"),
)


def pushes_of_stream(session: Session, stream_pk: int, since: datetime | None = None) -> list[Any]:
    """The stream's pushes and cut-offs (from `since` on, if given, with every other one
    of their sequences: a session's start need not be its earliest cut-off), as
    read-only records (what grouping reads)."""
    pushes = _PUSH_FACTS.rows(session, stream_pk, since)
    if since is None:
        return pushes
    # Two plain reads, each on its own index (a union of both, measured, got a generic
    # plan on PostgreSQL that took 20 times as long on a stream with a long history).
    sequences = sorted({push.sequence for push in pushes if push.sequence})
    if sequences:
        earlier = {"stream_pk": stream_pk, "since": since, "sequences": sequences}
        pushes += session.execute(_EARLIER_OF_SEQUENCES, earlier).all()
    return pushes


def earliest_partner(
    session: Session, stream_pk: int, at: datetime, sequence: str
) -> datetime | None:
    """The earliest time a push or cut-off that may pair with one at `at` was stamped:
    with a sequence, any of the same sequence; without, the last unsequenced push at or
    before it (time order pairs a cut-off with the push before it)."""
    if sequence:
        found = session.execute(
            _FIRST_OF_SEQUENCE, {"stream_pk": stream_pk, "sequence": sequence}
        ).scalar_one_or_none()
    else:
        found = session.execute(
            _LAST_UNSEQUENCED_PUSH, {"stream_pk": stream_pk, "at": at}
        ).scalar_one_or_none()
    return cast(datetime | None, found)
