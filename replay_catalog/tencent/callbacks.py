"""Tencent Cloud Live's callback wire format: the sign check, and payloads to domain events.

Every callback field name and number Tencent defines is named here and nowhere else
(see shared/tencent-callbacks.md).
"""

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from resolvers.events import (
    DomainEvent,
    PushEnded,
    PushStarted,
    RecordingFileReady,
    ScreenshotTaken,
    UnusedEvent,
)
from storage.times import from_unix

# Event types, from Tencent's event notification documentation.
EVENT_PUSH_CUT_OFF = 0
EVENT_PUSH_STARTED = 1
EVENT_RECORDING_FILE = 100
EVENT_SCREENSHOT = 200

# `file_format` values, and the file extensions that imply them when it is absent.
FORMATS = {"flv": "FLV", "hls": "HLS", "m3u8": "HLS", "mp4": "MP4", "aac": "AAC"}
FORMAT_BY_EXTENSION = {".flv": "FLV", ".m3u8": "HLS", ".mp4": "MP4", ".aac": "AAC", ".m4a": "AAC"}

# Unix times outside this range are not times Tencent could mean.
EARLIEST_TIME = 946_684_800  # 2000-01-01
LATEST_TIME = 4_102_444_800  # 2100-01-01

# Fields that differ between deliveries of the same event, left out of its identity.
DELIVERY_FIELDS = ("t", "sign")

MAX_TEXT = 2048

# What must never be shown of a stored callback: its `sign`, and the push URL's
# authentication (txSecret, and txTime with it), which comes back in `stream_param`
# and may be copied into any other string (a `callback_ext` JSON string, a URL).
SECRET_FIELDS = frozenset({"sign", "txsecret", "txtime"})
REDACTED = "[redacted]"
PUSH_SECRET = re.compile(
    r"(tx(?:secret|time))"  # the parameter's name
    r"([\s\"'\\]*(?:=|:|%(?:25)?3d)[\s\"'\\]*)"  # `=` (maybe URL-encoded) or a JSON `:`
    r"((?:(?!%(?:25)?26)[^&\s\"'\\,;#<>{}\[\]])+)",  # the value, up to the next separator
    re.IGNORECASE,
)


class CallbackRejected(Exception):
    """The callback is not authentic (or no key is configured); answered with 401."""


class MalformedEvent(Exception):
    """An authentic callback the catalog cannot apply: kept in the inbox with this reason."""


def callback_sign(key: str, t: int) -> str:
    """Tencent's `sign`: md5(callback key + t), lowercase hex."""
    return hashlib.md5((key + str(t)).encode()).hexdigest()


def verify_callback_sign(payload: Mapping[str, Any], key: str | None, now: float) -> None:
    """Raise CallbackRejected unless `sign == md5(key + t)` and `t` is not in the past."""
    if key is None:
        raise CallbackRejected("callbacks are refused: CALLBACK_KEY is not configured")
    sign = payload.get("sign")
    if not isinstance(sign, str) or not sign.strip():
        raise CallbackRejected("missing sign")
    try:
        t = _whole_number(payload.get("t"))
    except ValueError:
        t = None
    if t is None:
        raise CallbackRejected("missing or invalid t")
    expected = callback_sign(key, t).encode()
    if not hmac.compare_digest(expected, sign.strip().lower().encode("utf-8", "replace")):
        raise CallbackRejected("wrong sign")
    if t < now:
        raise CallbackRejected("notification expired (t is in the past)")


