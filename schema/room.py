"""Room: an entry of the room list (a live room or a replay), and its RoomKind."""

from enum import Enum
from typing import Self, cast

import strawberry
from strawberry import relay

from resolvers.pagination import Page
from schema.anchor import Anchor, anchor_of
from schema.broadcast import Broadcast, replay_playback_url
from schema.connections import CatalogInfo, to_connection
from schema.live_play_urls import LivePlayUrls, stream_play_urls
from schema.stream import Stream, stream_of
from storage import broadcasts as broadcast_rows


@strawberry.enum
class RoomKind(Enum):
    LIVE = "LIVE"
    REPLAY = "REPLAY"


@strawberry.type(description="An entry of the room list: a live room or a replay.")
class Room:
    kind: RoomKind
    broadcast: Broadcast
    title: str | None
    cover_url: str | None

    @classmethod
    def from_row(cls, row: broadcast_rows.Broadcast) -> Self:
        broadcast = Broadcast.from_row_required(row)
        kind = RoomKind.LIVE if row.room_rank == broadcast_rows.ROOM_RANK_LIVE else RoomKind.REPLAY
        return cls(kind=kind, broadcast=broadcast, title=row.title, cover_url=row.cover_url)

    @strawberry.field(
        description="What to play: the live HLS stream for a live room (when PLAY_DOMAIN is "
        "set), the replay's playbackUrl for a replay."
    )
    def playback_url(self, info: CatalogInfo) -> str | None:
        if self.kind is RoomKind.REPLAY:
            return replay_playback_url(self.broadcast, info)
        return cast(str | None, self._live_playback_url(info))

    async def _live_playback_url(self, info: CatalogInfo) -> str | None:
        urls = await _room_play_urls(self, info)
        return urls.hls if urls is not None else None

    @strawberry.field(description="Play URLs of a live room (when PLAY_DOMAIN is set).")
    async def live_play_urls(self, info: CatalogInfo) -> LivePlayUrls | None:
        return await _room_play_urls(self, info)

    @strawberry.field
    def anchor(self, info: CatalogInfo) -> Anchor:
        return anchor_of(info, self.broadcast.stream_pk)

    @strawberry.field
    def stream(self, info: CatalogInfo) -> Stream:
        return stream_of(info, self.broadcast.stream_pk)


async def _room_play_urls(room: Room, info: CatalogInfo) -> LivePlayUrls | None:
    if room.kind is not RoomKind.LIVE or info.context.settings.play_domain is None:
        return None
    stream = await info.context.loaders.stream.load(room.broadcast.stream_pk)
    return stream_play_urls(info, stream.stream_id)


# Room is not a Node, which relay's type hints ask for; Strawberry itself does not mind.
def rooms_connection(
    page: Page[broadcast_rows.Broadcast],
) -> relay.Connection[Room]:  # type: ignore[type-var]
    return relay.Connection(**to_connection(page, Room.from_row))
