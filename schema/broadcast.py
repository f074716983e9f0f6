"""Broadcast: one session on air, with every file recorded during it and its timeline."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay

from domain.timeline import timeline
from resolvers.global_ids import replay_playlist_path
from schema.anchor import Anchor, anchor_of
from schema.connections import CatalogInfo, at_once_or_awaited, is_instance, load_nodes
from schema.recording_file import RecordingFile, RecordingFormat
from schema.seconds import saturated
from schema.stream import Stream, stream_of
from schema.timeline_part import TimelinePart
from storage import broadcasts as broadcast_rows


@strawberry.type(description="One session on air, with every file recorded during it.")
class Broadcast(relay.Node):
    is_type_of: ClassVar[Any] = classmethod(is_instance)
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
            else saturated(row.duration_seconds),
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
        return replay_playback_url(self, info)

    @strawberry.field(
        description="The parts of one format in play order, with the breaks between them "
        "(default: the format playbackUrl plays). Players of MP4 or FLV parts play them one "
        "after another."
    )
    async def timeline(
        self, info: CatalogInfo, format: RecordingFormat | None = None
    ) -> list[TimelinePart]:
        rows = await info.context.loaders.recordings_of_broadcast.load(self.pk)
        entries = timeline(rows, self.started_at, None if format is None else format.value)
        return [
            TimelinePart(
                recording=RecordingFile.from_row_required(entry.recording),
                offset_seconds=saturated(entry.offset_seconds),
                gap_before_seconds=saturated(entry.gap_before_seconds),
            )
            for entry in entries
        ]

    @strawberry.field
    def stream(self, info: CatalogInfo) -> Stream:
        return stream_of(info, self.stream_pk)

    @strawberry.field
    def anchor(self, info: CatalogInfo) -> Anchor:
        return anchor_of(info, self.stream_pk)

    @strawberry.field(description="Every part and format, ordered by start time.")
    def recordings(self, info: CatalogInfo) -> list[RecordingFile]:
        return at_once_or_awaited(
            info.context.loaders.recordings_of_broadcast, self.pk, _recording_files
        )


def replay_playback_url(broadcast: Broadcast, info: CatalogInfo) -> str | None:
    """What a replay plays: its recorded URL, or the stitched playlist of its HLS parts."""
    if broadcast.is_live or broadcast.hls_part_count < 2:
        return broadcast.recorded_playback_url
    return info.context.base_url + replay_playlist_path(broadcast.pk)


def _recording_files(rows: Iterable[Any]) -> list[RecordingFile]:
    return [RecordingFile.from_row_required(row) for row in rows]
