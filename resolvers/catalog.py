"""The catalog's list queries: room list, replays, broadcasts and recording files."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from resolvers.context import CatalogContext
from resolvers.errors import refuse_unstorable_text
from resolvers.pagination import Page, decode_cursor, make_page, page_size
from resolvers.shown import show, show_rows
from storage import Broadcast, RecordingFile
from storage.broadcasts import (
    BROADCASTS,
    REPLAYS,
    ROOMS,
    RoomFilter,
    replays_query,
    rooms_query,
    stream_broadcasts_query,
)
from storage.cache_tags import EVERYTHING, ROOM_ORDER, anchor_tag, stream_tag
from storage.database import Lookup
from storage.keyset import Listing
from storage.recordings import RECORDINGS, RecordingFilter, recordings_query


async def list_page(
    context: CatalogContext,
    name: str,
    listing: Listing,
    first: int | None,
    after: str | None,
    query: Callable[[list[Any] | None, int], Lookup],
    depends_on: str,
) -> Page[Any]:
    """One page of `query`'s rows after the cursor `after`, which must belong to `name`;
    which rows it holds changes with `depends_on` (a cache tag)."""
    limit = page_size(first)
    position = decode_cursor(name, listing, after)
    rows = await context.database.lookup(query(position, limit))
    show(depends_on)
    show_rows(listing.model.__tablename__, rows)  # type: ignore[arg-type]
    if listing.model is Broadcast:
        for row in rows:
            context.loaders.broadcast.prime(row.id, row)
    return make_page(name, listing, rows, limit)


async def rooms(
    context: CatalogContext, room_filter: RoomFilter, first: int | None, after: str | None
) -> Page[Broadcast]:
    refuse_unstorable_text(room_filter.anchor_user_id)
    room_filter = replace(room_filter, include_hidden=context.is_admin)
    return await list_page(
        context,
        "rooms",
        ROOMS,
        first,
        after,
        lambda position, limit: rooms_query(room_filter, position, limit),
        ROOM_ORDER,
    )


async def replays(
    context: CatalogContext, anchor_pk: int, first: int | None, after: str | None
) -> Page[Broadcast]:
    return await list_page(
        context,
        f"replays:{anchor_pk}",
        REPLAYS,
        first,
        after,
        lambda position, limit: replays_query(anchor_pk, context.is_admin, position, limit),
        anchor_tag(anchor_pk),
    )


async def stream_broadcasts(
    context: CatalogContext, stream_pk: int, first: int | None, after: str | None
) -> Page[Broadcast]:
    return await list_page(
        context,
        f"broadcasts:{stream_pk}",
        BROADCASTS,
        first,
        after,
        lambda position, limit: stream_broadcasts_query(
            stream_pk, context.is_admin, position, limit
        ),
        stream_tag(stream_pk),
    )


async def recording_files(
    context: CatalogContext,
    stream_id: str | None,
    recording_filter: RecordingFilter,
    first: int | None,
    after: str | None,
) -> Page[RecordingFile]:
    refuse_unstorable_text(stream_id)
    name = f"recordings:{stream_id or ''}"
    if stream_id is not None:
        stream = await context.loaders.stream_by_stream_id.load(stream_id)
        if stream is None:
            page_size(first)
            decode_cursor(name, RECORDINGS, after)
            return Page([], [], has_next_page=False)
        recording_filter = replace(recording_filter, stream_pk=stream.id)
    recording_filter = replace(recording_filter, include_hidden=context.is_admin)
    return await list_page(
        context,
        name,
        RECORDINGS,
        first,
        after,
        lambda position, limit: recordings_query(recording_filter, position, limit),
        # Every stream's files, or one stream's.
        EVERYTHING
        if recording_filter.stream_pk is None
        else stream_tag(recording_filter.stream_pk),
    )
