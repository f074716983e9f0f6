"""Live updates over WebSocket (graphql-transport-ws), from every replica's changes."""

from collections.abc import AsyncGenerator

import strawberry

from resolvers.errors import InvalidInput
from resolvers.global_ids import broadcast_global_id
from resolvers.live_updates import catalog_changes
from schema.broadcast import Broadcast
from schema.connections import CatalogInfo
from schema.query import resolve_global_id
from schema.room import Room
from schema.room_change import RoomChange
from schema.stream import Stream


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A room went live, ended, became a replay, changed, or was curated."
    )
    async def rooms_changed(self, info: CatalogInfo) -> AsyncGenerator[RoomChange, None]:
        context = info.context
        async for change in catalog_changes(context, lambda change: change.rooms):
            for broadcast_pk in change.broadcast_ids:
                row = await context.loaders.broadcast.load(broadcast_pk)
                broadcast_id = strawberry.ID(broadcast_global_id(broadcast_pk))
                if row is not None and row.room_rank is not None:
                    yield RoomChange(broadcast_id=broadcast_id, room=Room.from_row(row))
                # Anonymous subscribers hear once that a room left their list, and
                # nothing of broadcasts they cannot see; admins hear of every change.
                elif context.is_admin or change.was_public_room(broadcast_pk):
                    yield RoomChange(broadcast_id=broadcast_id, room=None)

    @strawberry.subscription(
        description="The broadcast each time it changes (a file, a cover, its end, "
        "curation); ends when the broadcast is removed or hidden."
    )
    async def broadcast_updated(
        self, info: CatalogInfo, id: strawberry.ID
    ) -> AsyncGenerator[Broadcast, None]:
        node = await resolve_global_id(info, id)
        if not isinstance(node, Broadcast):
            raise InvalidInput("no broadcast has this id")
        pk = node.pk
        async for _ in catalog_changes(info.context, lambda change: pk in change.broadcast_ids):
            broadcast = Broadcast.from_row(await info.context.loaders.broadcast.load(pk))
            if broadcast is None:
                return
            yield broadcast

    @strawberry.subscription(
        description="The stream each time one of its broadcasts changes (it goes live, ends, "
        "gains a recording)."
    )
    async def stream_updated(
        self, info: CatalogInfo, stream_id: str
    ) -> AsyncGenerator[Stream, None]:
        async for _ in catalog_changes(info.context, lambda change: change.stream_id == stream_id):
            stream = Stream.from_row(await info.context.loaders.stream_by_stream_id.load(stream_id))
            if stream is not None:
                yield stream
