"""The catalog's GraphQL types: anchors, streams, broadcasts, recording files and rooms.

Per-item fields are plain attributes copied from storage rows; fields that reach
another table go through the request's data loaders, so a page costs one
statement per kind of thing it shows, whatever its length.
"""

import re
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.timeline import timeline
from resolvers import catalog
from resolvers.context import CatalogContext
from resolvers.global_ids import replay_playlist_path
from resolvers.pagination import Page
from storage import anchors as anchor_rows
from storage import broadcasts as broadcast_rows
from storage import recordings as recording_rows
from storage import streams as stream_rows
from tencent.push import play_urls

CatalogInfo = Info[CatalogContext, None]


@strawberry.enum
class RecordingFormat(Enum):
    FLV = "FLV"
    HLS = "HLS"
    MP4 = "MP4"
    AAC = "AAC"


@strawberry.enum
class RoomKind(Enum):
    LIVE = "LIVE"
    REPLAY = "REPLAY"


# GraphQL's Int is 32-bit. Seconds derived from stored times (a broadcast's length, an
# anchor's total, offsets in a timeline) are shown at most this large, never as an error
# that would fail the whole answer: ingestion bounds each file and time, but a sum or a
# span over many of them is only bounded here.
LARGEST_INT = 2**31 - 1


def _saturated(seconds: int) -> int:
    """Seconds as an Int holds them: beyond its range, the nearest end of it."""
    return max(-LARGEST_INT - 1, min(seconds, LARGEST_INT))


# A primary key as it appears in a global id: ASCII digits, no leading zero, 64-bit.
PRIMARY_KEY = re.compile(r"[1-9][0-9]{0,17}")


def _primary_keys(node_ids: Iterable[str]) -> list[int | None]:
    return [int(n) if PRIMARY_KEY.fullmatch(n) else None for n in node_ids]


async def load_nodes(loader: Any, node_ids: Iterable[str], convert: Any) -> list[Any]:
    keys = _primary_keys(node_ids)
    rows = await loader.load_many([k for k in keys if k is not None])
    found = iter(rows)
    return [convert(next(found)) if k is not None else None for k in keys]


