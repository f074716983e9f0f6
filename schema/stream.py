"""Stream: a push address (stream id), its anchor, and what was broadcast on it.

Broadcast refers back to Stream, so this module imports it lazily: through
strawberry.lazy in annotations and inside the resolvers that build one.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

import strawberry
from strawberry import relay

from resolvers import catalog
from schema.anchor import Anchor, anchor_at
from schema.connections import (
    CatalogInfo,
    at_once_or_awaited,
    is_instance,
    load_ahead,
    load_nodes,
    to_connection,
)
from schema.live_play_urls import LivePlayUrls, stream_play_urls
from storage import streams as stream_rows

if TYPE_CHECKING:
    from schema.broadcast import Broadcast


@strawberry.type(description="A push address (stream id) and what was broadcast on it.")
class Stream(relay.Node):
    is_type_of: ClassVar[Any] = classmethod(is_instance)
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
    def anchor(self, info: CatalogInfo) -> Anchor:
        return anchor_at(info, self.anchor_pk)

    @strawberry.field(description="Play URLs while the stream is live and PLAY_DOMAIN is set.")
    def live_play_urls(self, info: CatalogInfo) -> LivePlayUrls | None:
        return stream_play_urls(info, self.stream_id) if self.is_live else None

    @strawberry.field(description="The broadcast on air now, if the stream is live.")
    async def current_broadcast(
        self, info: CatalogInfo
    ) -> Annotated["Broadcast", strawberry.lazy("schema.broadcast")] | None:
        from schema.broadcast import Broadcast

        if self.current_broadcast_pk is None:
            return None
        row = await info.context.loaders.broadcast.load(self.current_broadcast_pk)
        return Broadcast.from_row(row)

    @strawberry.field(description="Every broadcast of this stream, newest first.")
    async def broadcasts(
        self, info: CatalogInfo, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Annotated["Broadcast", strawberry.lazy("schema.broadcast")]]:
        from schema.broadcast import Broadcast

        page = await catalog.stream_broadcasts(info.context, self.pk, first, after)
        await load_ahead(info, page.rows)
        return relay.Connection(**to_connection(page, Broadcast.from_row_required))


async def stream_by_pk(info: CatalogInfo, stream_pk: int) -> Stream:
    """A stream that a broadcast, a recording or a room points to (so it exists)."""
    return Stream.from_row_required(await info.context.loaders.stream.load(stream_pk))


def stream_of(info: CatalogInfo, stream_pk: int) -> Stream:
    """stream_by_pk, at once if a page loaded it ahead (else it is awaited)."""
    return at_once_or_awaited(info.context.loaders.stream, stream_pk, Stream.from_row_required)
