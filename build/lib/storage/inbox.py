"""The inbox: every authenticated callback, exactly as received, stored once."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from storage.times import utc_now

OUTCOME_APPLIED = "applied"
OUTCOME_IGNORED = "ignored"
OUTCOME_QUARANTINED = "quarantined"


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox_entry"

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of the payload without `t` and `sign`, which change between retries.
    event_key: str = Field(max_length=64, unique=True)
    event_type: int | None = Field(default=None, index=True)
    stream_id: str | None = Field(default=None, max_length=256, index=True)
    payload: dict[str, Any] = Field(
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    received_at: datetime = Field(default_factory=utc_now)
    outcome: str = Field(max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=1024)


async def inbox_entry_by_key(session: AsyncSession, event_key: str) -> InboxEntry:
    found = await session.execute(select(InboxEntry).where(col(InboxEntry.event_key) == event_key))
    return found.scalar_one()
