"""A broadcast's timeline: its parts of one format in play order, and the breaks between."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from domain.formats import PLAYBACK_PREFERENCE


class RecordingPart(Protocol):
    """What the timeline reads of a recording file."""

    @property
    def file_id(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...
    @property
    def end_time(self) -> datetime: ...


Part = TypeVar("Part", bound=RecordingPart)


@dataclass(frozen=True)
class TimelineEntry(Generic[Part]):
    recording: Part
    offset_seconds: int  # from the start of the broadcast
    gap_before_seconds: int  # nothing was recorded for this long before the part


def timeline(
    recordings: Sequence[Part], started_at: datetime | None, file_format: str | None
) -> list[TimelineEntry[Part]]:
    """The parts of `file_format` (default: the format the broadcast plays in), in order."""
    if file_format is None:
        present = {r.format for r in recordings}
        file_format = next((f for f in PLAYBACK_PREFERENCE if f in present), None)
    parts = sorted(
        (r for r in recordings if r.format == file_format),
        key=lambda r: (r.start_time, r.end_time, r.file_id),
    )
    origin = started_at or (parts[0].start_time if parts else None)
    entries: list[TimelineEntry[Part]] = []
    reached: datetime | None = None
    for part in parts:
        gap = 0 if reached is None else max(0, int((part.start_time - reached).total_seconds()))
        offset = int((part.start_time - origin).total_seconds()) if origin else 0
        entries.append(TimelineEntry(part, max(0, offset), gap))
        reached = part.end_time if reached is None else max(reached, part.end_time)
    return entries
