"""Ingesting Tencent callbacks: one code path for the HTTP route, the mutation and the demo.

An event is stored in the inbox and applied to the catalog in one short
transaction, so a 200 always means both happened, and a retry (the same event
again, or two deliveries at once) meets the inbox's unique key and changes
nothing. After every applied event the stream's broadcasts are regrouped from
all its stored facts, which makes the catalog independent of arrival order.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from replay_catalog import tencent
from resolvers.events import (
    CatalogEvent,
    PushEnded,
    PushStarted,
    RecordingFileReady,
    ScreenshotTaken,
    UnusedEvent,
)
from resolvers.grouping import (
    BroadcastShape,
    FileFact,
    GroupingRules,
    PushFact,
    ScreenshotFact,
    group_broadcasts,
)
from storage import Broadcast, InboxEntry, PushEvent, RecordingFile, Screenshot, Stream
from storage.broadcasts import broadcasts_of_stream, move_members
from storage.changefeed import CatalogChange, announce
from storage.database import (
    Database,
    DatabaseUnavailable,
    insert_or_ignore,
    table_of,
)
from storage.inbox import (
    OUTCOME_APPLIED,
    OUTCOME_IGNORED,
    OUTCOME_QUARANTINED,
    inbox_entry_by_key,
)
from storage.push_events import pushes_of_stream
from storage.recordings import files_of_stream
from storage.screenshots import screenshots_of_stream
from storage.streams import lock_stream
from storage.times import utc_now

log = logging.getLogger("replay_catalog.ingestion")

# Outcomes of a callback besides the inbox's own (applied, ignored, quarantined).
OUTCOME_DUPLICATE = "duplicate"
OUTCOME_REFUSED = "refused"
OUTCOME_UNAVAILABLE = "unavailable"

# Why a payload with NUL characters is quarantined; the inbox keeps it with U+FFFD instead.
NUL_PAYLOAD_REASON = "the payload contains NUL characters"


class IngestionObserver(Protocol):
    """What the Ingestor tells about each callback (the app's metrics)."""

    def callback(self, event_type: int | None, outcome: str) -> None: ...

    def ingested(self, event_type: int | None, outcome: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class IngestResult:
    accepted: bool
    duplicate: bool
    event_type: int | None
    outcome: str
    reason: str | None = None


class Ingestor:
    """Authenticates callbacks and applies them to the catalog."""

    def __init__(
        self,
        database: Database,
        callback_key: str | None,
        rules: GroupingRules,
        observer: IngestionObserver | None = None,
    ) -> None:
        self.database = database
        self.callback_key = callback_key
        self.rules = rules
        self.observer = observer

    async def ingest_callback(self, payload: Mapping[str, Any]) -> IngestResult:
        """Check the sign, then store and apply. Raises CallbackRejected or DatabaseUnavailable."""
        try:
            tencent.verify_callback_sign(payload, self.callback_key, now=time.time())
        except tencent.CallbackRejected as refusal:
            log.warning(
                "callback refused: %s (event_type=%s stream=%s)",
                refusal,
                tencent.event_type_of(payload),
                loggable_stream_id(tencent.stream_id_of(payload)),
            )
            if self.observer is not None:
                self.observer.callback(tencent.event_type_of(payload), OUTCOME_REFUSED)
            raise
        return await self.ingest_authentic(payload)

    async def ingest_authentic(self, payload: Mapping[str, Any]) -> IngestResult:
        """Store and apply a payload whose authenticity is established."""
        started = time.perf_counter()
        event_type = tencent.event_type_of(payload)
        stream_id = tencent.stream_id_of(payload)
        key = tencent.event_key(payload)
        try:
            try:
                if _has_nul(payload):
                    # PostgreSQL text and JSONB cannot hold NUL; no real callback has one.
                    payload = _without_nul(payload)
                    raise tencent.MalformedEvent(NUL_PAYLOAD_REASON)
                event = tencent.parse_callback(payload)
            except tencent.MalformedEvent as fault:
                stream_id = _without_nul(stream_id)
                result = await self._store(key, payload, event_type, stream_id, None, str(fault))
            else:
                result = await self._store(key, payload, event_type, stream_id, event, None)
        except DatabaseUnavailable as failure:
            log.error("database unavailable while storing a callback: %s", failure.__cause__)
            if self.observer is not None:
                self.observer.callback(event_type, OUTCOME_UNAVAILABLE)
            raise
        seconds = time.perf_counter() - started
        outcome = OUTCOME_DUPLICATE if result.duplicate else result.outcome
        if self.observer is not None:
            self.observer.ingested(event_type, outcome, seconds)
        stream = loggable_stream_id(stream_id)
        log.info(
            "callback event_type=%s stream=%s outcome=%s%s%s in %.1f ms",
            event_type,
            stream,
            result.outcome,
            " (duplicate)" if result.duplicate else "",
            # A reason may quote the payload, and so a push secret.
            f" reason={tencent.redact_secrets(result.reason)!r}" if result.reason else "",
            seconds * 1000,
            # Structured fields for LOG_FORMAT=json; never the payload or its sign.
            extra={
                "stream": stream,
                "event_type": event_type,
                "outcome": outcome,
                "latency_ms": round(seconds * 1000, 3),
            },
        )
        return result

    async def _store(
        self,
        key: str,
        payload: Mapping[str, Any],
        event_type: int | None,
        stream_id: str | None,
        event: CatalogEvent | UnusedEvent | None,
        fault: str | None,
    ) -> IngestResult:
        outcome = inbox_outcome(event, fault)
        entry: dict[str, Any] = {
            "event_key": key,
            "event_type": event_type,
            "stream_id": inbox_stream_id(stream_id),
            "payload": dict(payload),
            "received_at": utc_now(),
            "outcome": outcome,
            "reason": fault,
        }
        try:
            return await self._write(entry, event)
        except SQLAlchemyError as failure:
            # Not an outage (writing() raises those as DatabaseUnavailable): this event
            # will never apply. Keep it, quarantined, so that Tencent stops retrying and
            # an operator can see why.
            if outcome != OUTCOME_APPLIED:
                raise
            log.exception("could not apply a callback; quarantining it")
            reason = unapplicable_reason(failure)
        return await self._write({**entry, "outcome": OUTCOME_QUARANTINED, "reason": reason}, None)

    async def _write(
        self, entry: dict[str, Any], event: CatalogEvent | UnusedEvent | None
    ) -> IngestResult:
        """Store the inbox entry and, if it is new and applicable, apply the event."""
        async with self.database.writing() as session:
            inserted = await session.execute(
                insert_or_ignore(session, table_of(InboxEntry), entry, ["event_key"]).returning(
                    table_of(InboxEntry).c.id
                )
            )
            if inserted.first() is None:
                stored = await inbox_entry_by_key(session, entry["event_key"])
                return IngestResult(True, True, entry["event_type"], stored.outcome, stored.reason)
            if entry["outcome"] == OUTCOME_APPLIED and isinstance(event, CatalogEvent):
                await apply_event(session, event, self.rules)
        return IngestResult(True, False, entry["event_type"], entry["outcome"], entry["reason"])


def inbox_stream_id(stream_id: str | None) -> str | None:
    """A callback's stream id as the inbox keeps it, for filtering (256 characters)."""
    return (stream_id or "")[:256] or None


def inbox_outcome(event: CatalogEvent | UnusedEvent | None, fault: str | None) -> str:
    """Quarantined with a fault, ignored when the catalog does not use the event's type,
    else applied."""
    if fault is not None:
        return OUTCOME_QUARANTINED
    return OUTCOME_IGNORED if isinstance(event, UnusedEvent) else OUTCOME_APPLIED


def unapplicable_reason(failure: SQLAlchemyError) -> str:
    """Why an event the database refused (not an outage) is quarantined."""
    return f"the catalog could not apply it ({type(failure).__name__})"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _without_nul(value: Any) -> Any:
    """The value with every NUL character replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def loggable_stream_id(text: str | None) -> str:
    """Stream ids go into log lines; keep them short and on one line."""
    return "-" if text is None else text[:80].encode("unicode_escape").decode()


async def apply_event(session: AsyncSession, event: CatalogEvent, rules: GroupingRules) -> None:
    """Record the event's fact and regroup its stream, inside the caller's transaction."""
    stream = await lock_stream(session, event.stream_id)
    assert stream.id is not None
    fact = _fact_row(event, stream.id)
    table = table_of(type(fact))
    values = fact.model_dump(exclude={"id"})
    await session.execute(insert_or_ignore(session, table, values, _fact_keys(event)))
    await regroup_stream(session, stream, rules, after=_fact_time(event))


def _fact_time(event: CatalogEvent) -> datetime | None:
    """Where a new fact sits in time, for regrouping (None: regroup the whole stream).

    A file or screenshot joins, extends or bridges broadcasts around its own time and
    never an earlier one, so only the broadcasts from the last one that started before
    it are regrouped: that costs the same for a stream with a long history as for a
    new one. A push or cut-off may pair with any other push of the stream.
    """
    if isinstance(event, RecordingFileReady):
        return event.start_time
    if isinstance(event, ScreenshotTaken):
        return event.taken_at
    return None


def _fact_row(event: CatalogEvent, stream_pk: int) -> PushEvent | RecordingFile | Screenshot:
    if isinstance(event, PushStarted):
        return PushEvent(
            stream_pk=stream_pk,
            event_type=tencent.EVENT_PUSH_STARTED,
            event_time=event.at,
            sequence=event.sequence,
        )
    if isinstance(event, PushEnded):
        return PushEvent(
            stream_pk=stream_pk,
            event_type=tencent.EVENT_PUSH_CUT_OFF,
            event_time=event.at,
            sequence=event.sequence,
            push_duration_ms=event.push_duration_ms,
            errcode=event.errcode,
            errmsg=event.errmsg,
        )
    if isinstance(event, RecordingFileReady):
        return RecordingFile(
            file_id=event.file_id,
            stream_pk=stream_pk,
            format=event.format,
            video_url=event.video_url,
            video_id=event.video_id,
            file_size=event.file_size,
            start_time=event.start_time,
            end_time=event.end_time,
            duration_seconds=event.duration_seconds,
            task_id=event.task_id,
            received_at=utc_now(),
        )
    return Screenshot(
        stream_pk=stream_pk,
        taken_at=event.taken_at,
        url=event.url,
        width=event.width,
        height=event.height,
    )


def _fact_keys(event: CatalogEvent) -> list[str]:
    """The unique key that makes a fact impossible to store twice."""
    if isinstance(event, PushStarted | PushEnded):
        return ["stream_pk", "event_type", "event_time", "sequence"]
    if isinstance(event, RecordingFileReady):
        return ["file_id"]
    assert isinstance(event, ScreenshotTaken)
    return ["stream_pk", "url"]


async def regroup_stream(
    session: AsyncSession,
    stream: Stream,
    rules: GroupingRules,
    now: datetime | None = None,
    after: datetime | None = None,
) -> None:
    """Derive the stream's broadcasts from its facts, as of `now`, and write what changed:
    all of them, or (for a new fact at `after`) those from the last one that started
    before it on (see group_broadcasts)."""
    assert stream.id is not None
    broadcasts, since = await broadcasts_of_stream(session, stream.id, after)
    existing = {b.id: b for b in broadcasts}
    pushes = await pushes_of_stream(session, stream.id)
    files = await files_of_stream(session, stream.id, since)
    shots = await screenshots_of_stream(session, stream.id, since)
    shapes = group_broadcasts(
        [
            PushFact(p.id or 0, p.event_type, p.event_time, p.sequence, p.push_duration_ms)
            for p in pushes
        ],
        [
            FileFact(f.id or 0, f.file_id, f.format, f.video_url, f.start_time, f.end_time)
            for f in files
        ],
        [ScreenshotFact(s.id or 0, s.taken_at, s.url) for s in shots],
        rules,
        now or utc_now(),
        since,
    )
    owner: dict[type[SQLModel], dict[int | None, int | None]] = {
        PushEvent: {p.id: p.broadcast_id for p in pushes},
        RecordingFile: {f.id: f.broadcast_id for f in files},
        Screenshot: {s.id: s.broadcast_id for s in shots},
    }
    kept: set[int] = set()
    changed: set[int] = set()
    live_broadcast: int | None = None
    for shape in shapes:
        members: dict[type[SQLModel], list[int]] = {
            PushEvent: shape.push_ids,
            RecordingFile: [f.id for f in shape.files],  # FileFact ids are row ids
            Screenshot: shape.screenshot_ids,
        }
        # Keep the id of a broadcast these facts already belonged to, so that ids
        # stay stable while a broadcast grows.
        previous = {owner[kind][i] for kind, ids in members.items() for i in ids}
        candidates = sorted(
            b for b in previous if b is not None and b in existing and b not in kept
        )
        broadcast = existing[candidates[0]] if candidates else None
        broadcast, reshaped = _shape_broadcast(broadcast, shape, stream.id)
        session.add(broadcast)
        await session.flush()
        assert broadcast.id is not None
        kept.add(broadcast.id)
        if shape.is_live:
            live_broadcast = broadcast.id
        for kind, ids in members.items():
            moved = [i for i in ids if owner[kind][i] != broadcast.id]
            await move_members(session, kind, moved, broadcast.id)
            reshaped = reshaped or bool(moved)
        if reshaped:
            changed.add(broadcast.id)
    for broadcast_id, broadcast in existing.items():
        if broadcast_id is not None and broadcast_id not in kept:
            await session.delete(broadcast)
            changed.add(broadcast_id)
    stream.is_live = live_broadcast is not None
    stream.current_broadcast_id = live_broadcast
    session.add(stream)
    await session.flush()
    if changed:
        await announce(session, CatalogChange(stream.stream_id, tuple(sorted(changed))))


def _shape_broadcast(
    broadcast: Broadcast | None, shape: BroadcastShape, stream_pk: int
) -> tuple[Broadcast, bool]:
    """The broadcast with the shape's fields, and whether anything about it changed."""
    fields: dict[str, Any] = {
        "started_at": shape.started_at,
        "ended_at": shape.ended_at,
        "is_live": shape.is_live,
        "duration_seconds": shape.duration_seconds,
        "playback_url": shape.playback_url,
        "hls_part_count": shape.hls_part_count,
        "recording_count": len(shape.files),
        "cover_url": shape.cover_url,
        "last_seen_at": shape.last_seen_at,
    }
    if broadcast is None:
        broadcast = Broadcast(stream_pk=stream_pk, updated_at=utc_now(), **fields)
        broadcast.place_in_room_list()
        return broadcast, True
    if all(getattr(broadcast, name) == value for name, value in fields.items()):
        return broadcast, False
    for name, value in fields.items():
        setattr(broadcast, name, value)
    broadcast.place_in_room_list()
    broadcast.updated_at = utc_now()
    return broadcast, True
