"""IngestResult: what became of one Tencent event sent through the ingestTencentEvent mutation."""

import strawberry

from schema.inbox_entry import IngestOutcome


@strawberry.type
class IngestResult:
    accepted: bool = strawberry.field(description="Stored now or earlier.")
    duplicate: bool = strawberry.field(description="This exact event had been stored before.")
    event_type: int | None
    outcome: IngestOutcome = strawberry.field(
        description="Applied to the catalog, ignored (a type the catalog does not use), or "
        "quarantined (authentic but not applicable; kept in the inbox with the reason)."
    )
    reason: str | None = strawberry.field(description="Why the event was quarantined.")
