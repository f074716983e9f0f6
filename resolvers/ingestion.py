"""Ingesting Tencent callbacks: one code path for the HTTP route, the mutation and the demo.

An event is stored in the inbox and applied to the catalog in one short
transaction, so a 200 always means both happened, and a retry (the same event
again, or two deliveries at once) meets the inbox's unique key and changes
nothing. After every applied event the stream's broadcasts are regrouped from
all its stored facts, which makes the catalog independent of arrival order.

Group commit: callbacks that arrive while a transaction is being written wait for
the next one and share it (up to MAX_BATCH), so a burst costs one commit and one
sync to disk per batch rather than per callback; each is answered once its batch
has committed. Alone, a callback is written at once, as before.
"""

import asyncio
import contextlib
import logging
import math
import re
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

import tencent
from domain.events import (
    CatalogEvent,
    DomainEvent,
    PushEnded,
    PushStarted,
    RecordingFileReady,
    ScreenshotTaken,
    UnusedEvent,
)
from domain.grouping import GroupingRules
from domain.times import utc_now
from resolvers.refusals import PerClientLimit
from resolvers.regrouping import Regroups
from storage import InboxEntry, PushEvent, RecordingFile, Screenshot
from storage.database import (
    Database,
    DatabaseUnavailable,
    insert_all_or_ignore,
    insert_or_ignore,
    table_of,
)
from storage.inbox import (
    OUTCOME_APPLIED,
    OUTCOME_IGNORED,
    OUTCOME_QUARANTINED,
    store_entries,
    stored_outcome,
)
from storage.push_events import earliest_partner
from storage.streams import lock_streams
from storage.unit_of_work import CatalogChanges, UnitOfWork

log = logging.getLogger("replay_catalog.ingestion")

# Callbacks written in one transaction at most: a batch of them takes a few
# milliseconds each, and the last one waits for the whole batch.
MAX_BATCH = 32

# Outcomes of a callback besides the inbox's own (applied, ignored, quarantined).
OUTCOME_DUPLICATE = "duplicate"
OUTCOME_REFUSED = "refused"
# Authentic, to be quarantined, from a client past QUARANTINED_CALLBACKS_PER_MINUTE: not
# stored, answered 429 (Tencent retries it).
OUTCOME_DEFERRED = "deferred"
OUTCOME_UNAVAILABLE = "unavailable"

# What the database cannot keep, none of which a real callback holds: NUL characters
# (PostgreSQL text and JSONB refuse them), lone surrogates (JSON's \u escapes can spell
# them; UTF-8 cannot encode them), and NaN and the infinities (Python's json reads them,
# JSON has no such numbers, JSONB refuses them). A payload holding any is kept in the
# inbox with U+FFFD for those characters and null for those numbers, and quarantined with
# the first of these reasons that applies: what is stored is not what Tencent sent.
NUL_PAYLOAD_REASON = "the payload contains NUL characters"
SURROGATE_PAYLOAD_REASON = "the payload contains lone surrogates (text that is not valid Unicode)"
NON_FINITE_PAYLOAD_REASON = (
    "the payload contains numbers that are not finite (NaN, Infinity, or over 4,300 digits)"
)
ALTERED_PAYLOAD_REASONS = (NUL_PAYLOAD_REASON, SURROGATE_PAYLOAD_REASON, NON_FINITE_PAYLOAD_REASON)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class QuarantineDeferred(Exception):
    """An authentic callback that would be quarantined, from a client that has had more
    quarantined than its limit a minute: not stored; the sender should retry later."""


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
    # What the catalog shows that this callback changed (nothing for a retry).
    changes: CatalogChanges = field(default_factory=CatalogChanges)


