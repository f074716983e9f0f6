"""The unit of work: one write transaction, and a description of what it changed.

Every write to the catalog is a plain function of a unit of work, run by
`Database.write(work)`: synchronous code on a synchronous session, so that a whole
transaction costs one hop to the writer's thread on SQLite instead of one per
statement (on PostgreSQL, SQLAlchemy runs it on the async driver). The code says
what it changed (`broadcasts_changed`, `streams_changed`, `anchors_changed`); when
the transaction commits, the description decides, in one place (`Database.write`),
whether cached answers go stale (the catalog version is raised) and which changes
subscribers hear of. A unit of work that changed nothing
the catalog shows (a retried callback, an event kept in the inbox only) raises no
version, so it costs no cache its answers. The caller gets the description back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from storage.cache_tags import EVERYTHING, ROOM_ORDER, anchor_tag, stream_tag
from storage.changefeed import CatalogChange


class StreamRow(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def anchor_id(self) -> int: ...


class AnchorRow(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def user_id(self) -> str: ...


@dataclass
class CatalogChanges:
    """What one unit of work changed, in the catalog's terms."""

    # Broadcasts created, reshaped, curated or removed (primary keys).
    broadcasts: set[int] = field(default_factory=set)
    # Streams whose facts, owner or liveness changed (Tencent stream ids).
    streams: set[str] = field(default_factory=set)
    # Anchors whose profile changed or who gained or lost streams (user ids).
    anchors: set[str] = field(default_factory=set)
    # Whether a room may have appeared in, left, moved within or changed in the room list.
    room_list: bool = False
    # What subscribers are told, in the order it happened.
    announcements: list[CatalogChange] = field(default_factory=list)
    # The same, as cache tags (storage/cache_tags.py): what cached answers it makes stale.
    tags: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        """Whether anything the catalog shows changed."""
        return bool(self.broadcasts or self.streams or self.anchors or self.room_list)

    def merge(self, other: "CatalogChanges") -> None:
        """Add what another unit of work changed (for callers that run several)."""
        self.broadcasts |= other.broadcasts
        self.streams |= other.streams
        self.anchors |= other.anchors
        self.room_list = self.room_list or other.room_list
        self.announcements.extend(other.announcements)
        self.tags |= other.tags


class UnitOfWork:
    """A session inside one write transaction, and what the work in it changed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.changes = CatalogChanges()

    @contextmanager
    def part(self) -> Iterator["UnitOfWork"]:
        """A unit of work for part of this one (a callback of a batch, an event applied
        under a savepoint), with a description of its own; added to this one's when the
        part completes, and not if it raises (what a savepoint rolled back changed
        nothing)."""
        own = UnitOfWork(self.session)
        yield own
        self.changes.merge(own.changes)

    def broadcasts_changed(
        self, change: CatalogChange, stream: StreamRow, room_order: bool = True
    ) -> None:
        """Broadcasts of one stream changed (`room_order`: and rooms may have appeared,
        gone or moved): recorded, and announced to every replica once the transaction
        commits."""
        self.changes.broadcasts.update(change.broadcast_ids)
        self.streams_changed(stream)
        self.changes.room_list = self.changes.room_list or change.rooms
        if room_order:
            self.changes.tags.add(ROOM_ORDER)
        self.changes.announcements.append(change)

    def streams_changed(self, *streams: StreamRow) -> None:
        """Streams' facts, owner or liveness changed (and so, for cached answers, their
        anchors')."""
        for stream in streams:
            assert stream.id is not None
            self.changes.streams.add(stream.stream_id)
            self.changes.tags.update((stream_tag(stream.id), anchor_tag(stream.anchor_id)))

    def anchors_changed(self, *anchors: AnchorRow) -> None:
        for anchor in anchors:
            assert anchor.id is not None
            self.changes.anchors.add(anchor.user_id)
            self.changes.tags.add(anchor_tag(anchor.id))

    def anchors_lost_streams(self, *anchor_pks: int) -> None:
        """Anchors (perhaps deleted placeholders) whose streams went to another."""
        self.changes.tags.update(anchor_tag(pk) for pk in anchor_pks)

    def room_order_changed(self) -> None:
        """Rooms may have appeared in, left or moved within the room list."""
        self.changes.room_list = True
        self.changes.tags.add(ROOM_ORDER)

    def everything_may_have_changed(self) -> None:
        """For writes that do not itemise what they touched (tests, repairs by hand):
        every cached answer goes stale."""
        self.changes.room_list = True
        self.changes.tags.add(EVERYTHING)
