"""The Mutation root: callback ingestion (same path as the HTTP route) and anchor profiles."""

from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from replay_catalog.tencent import CallbackRejected
from resolvers.anchors import upsert_anchor, validate_profile
from resolvers.errors import InvalidInput, NotAuthorized
from schema.catalog import Anchor, CatalogInfo


@strawberry.enum
class IngestOutcome(Enum):
    APPLIED = "applied"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


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


@strawberry.input
class AnchorInput:
    user_id: str
    nickname: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    stream_ids: list[str] | None = strawberry.field(
        default=None, description="Streams to attach to this anchor (created if new)."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Ingest a Tencent event: the same path and authentication as "
        "POST /callbacks/tencent (the payload carries its own t and sign)."
    )
    async def ingest_tencent_event(self, info: CatalogInfo, payload: JSON) -> IngestResult:
        context = info.context
        if not context.refusals.allows(context.client):
            raise NotAuthorized("too many refused callbacks; slow down")
        if not isinstance(payload, dict):
            context.refusals.refused(context.client)
            raise InvalidInput("payload must be a JSON object")
        try:
            result = await context.ingestor.ingest_callback(payload)
        except CallbackRejected as refusal:
            context.refusals.refused(context.client)
            raise NotAuthorized(f"callback refused: {refusal}") from refusal
        return IngestResult(
            accepted=result.accepted,
            duplicate=result.duplicate,
            event_type=result.event_type,
            outcome=IngestOutcome(result.outcome),
            reason=result.reason,
        )

    @strawberry.mutation(description="Create or update an anchor profile (admin).")
    async def upsert_anchor(self, info: CatalogInfo, input: AnchorInput) -> Anchor:
        info.context.require_admin()
        changes: dict[str, Any] = {}
        if input.nickname is not strawberry.UNSET:
            changes["nickname"] = input.nickname
        if input.avatar_url is not strawberry.UNSET:
            changes["avatar_url"] = input.avatar_url
        profile = validate_profile(input.user_id, changes, input.stream_ids)
        anchor = Anchor.from_row(await upsert_anchor(info.context.database, profile))
        assert anchor is not None
        return anchor