class Ingestor:
    """Authenticates callbacks and applies them to the catalog."""

    def __init__(
        self,
        database: Database,
        callback_key: str | None,
        rules: GroupingRules,
        observer: IngestionObserver | None = None,
        pacing: "CommitPacing | None" = None,
        quarantines: PerClientLimit | None = None,
    ) -> None:
        self.database = database
        # Quarantined callbacks per client address (None: no limit): each is a write that
        # feeds no answer, and a captured t/sign pair can sign any number of them.
        self.quarantines = quarantines
        self.callback_key = callback_key
        self.rules = rules
        self.observer = observer
        self.pacing = pacing if pacing is not None else CommitPacing(0.0)
        # While the committer waits out the interval: done once MAX_BATCH are waiting.
        self._batch_full: asyncio.Future[None] | None = None
        # Callbacks waiting for the next transaction, and the task writing them.
        self._queued: list[_Queued] = []
        self._committer: asyncio.Task[None] | None = None

    async def ingest_callback(
        self, payload: Mapping[str, Any], client: str | None = None
    ) -> IngestResult:
        """Check the shape and the sign, then store and apply.

        Raises MalformedBody, CallbackRejected, QuarantineDeferred (the event would be
        quarantined, and `client` has had too many quarantined) or DatabaseUnavailable.
        """
        try:
            tencent.check_nesting(payload)
            tencent.verify_callback_sign(payload, self.callback_key, now=time.time())
        except (tencent.MalformedBody, tencent.CallbackRejected) as refusal:
            # One line, whatever the payload holds: both readers below accept anything.
            event_type = tencent.event_type_of(payload)
            log.warning(
                "callback refused: %s (event_type=%s stream=%s)",
                refusal,
                event_type,
                loggable_stream_id(tencent.stream_id_of(payload)),
            )
            if self.observer is not None:
                self.observer.callback(event_type, OUTCOME_REFUSED)
            raise
        return await self.ingest_authentic(payload, client)

    async def ingest_authentic(
        self, payload: Mapping[str, Any], client: str | None = None
    ) -> IngestResult:
        """Store and apply a payload whose authenticity is established.

        Anything it holds is kept: what the catalog cannot read or the database cannot
        hold is stored in a form the database accepts and quarantined with the reason,
        unless it came from a `client` past its limit of quarantined callbacks
        (QuarantineDeferred: not stored).
        """
        started = time.perf_counter()
        key = tencent.event_key(payload)  # of what was sent
        payload, altered = storable_payload(payload)
        event_type = tencent.event_type_of(payload)
        stream_id = tencent.stream_id_of(payload)
        event, fault = (None, altered) if altered else read_event(payload, time.time())
        try:
            result = None
            if fault is not None and client is not None:
                result = await self._charge_quarantine(client, key, event_type)
            if result is None:
                result = await self._store(key, payload, event_type, stream_id, event, fault)
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

    async def _charge_quarantine(
        self, client: str, key: str, event_type: int | None
    ) -> IngestResult | None:
        """Count a callback `client` sent that is to be quarantined (None: store it);
        QuarantineDeferred once the client is past its limit (logged once as it reaches
        it), unless it was stored before: a retry (its 200 was lost) gets its outcome
        then, as any retry does, without a write."""
        limit = self.quarantines
        if limit is None:
            return None
        if not limit.allows(client):
            for outcome, reason in await self.database.rows(stored_outcome(key)):
                return retried(event_type, outcome, reason)
            if self.observer is not None:
                self.observer.callback(event_type, OUTCOME_DEFERRED)
            raise QuarantineDeferred(
                "too many quarantined callbacks from this address; retry later"
            )
        if limit.spend(client):
            log.warning(
                "callbacks from %s are quarantined too often; answering 429 to more for now",
                client,
            )
        return None

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
        except DatabaseUnavailable:
            raise
        except Exception as failure:
            # Not an outage (unit_of_work() raises those as DatabaseUnavailable): the database
            # refused the event, or applying it failed; either way it will never apply.
            # Keep it, quarantined, so that Tencent stops retrying and an operator can see
            # why. Failing to store the inbox entry itself is no such case: a 500.
            if outcome != OUTCOME_APPLIED:
                raise
            log.exception("could not apply a callback; quarantining it")
            reason = unapplicable_reason(failure)
        return await self._write({**entry, "outcome": OUTCOME_QUARANTINED, "reason": reason}, None)

    async def _write(
        self, entry: dict[str, Any], event: CatalogEvent | UnusedEvent | None
    ) -> IngestResult:
        """Store the inbox entry and, if it is new and applicable, apply the event, in
        the next transaction (group commit); the result once it has committed."""
        queued = _Queued(entry, event, asyncio.get_running_loop().create_future())
        self._queued.append(queued)
        full = self._batch_full
        if full is not None and not full.done() and len(self._queued) >= MAX_BATCH:
            full.set_result(None)
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_queued())
        return await queued.result

    async def _commit_queued(self) -> None:
        """Write what is queued, a batch per transaction, until nothing is (pacing the
        transactions of a busy spell: CommitPacing)."""
        loop = asyncio.get_running_loop()
        try:
            while self._queued:
                batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
                started = loop.time()
                await self._commit(batch)
                wait = started + self.pacing.interval - loop.time()
                busy = self._queued and len(self._queued) < MAX_BATCH
                if busy and wait > 0 and self.pacing.readers_waiting():
                    # Until the interval has passed, or a full batch is waiting.
                    self._batch_full = loop.create_future()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._batch_full, wait)
                    self._batch_full = None
        finally:
            self._committer = None

    async def _commit(self, batch: list["_Queued"]) -> None:
        """One transaction for the batch; if the database refuses something in it (not
        an outage), each callback again in a transaction of its own, so that one that
        cannot be stored fails alone."""
        rules = self.rules
        if len(batch) > 1:
            # Streams locked in one order whatever the arrival order: two replicas'
            # batches never wait for each other in a cycle (grouping is order-free).
            ordered = sorted(batch, key=lambda queued: queued.entry["stream_id"] or "")

            def store_all(work: UnitOfWork) -> list[IngestResult]:
                # The batch's inbox entries in one statement; of one event delivered
                # twice in the batch, the first is new and the second a retry.
                new = store_entries(work.session, [q.entry for q in ordered])
                results: list[IngestResult] = []
                applicable: list[tuple[int, CatalogEvent]] = []
                for q in ordered:
                    key = q.entry["event_key"]
                    if key not in new:
                        results.append(retry_result(work.session, q.entry))
                        continue
                    new.discard(key)
                    event = applicable_event(q.entry, q.event)
                    if event is not None:
                        applicable.append((len(results), event))
                    results.append(stored_result(q.entry, CatalogChanges()))
                changes = apply_events(work, [event for _, event in applicable], rules)
                for (position, _), own in zip(applicable, changes, strict=True):
                    results[position] = stored_result(ordered[position].entry, own)
                return results

            try:
                results = await self.database.write(store_all)
            except DatabaseUnavailable as outage:
                for queued in batch:
                    queued.settle(failure=outage)
                return
            except Exception:  # found again below, for the one it concerns
                log.info("a batch of %d callbacks failed; writing each on its own", len(batch))
            else:
                for queued, result in zip(ordered, results, strict=True):
                    queued.settle(result)
                return
        for queued in batch:

            def store(work: UnitOfWork, queued: _Queued = queued) -> IngestResult:
                return store_callback(work, queued.entry, queued.event, rules)

            try:
                queued.settle(await self.database.write(store))
            except Exception as failure:  # handed to the waiting caller
                queued.settle(failure=failure)

    async def apply(self, events: Sequence[CatalogEvent]) -> CatalogChanges:
        """Apply domain events that come from no callback (reconciliation's listed files),
        in one unit of work; a fact already stored changes nothing."""
        rules = self.rules

        def apply_all(work: UnitOfWork) -> CatalogChanges:
            apply_events(work, events, rules)
            return work.changes

        return await self.database.write(apply_all)


