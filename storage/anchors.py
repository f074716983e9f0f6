"""Anchors: the people who broadcast. Placeholders stand in until a profile is upserted."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.database import insert_or_ignore, table_of


class Anchor(SQLModel, table=True):
    __tablename__ = "anchor"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=128, unique=True)
    nickname: str | None = Field(default=None, max_length=256)
    avatar_url: str | None = Field(default=None, max_length=2048)
    # True while nobody has claimed the streams: the user id was derived from a stream id.
    is_placeholder: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


def placeholder_user_id(stream_id: str) -> str:
    """The user id a stream's placeholder anchor gets.

    Live-code stream ids look like `bizid_name` (`2121_15919131751`), where the
    name is usually the anchor's user id; other ids are used whole.
    """
    bizid, underscore, name = stream_id.partition("_")
    return name if underscore and bizid and name else stream_id


def upsert_profile(session: Session, user_id: str, profile: dict[str, Any]) -> Anchor:
    """Create or update the anchor `user_id` with the given fields; it stops being a placeholder."""
    now = utc_now()
    values = {"user_id": user_id, "is_placeholder": False, "created_at": now, "updated_at": now}
    insert_or_ignore(session, table_of(Anchor), values, ["user_id"])
    anchor = (
        session.execute(select(Anchor).where(col(Anchor.user_id) == user_id).with_for_update())
    ).scalar_one()
    for name, value in profile.items():
        setattr(anchor, name, value)
    anchor.is_placeholder = False
    anchor.updated_at = now
    session.add(anchor)
    session.flush()
    return anchor
