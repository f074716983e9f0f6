"""Domain events: what happened to a stream, in the catalog's words (tencent/ maps
Tencent's callbacks and file list to them)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PushStarted:
    stream_id: str
    at: datetime
    sequence: str


@dataclass(frozen=True)
class PushEnded:
    stream_id: str
    at: datetime
    sequence: str
    push_duration_ms: int | None
    errcode: int | None
    errmsg: str | None


@dataclass(frozen=True)
class RecordingFileReady:
    stream_id: str
    file_id: str
    format: str  # FLV, HLS, MP4 or AAC
    video_url: str
    video_id: str | None
    file_size: int | None
    start_time: datetime
    end_time: datetime
    duration_seconds: int
    task_id: str | None


@dataclass(frozen=True)
class ScreenshotTaken:
    stream_id: str
    taken_at: datetime
    url: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class UnusedEvent:
    """An authentic event of a kind the catalog does not use (kept in the inbox only)."""

    stream_id: str | None


CatalogEvent = PushStarted | PushEnded | RecordingFileReady | ScreenshotTaken
DomainEvent = CatalogEvent | UnusedEvent