def event_key(payload: Mapping[str, Any]) -> str:
    """The identity of an event across retries: a hash of everything but `t` and `sign`."""
    body = {name: value for name, value in payload.items() if name not in DELIVERY_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def redact_secrets(value: Any) -> Any:
    """A copy of a stored callback (or any JSON value in it) fit to show an admin: the
    sign and the push secrets, wherever they stand, replaced by `[redacted]`."""
    if isinstance(value, str):
        return PUSH_SECRET.sub(rf"\1\2{REDACTED}", value)
    if isinstance(value, Mapping):
        return {
            redact_secrets(name): REDACTED
            if isinstance(name, str) and name.lower() in SECRET_FIELDS
            else redact_secrets(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


def event_type_of(payload: Mapping[str, Any]) -> int | None:
    try:
        return _whole_number(payload.get("event_type"))
    except ValueError:
        return None


def stream_id_of(payload: Mapping[str, Any]) -> str | None:
    # `channel_id` is the historical name of `stream_id`; either may be missing.
    return _text(payload, "stream_id") or _text(payload, "channel_id")


def parse_callback(payload: Mapping[str, Any]) -> DomainEvent:
    """Turn an authentic payload into a domain event, or raise MalformedEvent."""
    event_type = event_type_of(payload)
    stream_id = stream_id_of(payload)
    if event_type not in (
        EVENT_PUSH_STARTED,
        EVENT_PUSH_CUT_OFF,
        EVENT_RECORDING_FILE,
        EVENT_SCREENSHOT,
    ):
        return UnusedEvent(event_type=event_type, stream_id=stream_id)
    if stream_id is None:
        raise MalformedEvent("stream_id and channel_id are both missing")
    if len(stream_id) > 256:
        raise MalformedEvent("stream_id is longer than 256 characters")
    if event_type == EVENT_PUSH_STARTED:
        return PushStarted(
            stream_id=stream_id,
            at=_required_time(payload, "event_time"),
            sequence=_text(payload, "sequence", limit=128) or "",
        )
    if event_type == EVENT_PUSH_CUT_OFF:
        return PushEnded(
            stream_id=stream_id,
            at=_required_time(payload, "event_time"),
            sequence=_text(payload, "sequence", limit=128) or "",
            push_duration_ms=_lenient_number(payload, "push_duration"),
            errcode=_lenient_number(payload, "errcode"),
            errmsg=_text(payload, "errmsg", limit=512),
        )
    if event_type == EVENT_RECORDING_FILE:
        return _recording_file(payload, stream_id)
    return _screenshot(payload, stream_id)


def _recording_file(payload: Mapping[str, Any], stream_id: str) -> RecordingFileReady:
    file_id = _text(payload, "file_id", limit=128) or _text(payload, "record_file_id", limit=128)
    if file_id is None:
        raise MalformedEvent("file_id is missing")
    video_url = _web_url(payload, "video_url")
    file_format = _format(payload, video_url)
    start, end, duration = _file_times(payload)
    return RecordingFileReady(
        stream_id=stream_id,
        file_id=file_id,
        format=file_format,
        video_url=video_url,
        video_id=_text(payload, "video_id", limit=256),
        file_size=_lenient_number(payload, "file_size", bits=63),
        start_time=from_unix(start),
        end_time=from_unix(end),
        duration_seconds=duration,
        task_id=_text(payload, "task_id", limit=256),
    )


def _file_times(payload: Mapping[str, Any]) -> tuple[int, int, int]:
    """Start, end and duration in Unix seconds, never a negative span.

    Tencent says `start_time` is when writing began and the content really starts
    at `end_time - duration`; the recording guide's own example has a start after
    its end. Trust `end_time`, then `duration`, and clamp what is left.
    """
    start = _optional_time_number(payload, "start_time")
    end = _optional_time_number(payload, "end_time")
    duration = _lenient_number(payload, "duration")
    if duration is not None and duration <= 0:
        duration = None  # absent, garbage, or a zero that would collapse the file
    if end is None and start is None:
        raise MalformedEvent("start_time and end_time are both missing")
    if end is None:
        assert start is not None
        end = start + (duration or 0)
    if duration is not None:
        start = end - duration
    elif start is None or start > end:
        start = end
    return start, end, end - start


def _screenshot(payload: Mapping[str, Any], stream_id: str) -> ScreenshotTaken:
    taken = _optional_time_number(payload, "create_time")
    if taken is None:
        taken = _optional_time_number(payload, "event_time")
    if taken is None:
        raise MalformedEvent("create_time is missing")
    return ScreenshotTaken(
        stream_id=stream_id,
        taken_at=from_unix(taken),
        url=_web_url(payload, "pic_full_url"),
        width=_lenient_number(payload, "width"),
        height=_lenient_number(payload, "height"),
    )


def _format(payload: Mapping[str, Any], video_url: str) -> str:
    named = _text(payload, "file_format")
    if named is not None:
        if named.lower() in FORMATS:
            return FORMATS[named.lower()]
        raise MalformedEvent(f"unknown file_format {named[:32]!r}")
    path = video_url.split("?", 1)[0].lower()
    for extension, file_format in FORMAT_BY_EXTENSION.items():
        if path.endswith(extension):
            return file_format
    raise MalformedEvent("file_format is missing and the video_url does not tell it")


def _web_url(payload: Mapping[str, Any], name: str) -> str:
    url = _text(payload, name, limit=MAX_TEXT)
    if url is None:
        raise MalformedEvent(f"{name} is missing")
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https") or not url[len(scheme) :].startswith("://"):
        raise MalformedEvent(f"{name} is not an http(s) URL")
    return url


def _text(payload: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = payload.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} is not a string")
    value = value.strip()
    if len(value) > limit:
        raise MalformedEvent(f"{name} is longer than {limit} characters")
    return value or None


def _whole_number(value: Any) -> int | None:
    """Tencent sends numbers as JSON numbers or as strings; raise ValueError on garbage."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return int(value)
    if isinstance(value, int):
        return value
    raise ValueError(f"not a number: {type(value).__name__}")


def _lenient_number(payload: Mapping[str, Any], name: str, bits: int = 31) -> int | None:
    """An optional number whose absence, garbage or excess costs nothing but the number.

    Stored numbers are 32-bit columns (64-bit for file sizes): anything wider is dropped.
    """
    try:
        number = _whole_number(payload.get(name))
    except (ValueError, OverflowError):
        return None
    if number is not None and not -(2**bits) <= number < 2**bits:
        return None
    return number


def _optional_time_number(payload: Mapping[str, Any], name: str) -> int | None:
    try:
        moment = _whole_number(payload.get(name))
    except (ValueError, OverflowError) as error:
        raise MalformedEvent(f"{name} is not a Unix time") from error
    if moment is not None and not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise MalformedEvent(f"{name} is out of range")
    return moment


def _required_time(payload: Mapping[str, Any], name: str) -> datetime:
    moment = _optional_time_number(payload, name)
    if moment is None:
        raise MalformedEvent(f"{name} is missing")
    return from_unix(moment)
