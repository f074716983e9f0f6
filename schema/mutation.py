"""The Mutation root: callback ingestion (as the HTTP route), push URLs, curation, anchors."""

from typing import Any

import strawberry
from strawberry.scalars import JSON

from resolvers.anchors import upsert_anchor, validate_profile
from resolvers.curation import Curation, curate_broadcast
from resolvers.errors import InvalidInput, NotAuthorized, TooManyRequests
from resolvers.ingestion import QuarantineDeferred
from resolvers.push_urls import create_push_url
from schema.anchor import Anchor
from schema.anchor_input import AnchorInput
from schema.broadcast import Broadcast
from schema.connections import CatalogInfo
from schema.inbox_entry import IngestOutcome
from schema.ingest_result import IngestResult
from schema.push_url import PushUrl
from schema.query import resolve_global_id
from schema.recording_file import RecordingFormat
from tencent import CallbackRejected, MalformedBody


async def _broadcast_pk(info: CatalogInfo, node_id: strawberry.ID) -> int:
    node = await resolve_global_id(info, node_id)
    if not isinstance(node, Broadcast):
        raise InvalidInput("id does not name a broadcast")
    return node.pk


async def _curated(info: CatalogInfo, node_id: strawberry.ID, curation: Curation) -> Broadcast:
    info.context.require_admin()
    row = await curate_broadcast(
        info.context.database, await _broadcast_pk(info, node_id), curation
    )
    if row is None:
        raise InvalidInput("id does not name a broadcast")
    broadcast = Broadcast.from_row(row)
    assert broadcast is not None
    return broadcast


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Ingest a Tencent event: the same path and authentication as "
        "POST /callbacks/tencent (the payload carries its own t and sign)."
    )
    async def ingest_tencent_event(self, info: CatalogInfo, payload: JSON) -> IngestResult:
        context = info.context
        if not context.refusals.allows(context.client):
            raise TooManyRequests("too many refused callbacks; slow down")
        if not isinstance(payload, dict):
            context.refusals.spend(context.client)
            raise InvalidInput("payload must be a JSON object")
        try:
            result = await context.ingestor.ingest_callback(payload, context.client)
        except MalformedBody as refusal:
            context.refusals.spend(context.client)
            raise InvalidInput(f"payload refused: {refusal}") from refusal
        except CallbackRejected as refusal:
            context.refusals.spend(context.client)
            raise NotAuthorized(f"callback refused: {refusal}") from refusal
        except QuarantineDeferred as deferred:
            raise TooManyRequests(str(deferred)) from deferred
        return IngestResult(
            accepted=result.accepted,
            duplicate=result.duplicate,
            event_type=result.event_type,
            outcome=IngestOutcome(result.outcome),
            reason=result.reason,
        )

    @strawberry.mutation(
        description="A signed push URL for a stream (admin). `record` and `recordInterval` "
        "default to the configured recording policy when both are left out."
    )
    def create_push_url(
        self,
        info: CatalogInfo,
        stream_id: str,
        record: list[RecordingFormat] | None = None,
        record_interval: int | None = None,
        expires_in_seconds: int | None = None,
    ) -> PushUrl:
        info.context.require_admin()
        created = create_push_url(
            info.context.settings,
            stream_id,
            None if record is None else [f.value for f in record],
            record_interval,
            expires_in_seconds,
        )
        return PushUrl(url=created.url, expires_at=created.expires_at, warnings=created.warnings)

    @strawberry.mutation(
        description="Hide, feature or title a broadcast (admin). Left-out arguments stay as "
        "they are; an empty title clears it."
    )
    async def curate_broadcast(
        self,
        info: CatalogInfo,
        id: strawberry.ID,
        hidden: bool | None = None,
        featured: bool | None = None,
        title: str | None = None,
    ) -> Broadcast:
        return await _curated(info, id, Curation(hidden=hidden, featured=featured, title=title))

    @strawberry.mutation(
        description="Soft-delete a broadcast (admin): it stays in storage, shown to admins only."
    )
    async def delete_broadcast(self, info: CatalogInfo, id: strawberry.ID) -> Broadcast:
        return await _curated(info, id, Curation(deleted=True))

    @strawberry.mutation(description="Undo a soft delete (admin).")
    async def restore_broadcast(self, info: CatalogInfo, id: strawberry.ID) -> Broadcast:
        return await _curated(info, id, Curation(deleted=False))

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