def to_connection(page: Page[Any], convert: Any) -> Any:
    return {
        "edges": [
            relay.Edge(cursor=cursor, node=convert(row))
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        "page_info": relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=False,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    }


@strawberry.type(description="A person who broadcasts; a placeholder until a profile is set.")
class Anchor(relay.Node):
    pk: relay.NodeID[int]
    user_id: str
    nickname: str | None
    avatar_url: str | None

    @classmethod
    def from_row(cls, row: anchor_rows.Anchor | None) -> Self | None:
        if row is None:
            return None
        assert row.id is not None
        return cls(pk=row.id, user_id=row.user_id, nickname=row.nickname, avatar_url=row.avatar_url)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: CatalogInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        return await load_nodes(info.context.loaders.anchor, node_ids, cls.from_row)

    @strawberry.field(description="True while any of the anchor's streams is on air.")
    async def is_live(self, info: CatalogInfo) -> bool:
        streams = await info.context.loaders.streams_of_anchor.load(self.pk)
        return any(stream.is_live for stream in streams)

    @strawberry.field
    async def streams(self, info: CatalogInfo) -> list["Stream"]:
        rows = await info.context.loaders.streams_of_anchor.load(self.pk)
        return [Stream.from_row_required(row) for row in rows]

    @strawberry.field(description="How many replays the anchor has (hidden ones left out).")
    async def replay_count(self, info: CatalogInfo) -> int:
        count, _ = await info.context.loaders.replay_totals_of_anchor.load(self.pk)
        return count

    @strawberry.field(
        description="The total length of the anchor's replays, in seconds "
        "(at most 2147483647, the largest Int: a larger total reads as that)."
    )
    async def replay_duration_seconds(self, info: CatalogInfo) -> int:
        _, seconds = await info.context.loaders.replay_totals_of_anchor.load(self.pk)
        return _saturated(seconds)

    @strawberry.field(description="Ended broadcasts with recordings, newest first.")
    async def replays(
        self, info: CatalogInfo, first: int | None = None, after: str | None = None
    ) -> relay.Connection["Broadcast"]:
        page = await catalog.replays(info.context, self.pk, first, after)
        return relay.Connection(**to_connection(page, Broadcast.from_row_required))


async def _anchor(info: CatalogInfo, anchor_pk: int) -> Anchor:
    anchor = Anchor.from_row(await info.context.loaders.anchor.load(anchor_pk))
    assert anchor is not None  # every stream has an anchor (a placeholder at least)
    return anchor


@strawberry.type(description="Where players watch a live stream (from PLAY_DOMAIN).")
class LivePlayUrls:
    flv: str
    hls: str
    rtmp: str


def _live_play_urls(info: CatalogInfo, stream_id: str) -> LivePlayUrls | None:
    play_domain = info.context.settings.play_domain
    if play_domain is None:
        return None
    urls = play_urls(play_domain, stream_id)
    return LivePlayUrls(flv=urls.flv, hls=urls.hls, rtmp=urls.rtmp)


@strawberry.type(description="A push address (stream id) and what was broadcast on it.")
class Stream(relay.Node):
    pk: relay.NodeID[int]
    stream_id: str
    is_live: bool
    anchor_pk: strawberry.Private[int]
    current_broadcast_pk: strawberry.Private[int | None]

    @classmethod
    def from_row_required(cls, row: stream_rows.Stream) -> Self:
        assert row.id is not None
        return cls(
            pk=row.id,
            stream_id=row.stream_id,
            is_live=row.is_live,
            anchor_pk=row.anchor_id,
            current_broadcast_pk=row.current_broadcast_id,
        )

    @classmethod
    def from_row(cls, row: stream_rows.Stream | None) -> Self | None:
        return None if row is None else cls.from_row_required(row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: CatalogInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        return await load_nodes(info.context.loaders.stream, node_ids, cls.from_row)

    @strawberry.field
    async def anchor(self, info: CatalogInfo) -> Anchor:
        return await _anchor(info, self.anchor_pk)

    @strawberry.field(description="Play URLs while the stream is live and PLAY_DOMAIN is set.")
    def live_play_urls(self, info: CatalogInfo) -> LivePlayUrls | None:
        return _live_play_urls(info, self.stream_id) if self.is_live else None

    @strawberry.field(description="The broadcast on air now, if the stream is live.")
    async def current_broadcast(self, info: CatalogInfo) -> "Broadcast | None":
        if self.current_broadcast_pk is None:
            return None
        row = await info.context.loaders.broadcast.load(self.current_broadcast_pk)
        return Broadcast.from_row(row)

    @strawberry.field(description="Every broadcast of this stream, newest first.")
    async def broadcasts(
        self, info: CatalogInfo, first: int | None = None, after: str | None = None
    ) -> relay.Connection["Broadcast"]:
        page = await catalog.stream_broadcasts(info.context, self.pk, first, after)
        return relay.Connection(**to_connection(page, Broadcast.from_row_required))


async def _stream(info: CatalogInfo, stream_pk: int) -> Stream:
    return Stream.from_row_required(await info.context.loaders.stream.load(stream_pk))


async def _anchor_of_stream(info: CatalogInfo, stream_pk: int) -> Anchor:
    stream = await info.context.loaders.stream.load(stream_pk)
    return await _anchor(info, stream.anchor_id)


@strawberry.type(description="One session on air, with every file recorded during it.")
class Broadcast(relay.Node):
    pk: relay.NodeID[int]
    is_live: bool
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None = strawberry.field(
        description="Seconds from start to end (at most 2147483647, the largest Int)."
    )
    title: str | None
    cover_url: str | None = strawberry.field(
        description="A screenshot from inside the broadcast: the latest while live, else the first."
    )
    featured: bool = strawberry.field(
        description="Featured replays come right after the live rooms."
    )
    hidden: bool = strawberry.field(description="Hidden broadcasts are shown to admins only.")
    deleted_at: datetime | None = strawberry.field(
        description="When an admin deleted it; deleted broadcasts are shown to admins only."
    )
    stream_pk: strawberry.Private[int]
    room_rank: strawberry.Private[int | None]
    recorded_playback_url: strawberry.Private[str | None]
    hls_part_count: strawberry.Private[int]

    @classmethod
    def from_row_required(cls, row: broadcast_rows.Broadcast) -> Self:
        assert row.id is not None
        return cls(
            pk=row.id,
            is_live=row.is_live,
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_seconds=None
            if row.duration_seconds is None
            else _saturated(row.duration_seconds),
            recorded_playback_url=row.playback_url,
            hls_part_count=row.hls_part_count,
            title=row.title,
            cover_url=row.cover_url,
            featured=row.featured,
            hidden=row.hidden,
            deleted_at=row.deleted_at,
            stream_pk=row.stream_pk,
            room_rank=row.room_rank,
        )

    @classmethod
    def from_row(cls, row: broadcast_rows.Broadcast | None) -> Self | None:
        return None if row is None else cls.from_row_required(row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: CatalogInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        return await load_nodes(info.context.loaders.broadcast, node_ids, cls.from_row)

    @strawberry.field(
        description="The URL an app should play for this replay: HLS, else MP4, else FLV. "
        "A replay of several HLS parts plays as one stitched playlist (/replays/{id}.m3u8)."
    )
    def playback_url(self, info: CatalogInfo) -> str | None:
        return _replay_playback_url(self, info)

    @strawberry.field(
        description="The parts of one format in play order, with the breaks between them "
        "(default: the format playbackUrl plays). Players of MP4 or FLV parts play them one "
        "after another."
    )
    async def timeline(
        self, info: CatalogInfo, format: RecordingFormat | None = None
    ) -> list["TimelinePart"]:
        rows = await info.context.loaders.recordings_of_broadcast.load(self.pk)
        entries = timeline(rows, self.started_at, None if format is None else format.value)
        return [
            TimelinePart(
                recording=RecordingFile.from_row_required(entry.recording),
                offset_seconds=_saturated(entry.offset_seconds),
                gap_before_seconds=_saturated(entry.gap_before_seconds),
            )
            for entry in entries
        ]

    @strawberry.field
    async def stream(self, info: CatalogInfo) -> Stream:
        return await _stream(info, self.stream_pk)

    @strawberry.field
    async def anchor(self, info: CatalogInfo) -> Anchor:
        return await _anchor_of_stream(info, self.stream_pk)

    @strawberry.field(description="Every part and format, ordered by start time.")
    async def recordings(self, info: CatalogInfo) -> list["RecordingFile"]:
        rows = await info.context.loaders.recordings_of_broadcast.load(self.pk)
        return [RecordingFile.from_row_required(row) for row in rows]


@strawberry.type(description="One recorded file, as Tencent announced it.")
class RecordingFile(relay.Node):
    pk: relay.NodeID[int]
    file_id: str
    format: RecordingFormat
    video_url: str
    video_id: str | None
    file_size: float | None = strawberry.field(
        description="Bytes; a Float because recordings can exceed 2^31 bytes."
    )
    start_time: datetime | None
    end_time: datetime | None
    duration_seconds: int | None = strawberry.field(
        description="Seconds of recording (at most 2147483647, the largest Int)."
    )
    stream_pk: strawberry.Private[int]
    broadcast_pk: strawberry.Private[int | None]

    @classmethod
    def from_row_required(cls, row: recording_rows.RecordingFile) -> Self:
        assert row.id is not None
        return cls(
            pk=row.id,
            file_id=row.file_id,
            format=RecordingFormat(row.format),
            video_url=row.video_url,
            video_id=row.video_id,
            file_size=None if row.file_size is None else float(row.file_size),
            start_time=row.start_time,
            end_time=row.end_time,
            duration_seconds=None
            if row.duration_seconds is None
            else _saturated(row.duration_seconds),
            stream_pk=row.stream_pk,
            broadcast_pk=row.broadcast_id,
        )

    @classmethod
    def from_row(cls, row: recording_rows.RecordingFile | None) -> Self | None:
        return None if row is None else cls.from_row_required(row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: CatalogInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        return await load_nodes(info.context.loaders.recording, node_ids, cls.from_row)

    @strawberry.field
    async def stream(self, info: CatalogInfo) -> Stream:
        return await _stream(info, self.stream_pk)

    @strawberry.field
    async def broadcast(self, info: CatalogInfo) -> Broadcast | None:
        if self.broadcast_pk is None:
            return None
        return Broadcast.from_row(await info.context.loaders.broadcast.load(self.broadcast_pk))


def _replay_playback_url(broadcast: Broadcast, info: CatalogInfo) -> str | None:
    if broadcast.is_live or broadcast.hls_part_count < 2:
        return broadcast.recorded_playback_url
    return info.context.base_url + replay_playlist_path(broadcast.pk)


@strawberry.type(description="One part of a broadcast's recording, in play order.")
class TimelinePart:
    recording: RecordingFile
    offset_seconds: int = strawberry.field(
        description="Seconds from the start of the broadcast to the start of this part."
    )
    gap_before_seconds: int = strawberry.field(
        description="Seconds with nothing recorded before this part (a break in the push)."
    )

    @strawberry.field
    def start_time(self) -> datetime | None:
        return self.recording.start_time

    @strawberry.field
    def end_time(self) -> datetime | None:
        return self.recording.end_time


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
    async def playback_url(self, info: CatalogInfo) -> str | None:
        if self.kind is RoomKind.REPLAY:
            return _replay_playback_url(self.broadcast, info)
        urls = await _room_play_urls(self, info)
        return urls.hls if urls is not None else None

    @strawberry.field(description="Play URLs of a live room (when PLAY_DOMAIN is set).")
    async def live_play_urls(self, info: CatalogInfo) -> LivePlayUrls | None:
        return await _room_play_urls(self, info)

    @strawberry.field
    async def anchor(self, info: CatalogInfo) -> Anchor:
        return await _anchor_of_stream(info, self.broadcast.stream_pk)

    @strawberry.field
    async def stream(self, info: CatalogInfo) -> Stream:
        return await _stream(info, self.broadcast.stream_pk)


async def _room_play_urls(room: Room, info: CatalogInfo) -> LivePlayUrls | None:
    if room.kind is not RoomKind.LIVE or info.context.settings.play_domain is None:
        return None
    stream = await info.context.loaders.stream.load(room.broadcast.stream_pk)
    return _live_play_urls(info, stream.stream_id)


# Room is not a Node, which relay's type hints ask for; Strawberry itself does not mind.
def rooms_connection(
    page: Page[broadcast_rows.Broadcast],
) -> relay.Connection[Room]:  # type: ignore[type-var]
    return relay.Connection(**to_connection(page, Room.from_row))


def connection_of_recordings(
    page: Page[recording_rows.RecordingFile],
) -> relay.Connection[RecordingFile]:
    return relay.Connection(**to_connection(page, RecordingFile.from_row_required))