class CommitPacing:
    """How often a busy spell of callbacks commits (COMMIT_INTERVAL_SECONDS).

    Every commit makes the cached answers that showed what it changed stale, and a hot
    room-list page costs some 15 ms to compute again: committing each callback as soon
    as the last transaction ended, 100 callbacks a second under a heavy read load kept
    the server recomputing pages (reads fell to a sixth). So while callbacks keep coming
    (some arrived while the last transaction was written), readers are many
    (READS_TO_PACE requests for cacheable answers within the interval) and some wanted
    an answer a commit had made stale since the last transaction, the next transaction
    starts no sooner than `interval` after the last one did, or once a full batch waits;
    the callbacks meanwhile share it. A callback alone, a sender that waits for each
    answer, and callbacks while few read are written at once.
    """

    READS_TO_PACE = 40  # within the interval: 200 a second at 0.2 s

    def __init__(self, interval: float) -> None:
        self.interval = interval
        # When the last READS_TO_PACE requests for cacheable answers came.
        self._reads: deque[float] = deque(maxlen=self.READS_TO_PACE)
        self._stale = False

    def answer_wanted(self, stale: bool) -> None:
        """A request wanted a cacheable answer; `stale`: one a change had dropped (told
        by the response cache)."""
        self._reads.append(time.monotonic())
        self._stale = self._stale or stale

    def readers_waiting(self) -> bool:
        """Whether readers are many and some wanted stale answers since this was last
        asked."""
        reads, stale, self._stale = self._reads, self._stale, False
        many = len(reads) == reads.maxlen and reads[0] >= time.monotonic() - self.interval
        return many and stale


@dataclass
class _Queued:
    """A callback waiting for the transaction that stores it."""

    entry: dict[str, Any]
    event: CatalogEvent | UnusedEvent | None
    result: "asyncio.Future[IngestResult]"

    def settle(self, result: IngestResult | None = None, failure: Exception | None = None) -> None:
        if self.result.done():  # its caller stopped waiting
            return
        if failure is not None:
            self.result.set_exception(failure)
        else:
            assert result is not None
            self.result.set_result(result)


