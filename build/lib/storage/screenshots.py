"""Screenshots Tencent takes while a stream is live (event 200)."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select


class Screenshot(SQLModel, table=True):
    __tablename__ = "screenshot"
    __table_args__ = (UniqueConstraint("stream_pk", "url"),)

    id: int | None = Field(default=None, primary_key=True)
    stream_pk: int = Field(foreign_key="stream.id", index=True)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    taken_at: datetime
    url: str = Field(max_length=2048)
    width: int | None = None
    height: int | None = None


async def screenshots_of_stream(session: AsyncSession, stream_pk: int) -> list[Screenshot]:
    rows = await session.execute(select(Screenshot).where(col(Screenshot.stream_pk) == stream_pk))
    return list(rows.scalars())
