"""LivePlayUrls: where players watch a live stream, built from PLAY_DOMAIN."""

import strawberry

from schema.connections import CatalogInfo
from tencent.push import play_urls


@strawberry.type(description="Where players watch a live stream (from PLAY_DOMAIN).")
class LivePlayUrls:
    flv: str
    hls: str
    rtmp: str


def stream_play_urls(info: CatalogInfo, stream_id: str) -> LivePlayUrls | None:
    """The play URLs of a stream, or None when PLAY_DOMAIN is not set."""
    play_domain = info.context.settings.play_domain
    if play_domain is None:
        return None
    urls = play_urls(play_domain, stream_id)
    return LivePlayUrls(flv=urls.flv, hls=urls.hls, rtmp=urls.rtmp)
