"""Anchor: a person who broadcasts, with their streams, replays and replay totals.

Stream and Broadcast refer back to Anchor, so this module imports them lazily: through
strawberry.lazy in annotations and inside the resolvers that build them.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, cast

import strawberry
from strawberry import relay

from resolvers import catalog
from schema.connections import (
    NOT_LOADED,
    CatalogInfo,
    at_once_or_awaited,
    is_instance,
    load_ahead,
    load_nodes,
    loaded,
    to_connection,
)
from schema.seconds import saturated
from storage import anchors as anchor_rows

if TYPE_CHECKING:
    from schema.broadcast import Broadcast
    from schema.stream import Stream


@strawberry.type(description="A person who broadcasts; a placeholder until a profile is set.")
class Anchor(relay.Node):
    is_type_of: ClassVar[Any] = classmethod(is_instance)
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
    async def streams(
        self, info: CatalogInfo
    ) -> list[Annotated["Stream", strawberry.lazy("schema.stream")]]:
        from schema.stream import Stream

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
        return saturated(seconds)

    @strawberry.field(description="Ended broadcasts with recordings, newest first.")
    async def replays(
        self, info: CatalogInfo, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Annotated["Broadcast", strawberry.lazy("schema.broadcast")]]:
        from schema.broadcast import Broadcast

        page = await catalog.replays(info.context, self.pk, first, after)
        await load_ahead(info, page.rows)
        return relay.Connection(**to_connection(page, Broadcast.from_row_required))


async def anchor_by_pk(info: CatalogInfo, anchor_pk: int) -> Anchor:
    """An anchor a stream points to."""
    return _required(await info.context.loaders.anchor.load(anchor_pk))


def _required(row: anchor_rows.Anchor | None) -> Anchor:
    anchor = Anchor.from_row(row)
    assert anchor is not None  # every stream has an anchor (a placeholder at least)
    return anchor


async def anchor_of_stream(info: CatalogInfo, stream_pk: int) -> Anchor:
    """The anchor a stream belongs to."""
    stream = await info.context.loaders.stream.load(stream_pk)
    return await anchor_by_pk(info, stream.anchor_id)


def anchor_of(info: CatalogInfo, stream_pk: int) -> Anchor:
    """anchor_of_stream, at once if a page loaded both ahead (else what the resolver
    returns is awaited, which graphql-core does for any resolver)."""
    stream = loaded(info.context.loaders.stream, stream_pk)
    if stream is NOT_LOADED:
        return cast(Anchor, anchor_of_stream(info, stream_pk))
    return anchor_at(info, stream.anchor_id)


def anchor_at(info: CatalogInfo, anchor_pk: int) -> Anchor:
    """anchor_by_pk, at once if a page loaded it ahead (else it is awaited)."""
    return at_once_or_awaited(info.context.loaders.anchor, anchor_pk, _required)
