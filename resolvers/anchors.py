"""Anchor profiles: the admin's upsert, which also claims streams."""

from dataclasses import dataclass, field
from typing import Any

from resolvers.errors import InvalidInput, refuse_unstorable_text
from storage import Anchor
from storage.anchors import upsert_profile
from storage.database import Database
from storage.streams import claim_streams
from storage.unit_of_work import UnitOfWork

MAX_STREAMS_PER_UPSERT = 100


@dataclass
class AnchorProfile:
    """A validated upsertAnchor input; fields left out of `changes` stay as they are."""

    user_id: str
    changes: dict[str, Any] = field(default_factory=dict)
    stream_ids: list[str] = field(default_factory=list)


def validate_profile(
    user_id: str,
    changes: dict[str, str | None],
    stream_ids: list[str] | None,
) -> AnchorProfile:
    refuse_unstorable_text(user_id, *changes.values(), *(stream_ids or []))
    user_id = user_id.strip()
    if not user_id or len(user_id) > 128:
        raise InvalidInput("userId must be 1 to 128 characters")
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        value = value.strip() if value is not None else None
        cleaned[name] = value or None
    nickname = cleaned.get("nickname")
    if nickname is not None and len(nickname) > 256:
        raise InvalidInput("nickname must be at most 256 characters")
    avatar = cleaned.get("avatar_url")
    if avatar is not None and (
        len(avatar) > 2048 or not avatar.lower().startswith(("http://", "https://"))
    ):
        raise InvalidInput("avatarUrl must be an http(s) URL of at most 2048 characters")
    streams = [s.strip() for s in stream_ids or []]
    if len(streams) > MAX_STREAMS_PER_UPSERT:
        raise InvalidInput(f"at most {MAX_STREAMS_PER_UPSERT} streamIds at a time")
    if any(not s or len(s) > 256 for s in streams):
        raise InvalidInput("each streamId must be 1 to 256 characters")
    return AnchorProfile(user_id, cleaned, sorted(set(streams)))


async def upsert_anchor(database: Database, profile: AnchorProfile) -> Anchor:
    def upsert(work: UnitOfWork) -> Anchor:
        anchor = upsert_profile(work.session, profile.user_id, profile.changes)
        streams, previous_owners = claim_streams(work.session, anchor, profile.stream_ids)
        # Rooms show their anchor's nickname and avatar: the room list changes too.
        work.anchors_changed(anchor)
        work.streams_changed(*streams)
        work.anchors_lost_streams(*previous_owners)
        work.changes.room_list = True
        if streams:
            work.room_order_changed()  # the rooms of an anchor (a filter) are others now
        return anchor

    return await database.write(upsert)