def store_callback(
    work: UnitOfWork,
    entry: dict[str, Any],
    event: CatalogEvent | UnusedEvent | None,
    rules: GroupingRules,
) -> IngestResult:
    """Store a callback's inbox entry and, if it is new and applicable, apply its event."""
    session = work.session
    if insert_or_ignore(session, table_of(InboxEntry), entry, ["event_key"]) is None:
        return retry_result(session, entry)
    applicable = applicable_event(entry, event)
    if applicable is not None:
        apply_event(work, applicable, rules)
    return stored_result(entry, work.changes)


def applicable_event(
    entry: dict[str, Any], event: CatalogEvent | UnusedEvent | None
) -> CatalogEvent | None:
    """The event a newly stored inbox entry applies to the catalog, if any."""
    if entry["outcome"] == OUTCOME_APPLIED and isinstance(event, CatalogEvent):
        return event
    return None


def retry_result(session: Session, entry: dict[str, Any]) -> IngestResult:
    """A callback whose inbox entry was stored before: its outcome then, changing nothing."""
    stored = session.execute(stored_outcome(entry["event_key"])).one()
    return retried(entry["event_type"], stored.outcome, stored.reason)


def retried(event_type: int | None, outcome: str, reason: str | None) -> IngestResult:
    """The result of a callback stored before with this outcome and reason."""
    return IngestResult(True, True, event_type, outcome, reason)


def stored_result(entry: dict[str, Any], changes: CatalogChanges) -> IngestResult:
    """A callback stored now, and what applying it changed."""
    return IngestResult(
        True, False, entry["event_type"], entry["outcome"], entry["reason"], changes
    )


def inbox_stream_id(stream_id: str | None) -> str | None:
    """A callback's stream id as the inbox keeps it, for filtering (256 characters)."""
    return (stream_id or "")[:256] or None


def inbox_outcome(event: CatalogEvent | UnusedEvent | None, fault: str | None) -> str:
    """Quarantined with a fault, ignored when the catalog does not use the event's type,
    else applied."""
    if fault is not None:
        return OUTCOME_QUARANTINED
    return OUTCOME_IGNORED if isinstance(event, UnusedEvent) else OUTCOME_APPLIED


def unapplicable_reason(failure: Exception) -> str:
    """Why an event the database refused (not an outage) is quarantined."""
    return f"the catalog could not apply it ({type(failure).__name__})"


def read_event(payload: Mapping[str, Any], now: float) -> tuple[DomainEvent | None, str | None]:
    """The event a payload received at `now` holds, or why it is quarantined.

    A fault of this code in reading it (a bug, not the payload's) also quarantines it:
    the event is kept for a later release to apply (`replay-catalog reprocess`).
    """
    try:
        return tencent.parse_callback(payload, now=now), None
    except tencent.MalformedEvent as fault:
        return None, str(fault)
    except Exception as failure:
        # Where, not the message: it may quote the payload, and so a push secret.
        where = traceback.extract_tb(failure.__traceback__)[-1]
        log.error(
            "could not read a callback (%s at %s:%s); quarantining it",
            type(failure).__name__,
            where.filename,
            where.lineno,
        )
        return None, f"the catalog could not read it ({type(failure).__name__})"


