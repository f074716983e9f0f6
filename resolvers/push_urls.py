"""Push URLs for anchors' apps, with Tencent's recording rules enforced."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.times import utc_now
from resolvers.context import ResolverSettings
from resolvers.errors import InvalidInput, NotAuthorized
from tencent.push import RECORD_FORMATS, push_url

# From Tencent's recording guide: record_interval cuts FLV and MP4 only (HLS ignores
# it), at most 7200 seconds; current templates accept 300 and up.
MAX_RECORD_INTERVAL = 7200
LOWEST_TEMPLATE_INTERVAL = 300
INTERVAL_FORMATS = ("flv", "mp4")
MP4_WARNING = (
    "MP4 recordings cannot survive a resolution or orientation change in the middle of a "
    "broadcast: record HLS as well if the app may rotate or change resolution"
)
# A stream name goes into a URL path as it is.
STREAM_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
MAX_EXPIRY_SECONDS = 90 * 86_400


@dataclass(frozen=True)
class PushUrl:
    url: str
    expires_at: datetime
    warnings: list[str] = field(default_factory=list)


def create_push_url(
    settings: ResolverSettings,
    stream_id: str,
    record: list[str] | None,
    record_interval: int | None,
    expires_in_seconds: int | None,
) -> PushUrl:
    """A signed push URL; `record`/`record_interval` default to the configured policy."""
    if settings.push_domain is None or settings.push_key is None:
        raise NotAuthorized("push URLs are disabled: PUSH_DOMAIN and PUSH_KEY are not configured")
    if not STREAM_NAME.fullmatch(stream_id):
        raise InvalidInput("streamId must be 1 to 256 letters, digits, '_', '-' or '.'")
    if record is None and record_interval is None:
        record = settings.default_record_formats
        record_interval = settings.default_record_interval_seconds
    formats = list(dict.fromkeys(f.lower() for f in record or []))
    unknown = [f for f in formats if f not in RECORD_FORMATS]
    if unknown:
        raise InvalidInput(f"record accepts FLV, HLS and MP4, not {', '.join(unknown).upper()}")
    warnings: list[str] = []
    if record_interval is not None:
        if not any(f in INTERVAL_FORMATS for f in formats):
            raise InvalidInput("recordInterval applies only to FLV and MP4 recordings")
        if not 0 < record_interval <= MAX_RECORD_INTERVAL:
            raise InvalidInput(f"recordInterval must be 1 to {MAX_RECORD_INTERVAL} seconds")
        if record_interval < LOWEST_TEMPLATE_INTERVAL:
            warnings.append(
                f"Tencent's current recording templates accept recordInterval from "
                f"{LOWEST_TEMPLATE_INTERVAL} seconds; a shorter one may be raised"
            )
    if "mp4" in formats:
        warnings.append(MP4_WARNING)
    expires_in = (
        settings.push_url_expiry_seconds if expires_in_seconds is None else expires_in_seconds
    )
    if not 0 < expires_in <= MAX_EXPIRY_SECONDS:
        raise InvalidInput(f"expiresInSeconds must be 1 to {MAX_EXPIRY_SECONDS}")
    expires_at = (utc_now() + timedelta(seconds=expires_in)).replace(microsecond=0)
    url = push_url(
        settings.push_domain,
        settings.push_key.get_secret_value(),
        stream_id,
        int(expires_at.timestamp()),
        formats,
        record_interval,
    )
    return PushUrl(url, expires_at, warnings)
