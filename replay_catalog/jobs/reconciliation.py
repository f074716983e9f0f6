"""Reconciliation: ask Tencent's file list for what callbacks may have missed.

The Tencent adapter turns each listed file into the domain event a callback would
have given (within the same bounds), and the Ingestor applies them: a file that also
arrives by callback (before or after) is stored once, and a second reconcile changes
nothing. A listed file whose values are out of bounds is left out, with a warning:
it stays in Tencent's list, where the next release may take it.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.times import utc_now
from resolvers.ingestion import Ingestor, loggable_stream_id
from storage.broadcasts import ended_since_query
from storage.database import Database, DatabaseUnavailable
from storage.locks import unless_held_elsewhere
from storage.recordings import known_file_ids_query
from tencent.callbacks import MalformedEvent
from tencent.filelist import FileListClient, FileListError

log = logging.getLogger("replay_catalog.reconciliation")

# File times in the list are cut at key frames and not exact to the second; ask a
# little before the broadcast began.
WINDOW_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class ReconcileTarget:
    stream_id: str
    start: datetime
    end: datetime


@dataclass
class ReconcileSummary:
    streams_asked: int = 0
    files_found: int = 0
    files_new: int = 0
    files_out_of_bounds: int = 0

    def __str__(self) -> str:
        text = (
            f"streams asked: {self.streams_asked}, files found: {self.files_found}, "
            f"files new: {self.files_new}"
        )
        if self.files_out_of_bounds:
            text += f", files out of bounds (left out): {self.files_out_of_bounds}"
        return text


async def recently_ended(database: Database, within: timedelta) -> list[ReconcileTarget]:
    """Every stream with a broadcast that ended within `within`, from that broadcast's start."""
    now = utc_now()
    rows = await database.rows(ended_since_query(now - within))
    return [ReconcileTarget(stream_id, started - WINDOW_MARGIN, now) for stream_id, started in rows]


async def reconcile(
    database: Database,
    ingestor: Ingestor,
    client: FileListClient,
    targets: Sequence[ReconcileTarget],
    on_stream_done: Callable[[int, int], None] | None = None,
) -> ReconcileSummary:
    """Ingest every listed file of the targets. Raises FileListError or DatabaseUnavailable."""
    summary = ReconcileSummary()
    for done, target in enumerate(targets, start=1):
        listed = await client.files(target.stream_id, target.start, target.end)
        summary.streams_asked += 1
        summary.files_found += len(listed)
        if listed:
            file_ids = [f.file_id for f in listed]
            known = set(await database.scalars(known_file_ids_query(file_ids)))
            now = time.time()
            for listed_file in listed:
                try:
                    # One unit of work per file: one that cannot be taken holds up no other.
                    await ingestor.apply([listed_file.as_event(now)])
                except MalformedEvent as fault:
                    summary.files_out_of_bounds += 1
                    log.warning(
                        "a file of stream %s in Tencent's file list is left out: %s",
                        loggable_stream_id(listed_file.stream_id),
                        fault,
                    )
            stored = set(await database.scalars(known_file_ids_query(file_ids)))
            summary.files_new += len(stored - known)
        if on_stream_done is not None:
            on_stream_done(done, len(targets))
    return summary


async def keep_reconciling(
    database: Database,
    ingestor: Ingestor,
    client: FileListClient,
    interval: timedelta,
    ended_within: timedelta,
) -> None:
    """Reconcile recently ended streams every `interval`, until cancelled."""
    while True:
        try:
            # With several replicas, one of them asks Tencent each round.
            async with unless_held_elsewhere(database, "reconcile") as ours:
                if ours:
                    await _reconcile_recently_ended(database, ingestor, client, ended_within)
        except (FileListError, DatabaseUnavailable) as failure:
            log.warning("background reconcile failed: %s", failure)
        await asyncio.sleep(interval.total_seconds())


async def _reconcile_recently_ended(
    database: Database, ingestor: Ingestor, client: FileListClient, ended_within: timedelta
) -> None:
    targets = await recently_ended(database, ended_within)
    summary = await reconcile(database, ingestor, client, targets)
    if summary.files_new:
        log.warning("background reconcile healed missed callbacks: %s", summary)
    else:
        log.info("background reconcile: %s", summary)
