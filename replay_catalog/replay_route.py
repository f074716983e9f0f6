"""`GET /replays/{broadcast global id}.m3u8`: a broadcast's HLS parts as one playlist.

The HTTP edge of `replay_catalog.replays`: statuses, ETag and caching headers.
"""

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from replay_catalog.replays import ReplayNotFound, ReplayUnavailable, StitchedReplay
from replay_catalog.services import services_of
from resolvers.global_ids import broadcast_pk_from_global_id
from storage.database import DatabaseUnavailable

log = logging.getLogger("replay_catalog.replays")

HLS_MEDIA_TYPE = "application/vnd.apple.mpegurl"
# An ended broadcast's playlist does not change (a late part gives it a new ETag);
# a live one grows with every part, so it is never stored.
ENDED_CACHE_CONTROL = "public, max-age=86400"
LIVE_CACHE_CONTROL = "no-store"


async def replay_playlist(request: Request) -> Response:
    """The stitched playlist of the broadcast the path names, with its ETag."""
    replays = services_of(request.app).replays
    broadcast_pk = broadcast_pk_from_global_id(request.path_params["broadcast_id"])
    if broadcast_pk is None:
        return PlainTextResponse("no such broadcast", status_code=404)
    try:
        replay = await replays.playlist(broadcast_pk)
    except ReplayNotFound as missing:
        return PlainTextResponse(str(missing), status_code=404)
    except ReplayUnavailable as failure:
        log.warning("stitched replay of broadcast %d failed: %s", broadcast_pk, failure)
        return PlainTextResponse(f"replay unavailable: {failure}", status_code=502)
    except DatabaseUnavailable as failure:
        return PlainTextResponse(str(failure), status_code=503)
    headers = {
        "ETag": replay.etag,
        "Cache-Control": ENDED_CACHE_CONTROL if replay.ended else LIVE_CACHE_CONTROL,
    }
    if _matches(request.headers.get("if-none-match"), replay):
        return Response(status_code=304, headers=headers)
    return Response(replay.text, media_type=HLS_MEDIA_TYPE, headers=headers)


def _matches(if_none_match: str | None, replay: StitchedReplay) -> bool:
    """Whether an If-None-Match header names this playlist (weak comparison, RFC 9110)."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or replay.etag in tags
