"""How times are kept: timezone-aware UTC datetimes (SQLModel's UTCDateTime columns)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
