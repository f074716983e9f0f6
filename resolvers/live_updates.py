"""What subscriptions deliver: committed catalog changes, each read afresh.

The change feed (storage/changefeed.py) says which broadcasts of which stream
changed, in any replica; a subscription picks the changes it wants and reads
the objects again with fresh data loaders, through the same visibility rules
as queries. Subscribers of the same document share that reading
(resolvers/shared_subscriptions.py): it happens once per change, not once per
subscriber.
"""

from collections.abc import AsyncIterator, Callable

from resolvers.context import CatalogContext
from resolvers.errors import SubscriptionRefused
from storage.changefeed import CatalogChange, SubscriberTooSlow, TooManySubscribers


async def catalog_changes(
    context: CatalogContext, wanted: Callable[[CatalogChange], bool]
) -> AsyncIterator[CatalogChange]:
    """Every wanted change committed from now on, with the context's loaders refreshed."""
    try:
        async for change in context.database.changes.subscribe(context.listening.set):
            if wanted(change):
                context.refresh_loaders()
                yield change
    except (SubscriberTooSlow, TooManySubscribers) as ended:
        raise SubscriptionRefused(str(ended)) from ended
