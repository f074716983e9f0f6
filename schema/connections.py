"""What the catalog's GraphQL types share: their resolvers' Info, nodes by global id, pages.

Nodes load through the request's data loaders, so a page costs one statement per kind
of thing it shows, whatever its length.
"""

import re
from collections.abc import Iterable
from typing import Any

from strawberry import relay
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