def storable_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The payload as the database can keep it, and the reason to quarantine it if that
    is not what was received (see NUL_PAYLOAD_REASON)."""
    found: set[str] = set()
    stored = _storable(payload, found)
    reason = next((reason for reason in ALTERED_PAYLOAD_REASONS if reason in found), None)
    return stored, reason


def _storable(value: Any, found: set[str]) -> Any:
    """The value with NUL characters and lone surrogates replaced by U+FFFD, and NaN and
    the infinities by None; `found` collects the reasons for each replacement."""
    if isinstance(value, str):
        if "\x00" in value:
            found.add(NUL_PAYLOAD_REASON)
            value = value.replace("\x00", "\ufffd")
        if LONE_SURROGATE.search(value):
            found.add(SURROGATE_PAYLOAD_REASON)
            value = LONE_SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        found.add(NON_FINITE_PAYLOAD_REASON)
        return None
    if isinstance(value, Mapping):
        return {_storable(k, found): _storable(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(item, found) for item in value]
    return value


def loggable_stream_id(text: str | None) -> str:
    """Stream ids go into log lines; keep them short and on one line."""
    return "-" if text is None else text[:80].encode("unicode_escape").decode()


def apply_event(work: UnitOfWork, event: CatalogEvent, rules: GroupingRules) -> None:
    """Record the event's fact and regroup its stream, inside the caller's unit of work."""
    apply_events(work, [event], rules)


def apply_events(
    work: UnitOfWork, events: Sequence[CatalogEvent], rules: GroupingRules
) -> list[CatalogChanges]:
    """Record the events' facts and regroup their streams, inside the caller's unit of
    work; what each event changed (its stream's regrouping included).

    The statements are those of one event: the streams locked in one, the facts of each
    kind inserted in one, and each stream regrouped once, from the earliest time any of
    its new facts reaches (resolvers/regrouping.py).
    """
    if not events:
        return []
    session = work.session
    streams = lock_streams(session, (event.stream_id for event in events))
    facts = [fact_values(event, streams[event.stream_id].id) for event in events]
    new = [False] * len(events)
    for kind, keys in FACT_KEYS.items():
        positions = [i for i, (fact_kind, _) in enumerate(facts) if fact_kind is kind]
        rows = [facts[i][1] for i in positions]
        inserted = insert_all_or_ignore(session, table_of(kind), rows, keys)
        for position, was_inserted in zip(positions, inserted, strict=True):
            new[position] = was_inserted
    regroups = Regroups()
    changes = []
    for event, is_new in zip(events, new, strict=True):
        stream = streams[event.stream_id]
        with work.part() as own:
            if is_new:
                own.streams_changed(stream)
            reach = _earliest_reach(session, stream.id, event)
            screenshot = isinstance(event, ScreenshotTaken)
            regroups.add(stream, reach, told=own, screenshot=screenshot)
        changes.append(own.changes)
    regroups.run(work, rules)
    return changes


def _earliest_reach(session: Session, stream_pk: int, event: CatalogEvent) -> datetime:
    """The earliest time a new fact can change broadcasts at, for regrouping.

    Only the broadcasts from the last one that started before it are regrouped, so a
    fact costs the same for a stream with a long history as for a new one. A file or
    screenshot joins, extends or bridges broadcasts around its own time and never an
    earlier one. A push or cut-off reaches back to what it pairs with by sequence (a
    cut-off may be stamped before its push) and to where a push duration puts the
    start; a cut-off without a sequence, to the push before it. A push without one
    pairs with cut-offs after it, and closes an open push before it, whose broadcast,
    on air, reaches it. Every other pairing they change lies after those (sessions sit
    inside broadcasts, which do not overlap).
    """
    if isinstance(event, RecordingFileReady):
        return event.start_time
    if isinstance(event, ScreenshotTaken):
        return event.taken_at
    if isinstance(event, PushStarted) and not event.sequence:
        return event.at
    reach = [event.at]
    if isinstance(event, PushEnded) and event.push_duration_ms:
        reach.append(event.at - timedelta(milliseconds=event.push_duration_ms))
    partner = earliest_partner(session, stream_pk, event.at, event.sequence)
    if partner is not None:
        reach.append(partner)
    return min(reach)


def fact_values(
    event: CatalogEvent, stream_pk: int
) -> tuple[type[PushEvent | RecordingFile | Screenshot], dict[str, Any]]:
    """The table an event's fact goes to, and its row (without an id)."""
    if isinstance(event, PushStarted):
        return PushEvent, {
            "stream_pk": stream_pk,
            "started": True,
            "event_time": event.at,
            "sequence": event.sequence,
            "push_duration_ms": None,
            "errcode": None,
            "errmsg": None,
            "broadcast_id": None,
        }
    if isinstance(event, PushEnded):
        return PushEvent, {
            "stream_pk": stream_pk,
            "started": False,
            "event_time": event.at,
            "sequence": event.sequence,
            "push_duration_ms": event.push_duration_ms,
            "errcode": event.errcode,
            "errmsg": event.errmsg,
            "broadcast_id": None,
        }
    if isinstance(event, RecordingFileReady):
        return RecordingFile, {
            "file_id": event.file_id,
            "stream_pk": stream_pk,
            "broadcast_id": None,
            "format": event.format,
            "video_url": event.video_url,
            "video_id": event.video_id,
            "file_size": event.file_size,
            "start_time": event.start_time,
            "end_time": event.end_time,
            "duration_seconds": event.duration_seconds,
            "task_id": event.task_id,
            "received_at": utc_now(),
        }
    return Screenshot, {
        "stream_pk": stream_pk,
        "broadcast_id": None,
        "taken_at": event.taken_at,
        "url": event.url,
        "width": event.width,
        "height": event.height,
    }


# The unique key of each kind of fact, which makes it impossible to store twice.
FACT_KEYS: dict[type[PushEvent | RecordingFile | Screenshot], list[str]] = {
    PushEvent: ["stream_pk", "started", "event_time", "sequence"],
    RecordingFile: ["file_id"],
    Screenshot: ["stream_pk", "url"],
}
