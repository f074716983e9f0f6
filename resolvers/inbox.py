"""The inbox as admins read it: every authentic callback, with its outcome and reason."""

from resolvers.catalog import list_page
from resolvers.context import CatalogContext
from resolvers.errors import refuse_unstorable_text
from resolvers.pagination import Page
from storage import InboxEntry
from storage.cache_tags import EVERYTHING
from storage.inbox import INBOX, InboxFilter, inbox_query


async def inbox_entries(
    context: CatalogContext, inbox_filter: InboxFilter, first: int | None, after: str | None
) -> Page[InboxEntry]:
    """One page of the inbox, newest first. Admins only: it shows raw callbacks."""
    context.require_admin()
    refuse_unstorable_text(inbox_filter.stream_id)
    return await list_page(
        context,
        "inbox",
        INBOX,
        first,
        after,
        lambda position, limit: inbox_query(inbox_filter, position, limit),
        EVERYTHING,  # any callback adds to it (and admins' answers are never cached)
    )
