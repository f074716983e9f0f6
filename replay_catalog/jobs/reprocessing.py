"""Reprocessing the inbox: apply stored callbacks again with the code of this release.

The inbox keeps every authentic callback as received, so a callback quarantined by
an earlier release (a field it did not understand, a row the database refused) can
be applied after the fix. Each entry goes through `tencent.parse_callback` and
`apply_event`, as a live callback does, in a short transaction of its own that also
records the entry's new outcome and reason (and its event type and stream id, which
the inbox is filtered by, as this release reads them): an interrupted run loses
nothing, and a second run changes nothing.
"""

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

import tencent
from domain.events import CatalogEvent
from domain.grouping import GroupingRules
from resolvers.ingestion import (
    ALTERED_PAYLOAD_REASONS,
    apply_event,
    inbox_outcome,
    inbox_stream_id,
    read_event,
    unapplicable_reason,
)
from storage import InboxEntry
from storage.database import Database, is_outage
from storage.inbox import (
    OUTCOME_APPLIED,
    OUTCOME_IGNORED,
    OUTCOME_QUARANTINED,
    InboxFilter,
    inbox_ids_query,
)
from storage.unit_of_work import UnitOfWork

log = logging.getLogger("replay_catalog.reprocessing")

# Entry ids read at a time; each entry is still written in a transaction of its own.
ID_BATCH = 500

# An entry's outcome and reason.
Verdict = tuple[str, str | None]


@dataclass
class ReprocessSummary:
    """Applied, still quarantined and ignored say what the entries read are now (they
    add up to `read`); `unchanged` counts those whose outcome and reason stayed."""

    read: int = 0
    applied: int = 0
    quarantined: int = 0
    ignored: int = 0
    unchanged: int = 0

    def count(self, before: Verdict, after: Verdict) -> None:
        self.read += 1
        outcome = after[0]
        self.applied += outcome == OUTCOME_APPLIED
        self.quarantined += outcome == OUTCOME_QUARANTINED
        self.ignored += outcome == OUTCOME_IGNORED
        self.unchanged += before == after

    def __str__(self) -> str:
        return (
            f"entries read: {self.read}, applied: {self.applied}, "
            f"still quarantined: {self.quarantined}, ignored: {self.ignored}, "
            f"unchanged: {self.unchanged}"
        )


async def reprocess(
    database: Database, rules: GroupingRules, inbox_filter: InboxFilter
) -> ReprocessSummary:
    """Apply the entries `inbox_filter` selects again, oldest first.

    Raises DatabaseUnavailable; the entries done by then stay done.
    """
    summary = ReprocessSummary()
    last_id = 0
    while True:
        ids = await database.scalars(inbox_ids_query(inbox_filter, last_id, ID_BATCH))
        for entry_id in ids:
            change = await _reprocess_entry(database, rules, entry_id)
            if change is not None:
                summary.count(*change)
        if len(ids) < ID_BATCH:
            return summary
        last_id = ids[-1]


async def _reprocess_entry(
    database: Database, rules: GroupingRules, entry_id: int
) -> tuple[Verdict, Verdict] | None:
    """Apply one entry and record its outcome, in one transaction; None if it is gone."""

    def reprocess(work: UnitOfWork) -> tuple[Verdict, Verdict] | None:
        session = work.session
        entry = session.get(InboxEntry, entry_id, with_for_update=True)
        if entry is None:
            return None
        before: Verdict = (entry.outcome, entry.reason)
        after, event = _verdict(entry)
        if event is not None:
            try:
                # Released first: a savepoint rolled back changed nothing to describe.
                with work.part() as applied, session.begin_nested():
                    apply_event(applied, event, rules)
            except SQLAlchemyError as failure:
                if is_outage(failure):
                    raise
                # As in live ingestion: the database refuses this event; keep it quarantined.
                # The class only: the error's text may quote the row.
                after = (OUTCOME_QUARANTINED, unapplicable_reason(failure))
                log.warning("inbox entry %d cannot be applied: %s", entry_id, after[1])
        # What the inbox is filtered by, as this release reads the payload.
        event_type = tencent.event_type_of(entry.payload)
        stream_id = inbox_stream_id(tencent.stream_id_of(entry.payload))
        if (entry.event_type, entry.stream_id) != (event_type, stream_id):
            entry.event_type, entry.stream_id = event_type, stream_id
            session.add(entry)
        if after != before:
            entry.outcome, entry.reason = after
            session.add(entry)
            log.info(
                "inbox entry %d (event_type=%s): %s -> %s%s",
                entry_id,
                entry.event_type,
                before[0],
                after[0],
                f" reason={tencent.redact_secrets(after[1])!r}" if after[1] else "",
            )
        return before, after

    return await database.write(reprocess)


def _verdict(entry: InboxEntry) -> tuple[Verdict, CatalogEvent | None]:
    """What the current code makes of a stored callback, and the event to apply if any."""
    if entry.reason in ALTERED_PAYLOAD_REASONS:
        # Stored with U+FFFD or null in place of what the database cannot hold: not
        # what Tencent sent.
        return (OUTCOME_QUARANTINED, entry.reason), None
    # Times are judged against when the callback arrived, as they were then.
    event, fault = read_event(entry.payload, entry.received_at.timestamp())
    if fault is not None:
        return (inbox_outcome(None, fault), fault), None
    outcome = inbox_outcome(event, None)
    return (outcome, None), (event if isinstance(event, CatalogEvent) else None)
