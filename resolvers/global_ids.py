"""Global (Relay node) ids of broadcasts, and the links GraphQL gives to their replays."""

import re

from strawberry import relay

# The GraphQL type whose global ids name broadcasts ("Broadcast:<pk>", base64).
BROADCAST_TYPE_NAME = "Broadcast"
# Primary keys are 32-bit integers on PostgreSQL; a larger id names nothing.
MAX_PK = 2**31 - 1
_PK = re.compile(r"[0-9]{1,10}")


def broadcast_global_id(broadcast_pk: int) -> str:
    """The broadcast's global (Relay node) id."""
    return str(relay.GlobalID(BROADCAST_TYPE_NAME, str(broadcast_pk)))


def replay_playlist_path(broadcast_pk: int) -> str:
    """The path of a broadcast's stitched HLS playlist, as GraphQL should link it."""
    return f"/replays/{broadcast_global_id(broadcast_pk)}.m3u8"


def broadcast_pk_from_global_id(global_id: str) -> int | None:
    """The primary key a broadcast's global id names, or None for anything else."""
    try:
        parsed = relay.GlobalID.from_id(global_id)
    except Exception:  # strawberry raises several kinds for malformed ids
        return None
    if parsed.type_name != BROADCAST_TYPE_NAME or not _PK.fullmatch(parsed.node_id):
        return None
    pk = int(parsed.node_id)
    return pk if 0 < pk <= MAX_PK else None
