"""RecordingFile: one recorded file as Tencent announced it, and its RecordingFormat.

Broadcast refers back to RecordingFile, so this module imports it lazily: through
strawberry.lazy in annotations and inside the resolver that builds one.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

import strawberry
from strawberry import relay

from domain import formats
from resolvers.pagination import Page
from schema.connections import CatalogInfo, is_instance, load_nodes, to_connection
from schema.seconds import saturated
from schema.stream import Stream, stream_by_pk
from storage import recordings as recording_rows

if TYPE_CHECKING:
    from schema.broadcast import Broadcast


@strawberry.enum
class RecordingFormat(Enum):
    FLV = formats.FLV
    HLS = formats.HLS
    MP4 = formats.MP4
    AAC = formats.AAC


@strawberry.type(description="One recorded file, as Tencent announced it.")
class RecordingFile(relay.Node):
    is_type_of: ClassVar[Any] = classmethod(is_instance)
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
            else saturated(row.duration_seconds),
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
        return await stream_by_pk(info, self.stream_pk)

    @strawberry.field
    async def broadcast(
        self, info: CatalogInfo
    ) -> Annotated["Broadcast", strawberry.lazy("schema.broadcast")] | None:
        from schema.broadcast import Broadcast

        if self.broadcast_pk is None:
            return None
        return Broadcast.from_row(await info.context.loaders.broadcast.load(self.broadcast_pk))


def connection_of_recordings(
    page: Page[recording_rows.RecordingFile],
) -> relay.Connection[RecordingFile]:
    return relay.Connection(**to_connection(page, RecordingFile.from_row_required))
