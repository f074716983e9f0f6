"""InboxEntry: a stored authentic callback with its outcome (IngestOutcome), for admins."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from resolvers.pagination import Page
from schema.connections import CatalogInfo, is_instance, load_nodes, to_connection
from storage import inbox as inbox_rows
from tencent import redact_secrets


@strawberry.enum(description="What became of an authentic callback.")
class IngestOutcome(Enum):
    APPLIED = inbox_rows.OUTCOME_APPLIED
    IGNORED = inbox_rows.OUTCOME_IGNORED
    QUARANTINED = inbox_rows.OUTCOME_QUARANTINED


@strawberry.type(
    description="An authentic callback as the inbox keeps it (admin only), its secrets redacted."
)
class InboxEntry(relay.Node):
    is_type_of: ClassVar[Any] = classmethod(is_instance)
    pk: relay.NodeID[int]
    event_type: int | None
    stream_id: str | None
    received_at: datetime
    outcome: IngestOutcome = strawberry.field(
        description="Applied to the catalog, ignored (a type the catalog does not use), or "
        "quarantined (authentic but not applicable; see reason)."
    )
    reason: str | None = strawberry.field(description="Why the callback is quarantined.")
    payload: JSON = strawberry.field(
        description="The callback as received, with its sign and the push URL's txSecret "
        "and txTime (wherever they stand) replaced by [redacted]."
    )

    @classmethod
    def from_row(cls, row: inbox_rows.InboxEntry | None) -> Self | None:
        if row is None:
            return None
        assert row.id is not None
        return cls(
            pk=row.id,
            event_type=row.event_type,
            stream_id=row.stream_id,
            received_at=row.received_at,
            outcome=IngestOutcome(row.outcome),
            reason=redact_secrets(row.reason),
            payload=redact_secrets(row.payload),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: CatalogInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        if not info.context.is_admin:
            return [None for _ in node_ids]
        return await load_nodes(info.context.loaders.inbox_entry, node_ids, cls.from_row)


def connection_of_inbox_entries(page: Page[inbox_rows.InboxEntry]) -> relay.Connection[InboxEntry]:
    return relay.Connection(**to_connection(page, InboxEntry.from_row))
