"""What regrouping reads of streams' facts: their pushes, files and screenshots from a
time on, in one statement for the streams of a whole batch of callbacks."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    cast,
    literal_column,
    null,
)
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session

from storage.broadcasts import EARLIEST, STREAMS_PER_READ
from storage.database import execute, numbered, table_of, union_of
from storage.push_events import PushEvent, earlier_of_sequences
from storage.recordings import RecordingFile
from storage.screenshots import Screenshot


class PushRow(NamedTuple):
    id: int
    started: bool
    event_time: datetime
    sequence: str
    push_duration_ms: int | None
    broadcast_id: int | None


class FileRow(NamedTuple):
    id: int
    file_id: str
    format: str
    video_url: str
    start_time: datetime
    end_time: datetime
    broadcast_id: int | None


class ScreenshotRow(NamedTuple):
    id: int
    taken_at: datetime
    url: str
    broadcast_id: int | None


class StreamFacts(NamedTuple):
    pushes: list[PushRow]
    files: list[FileRow]
    screenshots: list[ScreenshotRow]


_PUSHES, _FILES, _SHOTS = table_of(PushEvent), table_of(RecordingFile), table_of(Screenshot)
KIND_PUSH, KIND_FILE, KIND_SCREENSHOT = 0, 1, 2
# The union's columns after `kind`, `id`, `broadcast_id` and `at` (the fact's time), and
# the column of each table that fills them (None: NULL of that column's type).
_OWN_COLUMNS = {
    "started": (_PUSHES.c.started, None, None),
    "sequence": (_PUSHES.c.sequence, None, None),
    "push_duration_ms": (_PUSHES.c.push_duration_ms, None, None),
    "file_id": (None, _FILES.c.file_id, None),
    "format": (None, _FILES.c.format, None),
    "video_url": (None, _FILES.c.video_url, None),
    "end_time": (None, _FILES.c.end_time, None),
    "url": (None, None, _SHOTS.c.url),
}


def _facts(position: int) -> list[Select[Any]]:
    """Every fact of stream `:stream_pk_N` from `:since_N` on, with N (`position`): one
    index range per table."""
    branches = []
    stream_pk: Any = bindparam(f"stream_pk_{position}")
    since: Any = bindparam(f"since_{position}")
    for index, (kind, table, time) in enumerate(
        (
            (KIND_PUSH, _PUSHES, _PUSHES.c.event_time),
            (KIND_FILE, _FILES, _FILES.c.start_time),
            (KIND_SCREENSHOT, _SHOTS, _SHOTS.c.taken_at),
        )
    ):
        columns: list[ColumnElement[Any]] = [
            literal_column(str(position), Integer).label("position"),
            literal_column(str(kind), Integer).label("kind"),
            table.c.id,
            table.c.broadcast_id,
            time.label("at"),
        ]
        for name, sources in _OWN_COLUMNS.items():
            source = sources[index]
            typed = next(column for column in sources if column is not None)
            columns.append((source if source is not None else cast(null(), typed.type)).label(name))
        branches.append(
            select_columns(*columns).where(table.c.stream_pk == stream_pk, time >= since)
        )
    return branches


def facts_of_streams(
    session: Session, wanted: Sequence[tuple[int, datetime | None]]
) -> list[StreamFacts]:
    """For each (stream pk, since) wanted, the stream's pushes and cut-offs, files and
    screenshots (from `since` on, if given, and with the pushes every other one of their
    sequences: a session's start need not be its earliest cut-off), as read-only records
    (what grouping reads); one statement for the facts of up to STREAMS_PER_READ streams,
    and one for the earlier pushes of their sequences."""
    found: list[StreamFacts] = []
    for first in range(0, len(wanted), STREAMS_PER_READ):
        found.extend(_facts_of_some(session, wanted[first : first + STREAMS_PER_READ]))
    return found


def _facts_of_some(
    session: Session, wanted: Sequence[tuple[int, datetime | None]]
) -> list[StreamFacts]:
    parameters = numbered(
        [{"stream_pk": pk, "since": EARLIEST if since is None else since} for pk, since in wanted]
    )
    found = [StreamFacts([], [], []) for _ in wanted]
    for row in execute(session, union_of(_facts, len(wanted)), parameters):
        facts = found[row.position]
        if row.kind == KIND_PUSH:
            push = (row.id, row.started, row.at, row.sequence, row.push_duration_ms)
            facts.pushes.append(PushRow(*push, row.broadcast_id))
        elif row.kind == KIND_FILE:
            file = (row.id, row.file_id, row.format, row.video_url, row.at, row.end_time)
            facts.files.append(FileRow(*file, row.broadcast_id))
        else:
            facts.screenshots.append(ScreenshotRow(row.id, row.at, row.url, row.broadcast_id))
    sequenced = []
    for position, (stream_pk, since) in enumerate(wanted):
        sequences = sorted({push.sequence for push in found[position].pushes if push.sequence})
        if since is not None and sequences:
            sequenced.append((position, stream_pk, since, sequences))
    for position, push in earlier_of_sequences(session, sequenced):
        found[position].pushes.append(PushRow(*push))  # type: ignore[call-arg]
    return found
