"""Push and play addresses of Tencent Cloud Live (see shared/tencent-callbacks.md).

A push URL is `rtmp://PUSH_DOMAIN/live/STREAM?txSecret=…&txTime=…[&record=…]`, where
`txTime` is the lowercase hex of the Unix expiry and
`txSecret = md5(push_key + stream_name + txTime)`. Whoever holds one can push to the
stream until it expires, so it is for the anchor's app only.
"""

import hashlib
from dataclasses import dataclass

# The application path of the push and play addresses (Tencent's `appname`).
APP_NAME = "live"
# Formats the `record` push parameter accepts, joined by `|`.
RECORD_FORMATS = ("flv", "hls", "mp4")


def tx_time(expires_at_unix: int) -> str:
    return format(expires_at_unix, "x")


def tx_secret(push_key: str, stream_name: str, expires_at_unix: int) -> str:
    return hashlib.md5(f"{push_key}{stream_name}{tx_time(expires_at_unix)}".encode()).hexdigest()


def push_url(
    push_domain: str,
    push_key: str,
    stream_name: str,
    expires_at_unix: int,
    record: list[str],
    record_interval: int | None,
) -> str:
    query = [
        f"txSecret={tx_secret(push_key, stream_name, expires_at_unix)}",
        f"txTime={tx_time(expires_at_unix)}",
    ]
    if record:
        query.append("record=" + "|".join(record))
    if record_interval is not None:
        query.append(f"record_interval={record_interval}")
    return f"rtmp://{push_domain}/{APP_NAME}/{stream_name}?{'&'.join(query)}"


@dataclass(frozen=True)
class PlayUrls:
    flv: str
    hls: str
    rtmp: str


def play_urls(play_domain: str, stream_name: str) -> PlayUrls:
    """Where players watch a live stream: HTTP-FLV, HLS and RTMP."""
    return PlayUrls(
        flv=f"https://{play_domain}/{APP_NAME}/{stream_name}.flv",
        hls=f"https://{play_domain}/{APP_NAME}/{stream_name}.m3u8",
        rtmp=f"rtmp://{play_domain}/{APP_NAME}/{stream_name}",
    )
