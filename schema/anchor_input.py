"""AnchorInput: the profile fields upsertAnchor sets; fields left out stay as they are."""

import strawberry


@strawberry.input
class AnchorInput:
    user_id: str
    nickname: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    stream_ids: list[str] | None = strawberry.field(
        default=None, description="Streams to attach to this anchor (created if new)."
    )
