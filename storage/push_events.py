"""Pushes started and cut off, the raw material of broadcast sessions."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Index,
    Integer,
    UniqueConstraint,
    bindparam,
    func,
    literal_column,
)
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col

from storage.database import execute, numbered, union_of


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


def _earlier_of_sequences(position: int) -> list[Any]:
    """Stream `:stream_pk_N`'s pushes and cut-offs of `:sequences_N` before `:since_N`,
    with N (`position`)."""
    select = select_columns(
        literal_column(str(position), Integer).label("position"),
        col(PushEvent.id),
        col(PushEvent.started),
        col(PushEvent.event_time),
        col(PushEvent.sequence),
        col(PushEvent.push_duration_ms),
        col(PushEvent.broadcast_id),
    ).where(
        col(PushEvent.stream_pk) == bindparam(f"stream_pk_{position}"),
        col(PushEvent.sequence).in_(bindparam(f"sequences_{position}", expanding=True)),
        col(PushEvent.event_time) < bindparam(f"since_{position}"),
    )
    return [select]


# Built once (a statement's SQL and cache key are then computed once, not per callback).
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


def earlier_of_sequences(
    session: Session, wanted: Sequence[tuple[int, int, datetime, list[str]]]
) -> list[tuple[int, tuple[Any, ...]]]:
    """For each (position, stream pk, since, sequences) wanted, the stream's pushes and
    cut-offs before `since` of those sequences, as (position, (id, started, event_time,
    sequence, push_duration_ms, broadcast_id)); one statement.

    A read of its own on its own index (a union with the read of the facts from `since`
    on, measured, got a generic plan on PostgreSQL that took 20 times as long on a
    stream with a long history)."""
    if not wanted:
        return []
    parameters = numbered(
        [
            {"stream_pk": stream_pk, "since": since, "sequences": sequences}
            for _, stream_pk, since, sequences in wanted
        ]
    )
    rows = execute(session, union_of(_earlier_of_sequences, len(wanted)), parameters)
    return [(wanted[row.position][0], tuple(row)[1:]) for row in rows]


def earliest_partner(
    session: Session, stream_pk: int, at: datetime, sequence: str
) -> datetime | None:
    """The earliest time a push or cut-off that may pair with one at `at` was stamped:
    with a sequence, any of the same sequence; without, the last unsequenced push at or
    before it (time order pairs a cut-off with the push before it)."""
    if sequence:
        found = execute(
            session, _FIRST_OF_SEQUENCE, {"stream_pk": stream_pk, "sequence": sequence}
        ).scalar_one_or_none()
    else:
        found = execute(
            session, _LAST_UNSEQUENCED_PUSH, {"stream_pk": stream_pk, "at": at}
        ).scalar_one_or_none()
    return cast(datetime | None, found)
