"""Pushes started and cut off, the raw material of broadcast sessions."""

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col


class PushEvent(SQLModel, table=True):
    __tablename__ = "push_event"
    __table_args__ = (
        UniqueConstraint(
            "stream_pk", "started", "event_time", "sequence", name="uq_push_event_fact"
        ),
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


async def pushes_of_stream(session: AsyncSession, stream_pk: int) -> list[Any]:
    """Every push and cut-off of the stream, as read-only records (what grouping reads)."""
    rows = await session.execute(
        select_columns(*PUSH_FACT_COLUMNS).where(col(PushEvent.stream_pk) == stream_pk)
    )
    return list(rows.all())
