"""The Query root: room list, lookups by natural key, and relay's `node`."""

import inspect
from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry import relay

from resolvers import catalog
from resolvers.errors import InvalidInput
from resolvers.inbox import inbox_entries
from schema.anchor import Anchor
from schema.broadcast import Broadcast
from schema.connections import CatalogInfo, load_ahead
from schema.inbox_entry import InboxEntry, IngestOutcome, connection_of_inbox_entries
from schema.recording_file import RecordingFile, RecordingFormat, connection_of_recordings
from schema.room import Room, RoomKind, rooms_connection
from schema.stream import Stream
from storage.broadcasts import REPLAY_RANKS, ROOM_RANK_LIVE, RoomFilter
from storage.inbox import InboxFilter
from storage.recordings import RecordingFilter

ROOM_RANKS = {
    RoomKind.LIVE: (ROOM_RANK_LIVE,),
    RoomKind.REPLAY: REPLAY_RANKS,
}
NODE_TYPES: dict[str, type[relay.Node]] = {
    cls.__name__: cls for cls in (Anchor, Stream, Broadcast, RecordingFile, InboxEntry)
}


async def resolve_global_id(info: CatalogInfo, node_id: str) -> relay.Node | None:
    """The object a global id names, or None for an unknown or malformed id."""
    try:
        global_id = relay.GlobalID.from_id(node_id)
    except Exception:
        return None
    node_type = NODE_TYPES.get(global_id.type_name)
    if node_type is None:
        return None
    nodes = node_type.resolve_nodes(info=info, node_ids=[global_id.node_id])
    assert inspect.isawaitable(nodes)  # every catalog type loads through data loaders
    return next(iter(await nodes), None)


def _in_utc(argument: str, moment: datetime | None) -> datetime | None:
    """A time argument in UTC, or InvalidInput if it has no offset or if UTC cannot hold
    it (`9999-12-31T23:59:59-23:59` is in the year 10000 there)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput("times must carry a UTC offset, e.g. 2026-11-01T12:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{argument} is out of range: {moment.isoformat()} is not between the years "
            "1 and 9999 in UTC"
        ) from None


@strawberry.type
class Query:
    @strawberry.field(
        description="Live rooms first (newest push first), then featured replays, then the "
        "other replays (newest end first). Optionally only one kind, or one anchor's rooms."
    )
    async def rooms(
        self,
        info: CatalogInfo,
        first: int | None = None,
        after: str | None = None,
        kind: RoomKind | None = None,
        anchor: Annotated[
            str | None, strawberry.argument(description="An anchor's userId.")
        ] = None,
    ) -> relay.Connection[Room]:  # type: ignore[type-var]
        ranks = None if kind is None else ROOM_RANKS[kind]
        room_filter = RoomFilter(ranks=ranks, anchor_user_id=anchor)
        page = await catalog.rooms(info.context, room_filter, first, after)
        await load_ahead(info, page.rows)
        return rooms_connection(page)

    @strawberry.field
    async def anchor(self, info: CatalogInfo, user_id: str) -> Anchor | None:
        return Anchor.from_row(await info.context.loaders.anchor_by_user_id.load(user_id))

    @strawberry.field
    async def stream(self, info: CatalogInfo, stream_id: str) -> Stream | None:
        return Stream.from_row(await info.context.loaders.stream_by_stream_id.load(stream_id))

    @strawberry.field(description="A broadcast by its global id.")
    async def broadcast(self, info: CatalogInfo, id: strawberry.ID) -> Broadcast | None:
        node = await resolve_global_id(info, id)
        return node if isinstance(node, Broadcast) else None

    @strawberry.field
    async def recording_file(self, info: CatalogInfo, file_id: str) -> RecordingFile | None:
        row = await info.context.loaders.recording_by_file_id.load(file_id)
        return RecordingFile.from_row(row)

    @strawberry.field(description="Recording files, newest first; of one stream if given.")
    async def recording_files(
        self,
        info: CatalogInfo,
        stream_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
        format: RecordingFormat | None = None,
        started_after: Annotated[
            datetime | None, strawberry.argument(description="Started at or after this time.")
        ] = None,
        started_before: Annotated[
            datetime | None, strawberry.argument(description="Started before this time.")
        ] = None,
    ) -> relay.Connection[RecordingFile]:
        recording_filter = RecordingFilter(
            formats=None if format is None else (format.value,),
            started_after=_in_utc("startedAfter", started_after),
            started_before=_in_utc("startedBefore", started_before),
        )
        page = await catalog.recording_files(
            info.context, stream_id, recording_filter, first, after
        )
        return connection_of_recordings(page)

    @strawberry.field(
        description="Stored callbacks, newest first, with their outcome (admin): e.g. the "
        "quarantined ones, which `replay-catalog reprocess` applies again after a fix."
    )
    async def inbox_entries(
        self,
        info: CatalogInfo,
        outcome: IngestOutcome | None = None,
        stream_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[InboxEntry]:
        inbox_filter = InboxFilter(
            outcome=None if outcome is None else outcome.value, stream_id=stream_id
        )
        return connection_of_inbox_entries(
            await inbox_entries(info.context, inbox_filter, first, after)
        )

    @strawberry.field
    async def node(self, info: CatalogInfo, id: strawberry.ID) -> relay.Node | None:
        return await resolve_global_id(info, id)
