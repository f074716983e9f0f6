"""What regrouping reads of a stream's facts: its pushes, files and screenshots from a
time on, in one statement."""

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
    union_all,
)
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session

from storage.database import execute, table_of
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


def _facts(since: bool) -> Select[Any]:
    """Every fact of the stream (from `:since` on): one index range per table."""
    branches = []
    for position, (kind, table, time) in enumerate(
        (
            (KIND_PUSH, _PUSHES, _PUSHES.c.event_time),
            (KIND_FILE, _FILES, _FILES.c.start_time),
            (KIND_SCREENSHOT, _SHOTS, _SHOTS.c.taken_at),
        )
    ):
        columns: list[ColumnElement[Any]] = [
            literal_column(str(kind), Integer).label("kind"),
            table.c.id,
            table.c.broadcast_id,
            time.label("at"),
        ]
        for name, sources in _OWN_COLUMNS.items():
            source = sources[position]
            typed = next(column for column in sources if column is not None)
            columns.append((source if source is not None else cast(null(), typed.type)).label(name))
        branch = select_columns(*columns).where(table.c.stream_pk == bindparam("stream_pk"))
        branches.append(branch.where(time >= bindparam("since")) if since else branch)
    return union_all(*branches)  # type: ignore[return-value]


# Built once (their SQL and cache keys are then computed once, not per callback).
_ALL_FACTS, _FACTS_SINCE = _facts(since=False), _facts(since=True)


def facts_of_stream(session: Session, stream_pk: int, since: datetime | None) -> StreamFacts:
    """The stream's pushes and cut-offs, files and screenshots (from `since` on, if
    given, and with the pushes every other one of their sequences: a session's start
    need not be its earliest cut-off), as read-only records (what grouping reads)."""
    if since is None:
        rows = execute(session, _ALL_FACTS, {"stream_pk": stream_pk})
    else:
        rows = execute(session, _FACTS_SINCE, {"stream_pk": stream_pk, "since": since})
    facts = StreamFacts([], [], [])
    for row in rows:
        if row.kind == KIND_PUSH:
            push = (row.id, row.started, row.at, row.sequence, row.push_duration_ms)
            facts.pushes.append(PushRow(*push, row.broadcast_id))
        elif row.kind == KIND_FILE:
            file = (row.id, row.file_id, row.format, row.video_url, row.at, row.end_time)
            facts.files.append(FileRow(*file, row.broadcast_id))
        else:
            facts.screenshots.append(ScreenshotRow(row.id, row.at, row.url, row.broadcast_id))
    if since is not None:
        sequences = sorted({push.sequence for push in facts.pushes if push.sequence})
        if sequences:
            earlier = earlier_of_sequences(session, stream_pk, since, sequences)
            facts.pushes.extend(PushRow(*push) for push in earlier)
    return facts
