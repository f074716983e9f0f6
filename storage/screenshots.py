"""Screenshots Tencent takes while a stream is live (event 200)."""

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Screenshot(SQLModel, table=True):
    __tablename__ = "screenshot"
    __table_args__ = (
        UniqueConstraint("stream_pk", "url"),
        # A stream's screenshots from a time on (regrouping after a new fact).
        Index("ix_screenshot_stream_taken", "stream_pk", "taken_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_pk: int = Field(foreign_key="stream.id", index=True)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    taken_at: datetime
    url: str = Field(max_length=2048)
    width: int | None = None
    height: int | None = None
