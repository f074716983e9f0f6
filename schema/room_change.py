"""RoomChange: what the roomsChanged subscription sends when a room may have moved."""

import strawberry

from schema.room import Room


@strawberry.type(description="A broadcast whose place in the room list may have changed.")
class RoomChange:
    broadcast_id: strawberry.ID = strawberry.field(description="The broadcast's global id.")
    room: Room | None = strawberry.field(
        description="The room as it is now; null when the broadcast is no longer in the room "
        "list (ended without a recording, hidden or deleted)."
    )
