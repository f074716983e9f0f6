"""What the catalog's GraphQL types share: their resolvers' Info, nodes by global id, pages.

Nodes load through the request's data loaders, so a page costs one statement per kind
of thing it shows, whatever its length.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from resolvers.context import CatalogContext
from resolvers.pagination import Page

CatalogInfo = Info[CatalogContext, None]

# A primary key as it appears in a global id: ASCII digits, no leading zero, 64-bit.
PRIMARY_KEY = re.compile(r"[1-9][0-9]{0,17}")


def _primary_keys(node_ids: Iterable[str]) -> list[int | None]:
    return [int(n) if PRIMARY_KEY.fullmatch(n) else None for n in node_ids]


async def load_nodes(loader: Any, node_ids: Iterable[str], convert: Any) -> list[Any]:
    keys = _primary_keys(node_ids)
    rows = await loader.load_many([k for k in keys if k is not None])
    found = iter(rows)
    return [convert(next(found)) if k is not None else None for k in keys]


T = TypeVar("T")

# What `loaded` gives for a key the request's loader does not hold (yet).
NOT_LOADED: Any = object()


def loaded(loader: DataLoader[Any, Any], key: Any) -> Any:
    """What the request's loader already holds for `key`, or NOT_LOADED.

    A field whose value a page has loaded ahead (`load_ahead`) is then resolved
    synchronously: an awaited resolver per item costs graphql-core a coroutine and often
    a task, which for a page of rooms was most of its time.
    """
    future = loader.cache_map.get(key)
    if future is None or not future.done() or future.cancelled() or future.exception():
        return NOT_LOADED
    return future.result()


def at_once_or_awaited(loader: DataLoader[Any, Any], key: Any, convert: Callable[[Any], T]) -> T:
    """`convert` of what the loader holds for `key`, at once if a page loaded it ahead
    (`loaded`); else a coroutine of it, which the resolver returns as its value and
    graphql-core awaits, as it does for any resolver."""
    row = loaded(loader, key)
    if row is NOT_LOADED:
        return cast(T, _converted(loader.load(key), convert))
    return convert(row)


async def _converted(row: Awaitable[Any], convert: Callable[[Any], T]) -> T:
    return convert(await row)


def selected_names(info: Info[Any, Any]) -> set[str]:
    """The names of every field the field being resolved selects below it (through
    fragments too), so that a page may load what its items show ahead, for all at once."""
    names: set[str] = set()
    pending: list[Any] = list(info.selected_fields)
    while pending:
        selection = pending.pop()
        names.add(getattr(selection, "name", ""))
        pending.extend(getattr(selection, "selections", ()))
    return names


async def load_ahead(info: Info[CatalogContext, None], broadcasts: Iterable[Any]) -> None:
    """What a page of broadcasts (or rooms) shows of their streams, anchors and
    recordings, loaded for all of them at once (streams and anchors in one statement,
    recordings in another, read side by side), so that each item resolves those fields
    synchronously (`loaded`). Only what the query selects below the page's field."""
    loaders = info.context.loaders
    rows = list(broadcasts)
    selected = selected_names(info)
    streams = not selected.isdisjoint(("stream", "anchor", "playbackUrl"))
    stream_pks = [b.stream_pk for b in rows] if streams else []
    await asyncio.gather(
        # With their anchors, if the page shows them: one statement for both.
        loaders.streams_with_anchors(stream_pks)
        if "anchor" in selected
        else loaders.stream.load_many(stream_pks),
        loaders.recordings_of_broadcast.load_many(
            [b.id for b in rows] if "recordings" in selected else []
        ),
    )


def is_instance(cls: type[T], value: object, _info: object) -> bool:
    """Whether `value` is of the node type `cls`: each node type's `is_type_of`.

    graphql-core asks this of every object it completes whose type implements an
    interface (every node type, so every file, stream, anchor and broadcast of a page).
    Strawberry's own answer also looks for casts and generic types, which the node
    types never are, at several times the cost of this isinstance.
    """
    return isinstance(value, cls)


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
