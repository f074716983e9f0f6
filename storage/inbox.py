"""The inbox: every authenticated callback, exactly as received, stored once."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Select, bindparam
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select

from domain.times import utc_now
from storage.database import Lookup, insert_all_or_ignore, table_of
from storage.keyset import Listing

OUTCOME_APPLIED = "applied"
OUTCOME_IGNORED = "ignored"
OUTCOME_QUARANTINED = "quarantined"


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox_entry"
    # inboxEntries lists newest first, of everything or of one outcome (quarantined).
    __table_args__ = (
        Index("ix_inbox_entry_received", "received_at", "id"),
        Index("ix_inbox_entry_outcome_received", "outcome", "received_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of the payload without `t` and `sign`, which change between retries.
    event_key: str = Field(max_length=64, unique=True)
    event_type: int | None = Field(default=None, index=True)
    stream_id: str | None = Field(default=None, max_length=256, index=True)
    payload: dict[str, Any] = Field(
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    received_at: datetime = Field(default_factory=utc_now)
    outcome: str = Field(max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=1024)


def store_entries(session: Session, entries: Sequence[dict[str, Any]]) -> set[str]:
    """Insert inbox entries, in one statement, except those whose event_key is stored
    already (or comes twice among them: the first is kept); the keys of those inserted."""
    inserted = insert_all_or_ignore(session, table_of(InboxEntry), entries, ["event_key"])
    return {entry["event_key"] for entry, new in zip(entries, inserted, strict=True) if new}


def stored_outcome(event_key: str) -> Select[tuple[str, str | None]]:
    """The outcome and reason of the event stored under `event_key` (no row: none is)."""
    return select(InboxEntry.outcome, InboxEntry.reason).where(  # type: ignore[return-value]
        col(InboxEntry.event_key) == event_key
    )


# The inbox as admins read it: newest first.
INBOX = Listing(InboxEntry, (("received_at", True), ("id", True)))


@dataclass(frozen=True)
class InboxFilter:
    """Which inbox entries to list or reprocess: any, or of one outcome, of one stream."""

    outcome: str | None = None
    stream_id: str | None = None

    def given(self) -> dict[str, str | None]:
        """The filter's values by the name of the column each one restricts (None: any)."""
        return {"outcome": self.outcome, "stream_id": self.stream_id}

    def restrict(self, query: Select[Any]) -> Select[Any]:
        """`query` restricted to this filter's entries, its values in the statement."""
        return _where_equal(query, {n: v for n, v in self.given().items() if v is not None})


def _where_equal(query: Select[Any], conditions: dict[str, Any]) -> Select[Any]:
    """`query` where each named inbox column equals its value (or bound parameter)."""
    table = table_of(InboxEntry)
    for name, value in conditions.items():
        query = query.where(table.c[name] == value)
    return query


@functools.lru_cache(maxsize=8)
def _inbox(given: frozenset[str], after: bool) -> Select[Any]:
    conditions: dict[str, Any] = {name: bindparam(name) for name in sorted(given)}
    return INBOX.page(_where_equal(select(InboxEntry), conditions), after)


def inbox_query(inbox_filter: InboxFilter, after: Sequence[Any] | None, limit: int) -> Lookup:
    return INBOX.lookup(_inbox, after, limit, **inbox_filter.given())


def inbox_ids_query(inbox_filter: InboxFilter, after_id: int, limit: int) -> Select[Any]:
    """The next `limit` ids after `after_id`, oldest first (a walk that rows updated
    behind it cannot disturb)."""
    query = select(InboxEntry.id).where(col(InboxEntry.id) > after_id)
    return inbox_filter.restrict(query).order_by(col(InboxEntry.id)).limit(limit)
