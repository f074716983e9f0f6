"""Recording files, one row per Tencent `file_id`."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Select, bindparam
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.broadcasts import Broadcast, visible_to_public
from storage.database import Lookup, keys_in, table_of
from storage.keyset import Listing


class RecordingFile(SQLModel, table=True):
    __tablename__ = "recording_file"
    __table_args__ = (
        Index("ix_recording_file_broadcast_start", "broadcast_id", "start_time", "id"),
        Index("ix_recording_file_stream_start", "stream_pk", "start_time", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    file_id: str = Field(max_length=128, unique=True)
    stream_pk: int = Field(foreign_key="stream.id")
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id")
    format: str = Field(max_length=8)
    video_url: str = Field(max_length=2048)
    video_id: str | None = Field(default=None, max_length=256)
    # Recordings can exceed 2^31 bytes.
    file_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    start_time: datetime
    end_time: datetime
    duration_seconds: int
    task_id: str | None = Field(default=None, max_length=256)
    received_at: datetime = Field(default_factory=utc_now)


# A stream's (or every stream's) recording files, newest first.
# Ties (the formats of one session start together) are broken by the unique file id,
# so the order never depends on which callback arrived first.
RECORDINGS = Listing(RecordingFile, (("start_time", True), ("file_id", True)))


@dataclass(frozen=True)
class RecordingFilter:
    """Which recording files to list."""

    stream_pk: int | None = None
    formats: tuple[str, ...] | None = None
    started_after: datetime | None = None  # inclusive
    started_before: datetime | None = None  # exclusive
    include_hidden: bool = False


@functools.lru_cache(maxsize=64)
def _recordings(include_hidden: bool, given: frozenset[str], after: bool) -> Select[Any]:
    query: Select[Any] = select(RecordingFile)
    if "stream_pk" in given:
        query = query.where(col(RecordingFile.stream_pk) == bindparam("stream_pk"))
    if "formats" in given:
        query = query.where(keys_in(table_of(RecordingFile).c.format, "formats"))
    if "started_after" in given:
        query = query.where(col(RecordingFile.start_time) >= bindparam("started_after"))
    if "started_before" in given:
        query = query.where(col(RecordingFile.start_time) < bindparam("started_before"))
    if not include_hidden:
        query = _visible_only(query)
    return RECORDINGS.page(query, after)


def recordings_query(
    recording_filter: RecordingFilter, after: Sequence[Any] | None, limit: int
) -> Lookup:
    given = recording_filter
    return RECORDINGS.lookup(
        functools.partial(_recordings, given.include_hidden),
        after,
        limit,
        stream_pk=given.stream_pk,
        formats=None if given.formats is None else sorted(set(given.formats)),
        started_after=given.started_after,
        started_before=given.started_before,
    )


@functools.cache
def _recordings_by_key(key: str, include_hidden: bool) -> Select[Any]:
    query = select(RecordingFile).where(keys_in(table_of(RecordingFile).c[key]))
    return query if include_hidden else _visible_only(query)


def recordings_by_key_query(key: str, values: Sequence[Any], include_hidden: bool) -> Lookup:
    """Files by `file_id` or `id`; a file of a hidden or deleted broadcast is not found."""
    return Lookup(_recordings_by_key(key, include_hidden), {"keys": list(values)})


def _visible_only(query: Select[Any]) -> Select[Any]:
    return query.join(Broadcast, col(Broadcast.id) == col(RecordingFile.broadcast_id)).where(
        *visible_to_public()
    )


RECORDINGS_OF_BROADCASTS = (
    select(RecordingFile)
    .where(keys_in(table_of(RecordingFile).c.broadcast_id))
    .order_by(
        col(RecordingFile.start_time), col(RecordingFile.end_time), col(RecordingFile.file_id)
    )
)


def recordings_of_broadcasts_query(broadcast_ids: Sequence[int]) -> Lookup:
    return Lookup(RECORDINGS_OF_BROADCASTS, {"keys": list(broadcast_ids)})


def known_file_ids_query(file_ids: Sequence[str]) -> Select[Any]:
    return select(RecordingFile.file_id).where(col(RecordingFile.file_id).in_(list(file_ids)))
