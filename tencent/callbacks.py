"""Tencent Cloud Live's callback wire format: the sign check, and payloads to domain events.

Every callback field name and number Tencent defines is named here and nowhere else
(see shared/tencent-callbacks.md).
"""

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.bounded_json import JSONTooDeep, load_bounded_json, nests_deeper_than
from domain.events import (
    DomainEvent,
    PushEnded,
    PushStarted,
    RecordingFileReady,
    ScreenshotTaken,
    UnusedEvent,
)
from domain.times import from_unix

# Event types, from Tencent's event notification documentation.
EVENT_PUSH_CUT_OFF = 0
EVENT_PUSH_STARTED = 1
EVENT_RECORDING_FILE = 100
EVENT_SCREENSHOT = 200

# `file_format` values, and the file extensions that imply them when it is absent.
FORMATS = {"flv": "FLV", "hls": "HLS", "m3u8": "HLS", "mp4": "MP4", "aac": "AAC"}
FORMAT_BY_EXTENSION = {".flv": "FLV", ".m3u8": "HLS", ".mp4": "MP4", ".aac": "AAC", ".m4a": "AAC"}

# The declared range of every value a callback carries. A signed callback outside them
# is kept in the inbox, quarantined with the reason; nothing outside them reaches the
# catalog, so no stored value can make an answer fail.
#
# Times: Tencent Cloud Live's recording is younger than 2010, and a notification tells
# of something that has already happened (its `t` is about ten minutes ahead). A day of
# leeway covers any clock skew; a later time could only pin a room at the top of the list.
EARLIEST_TIME = 1_262_304_000  # 2010-01-01 UTC
MAX_SECONDS_AHEAD = 86_400
# One recording file lasts at most the template's longest part (record_interval: at
# most 7200 s; newer templates: at most 720 minutes). A day is far above both, and keeps
# a file's start (end_time - duration) inside the window above, give or take that day.
MAX_FILE_SECONDS = 86_400
# Event types are small numbers; the inbox keeps them in a 32-bit column.
MAX_EVENT_TYPE = 2**31 - 1
# Sizes are bytes, shown as a Float, which holds whole numbers exactly up to 2^53.
MAX_FILE_SIZE = 2**53
# Other optional numbers (pixels, milliseconds, error codes) fit 32-bit columns.
MAX_INT32 = 2**31 - 1
MAX_STREAM_ID = 256
# Tencent's bodies are flat objects (callback_ext is a JSON *string*); a few levels more
# leave room for new fields. Python's json and every walk of a payload recurse.
MAX_NESTING = 32
TOO_DEEP = f"the callback nests deeper than {MAX_NESTING} levels"
# Text that is not valid Unicode (a lone surrogate, which a JSON \u escape can spell)
# or holds NUL cannot be stored; ingestion replaces these before the payload is read.
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")

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


class MalformedBody(Exception):
    """A body of Tencent's that is not a JSON object, or nests too deep: a callback so
    shaped is answered 400 (before its sign can be read), a file-list answer fails."""


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


def read_json_object(body: bytes) -> dict[str, Any]:
    """The JSON object a body holds (a callback, a file-list answer); MalformedBody when
    it holds none or nests deeper than MAX_NESTING.

    Python's json rather than orjson (which bounds nesting itself): orjson refuses
    integers past 64 bits, NaN and lone surrogates in \\u escapes, and a *signed* callback
    holding them must be kept and quarantined, not refused, or Tencent retries it until
    it is lost.
    """
    try:
        payload = load_bounded_json(
            body.decode(json.detect_encoding(body)), MAX_NESTING, parse_int=_json_integer
        )
    except JSONTooDeep:
        raise MalformedBody(TOO_DEEP) from None
    except ValueError as error:
        raise MalformedBody("body must be a JSON object") from error
    if not isinstance(payload, dict):
        raise MalformedBody("body must be a JSON object")
    return payload


def check_nesting(payload: Any) -> None:
    """Raise MalformedBody if a parsed payload nests deeper than MAX_NESTING (for
    payloads that arrive parsed, as the mutation's do)."""
    if nests_deeper_than(payload, MAX_NESTING):
        raise MalformedBody(TOO_DEEP)


def _json_integer(digits: str) -> int | float:
    """An integer as json reads it, except that one too long for int() (over 4,300
    digits) becomes an infinity rather than failing the body: ingestion stores it as
    null and quarantines the event, which is kept like any other signed callback."""
    try:
        return int(digits)
    except ValueError:
        return float(digits)


def event_key(payload: Mapping[str, Any]) -> str:
    """The identity of an event across retries: a hash of everything but `t` and `sign`.

    Computed on what was sent: lone surrogates are hashed as they are (surrogatepass),
    so two events that differ only there keep two keys.
    """
    body = {name: value for name, value in payload.items() if name not in DELIVERY_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


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
    """The event type, or None when it is missing or out of range (parse_callback says
    why): safe for logs, metrics and the inbox's 32-bit column, on any payload."""
    try:
        return _event_type(payload)
    except MalformedEvent:
        return None


def stream_id_of(payload: Mapping[str, Any]) -> str | None:
    """The stream an event names, or None when neither name holds text: safe for logs and
    the inbox's filter on any payload (parse_callback says what is wrong)."""
    # `channel_id` is the historical name of `stream_id`; either may be missing.
    for name in ("stream_id", "channel_id"):
        try:
            stream_id = _text(payload, name)
        except MalformedEvent:
            stream_id = None
        if stream_id is not None:
            return stream_id
    return None


def parse_callback(payload: Mapping[str, Any], now: float | None = None) -> DomainEvent:
    """Turn an authentic payload into a domain event, or raise MalformedEvent.

    `now` (Unix seconds; default: the clock) is when the callback was received: no time
    it carries may lie more than MAX_SECONDS_AHEAD after it.
    """
    latest = (time.time() if now is None else now) + MAX_SECONDS_AHEAD
    event_type = _event_type(payload)
    if event_type not in (
        EVENT_PUSH_STARTED,
        EVENT_PUSH_CUT_OFF,
        EVENT_RECORDING_FILE,
        EVENT_SCREENSHOT,
    ):
        return UnusedEvent(stream_id=stream_id_of(payload))
    stream_id = _text(payload, "stream_id") or _text(payload, "channel_id")
    if stream_id is None:
        raise MalformedEvent("stream_id and channel_id are both missing")
    if len(stream_id) > MAX_STREAM_ID:
        raise MalformedEvent(f"stream_id is longer than {MAX_STREAM_ID} characters")
    if event_type == EVENT_PUSH_STARTED:
        return PushStarted(
            stream_id=stream_id,
            at=_required_time(payload, "event_time", latest),
            sequence=_text(payload, "sequence", limit=128) or "",
        )
    if event_type == EVENT_PUSH_CUT_OFF:
        return PushEnded(
            stream_id=stream_id,
            at=_required_time(payload, "event_time", latest),
            sequence=_text(payload, "sequence", limit=128) or "",
            push_duration_ms=_lenient_number(payload, "push_duration", 0, MAX_INT32),
            errcode=_lenient_number(payload, "errcode", -MAX_INT32, MAX_INT32),
            errmsg=_text(payload, "errmsg", limit=512),
        )
    if event_type == EVENT_RECORDING_FILE:
        return _recording_file(payload, stream_id, latest)
    return _screenshot(payload, stream_id, latest)


def _event_type(payload: Mapping[str, Any]) -> int | None:
    try:
        event_type = _whole_number(payload.get("event_type"))
    except ValueError as error:
        raise MalformedEvent("event_type is not a number") from error
    if event_type is not None and not 0 <= event_type <= MAX_EVENT_TYPE:
        raise MalformedEvent("event_type is out of range")
    return event_type


def _recording_file(
    payload: Mapping[str, Any], stream_id: str, latest: float
) -> RecordingFileReady:
    file_id = _text(payload, "file_id", limit=128) or _text(payload, "record_file_id", limit=128)
    if file_id is None:
        raise MalformedEvent("file_id is missing")
    video_url = _web_url(payload, "video_url")
    file_format = _format(payload, video_url)
    start, end, duration = _file_times(payload, latest)
    return RecordingFileReady(
        stream_id=stream_id,
        file_id=file_id,
        format=file_format,
        video_url=video_url,
        video_id=_text(payload, "video_id", limit=256),
        file_size=_lenient_number(payload, "file_size", 0, MAX_FILE_SIZE),
        start_time=from_unix(start),
        end_time=from_unix(end),
        duration_seconds=duration,
        task_id=_text(payload, "task_id", limit=256),
    )


def _file_times(payload: Mapping[str, Any], latest: float) -> tuple[int, int, int]:
    """Start, end and duration in Unix seconds, never a negative span nor one over
    MAX_FILE_SECONDS.

    Tencent says `start_time` is when writing began and the content really starts
    at `end_time - duration`; the recording guide's own example has a start after
    its end. Trust `end_time`, then `duration`, and clamp what is left.
    """
    start = _optional_time_number(payload, "start_time", latest)
    end = _optional_time_number(payload, "end_time", latest)
    duration = _duration(payload)
    if end is None and start is None:
        raise MalformedEvent("start_time and end_time are both missing")
    if end is None:
        assert start is not None
        end = start + (duration or 0)
        _check_time("end_time", end, latest)
    if duration is not None:
        start = end - duration
        _check_time("start_time", start, latest)
    elif start is None or start > end:
        start = end
    if end - start > MAX_FILE_SECONDS:
        raise MalformedEvent(
            f"the file lasts longer than {MAX_FILE_SECONDS} seconds (start_time to end_time)"
        )
    return start, end, end - start


def _duration(payload: Mapping[str, Any]) -> int | None:
    """A file's `duration`: optional, so absent or garbage is no duration; but a number
    out of range is a claim about where the file lies that cannot be true."""
    try:
        duration = _whole_number(payload.get("duration"))
    except ValueError:
        return None
    if duration is not None and duration > MAX_FILE_SECONDS:
        raise MalformedEvent(f"duration is out of range (over {MAX_FILE_SECONDS} seconds)")
    if duration is not None and duration <= 0:
        return None  # a zero or less would collapse the file
    return duration


def _screenshot(payload: Mapping[str, Any], stream_id: str, latest: float) -> ScreenshotTaken:
    taken = _optional_time_number(payload, "create_time", latest)
    if taken is None:
        taken = _optional_time_number(payload, "event_time", latest)
    if taken is None:
        raise MalformedEvent("create_time is missing")
    return ScreenshotTaken(
        stream_id=stream_id,
        taken_at=from_unix(taken),
        url=_web_url(payload, "pic_full_url"),
        width=_lenient_number(payload, "width", 0, MAX_INT32),
        height=_lenient_number(payload, "height", 0, MAX_INT32),
    )


def _format(payload: Mapping[str, Any], video_url: str) -> str:
    return recording_format(_text(payload, "file_format"), video_url)


def recording_format(named: str | None, video_url: str) -> str:
    """The catalog's format (domain/formats.py) of a file Tencent names `named` (any
    case; None: not named), else the one its URL's extension tells."""
    if named is not None:
        if named.lower() in FORMATS:
            return FORMATS[named.lower()]
        raise MalformedEvent(f"unknown file_format {named[:32]!r}")
    path = video_url.split("?", 1)[0].lower()
    for extension, file_format in FORMAT_BY_EXTENSION.items():
        if path.endswith(extension):
            return file_format
    raise MalformedEvent("file_format is missing and the video_url does not tell it")


def file_span(start: int, end: int, now: float) -> tuple[int, int]:
    """A file's start and end (Unix seconds) as the catalog keeps them: both within
    the range of a callback's times, a start after the end clamped to it, and a span
    of at most MAX_FILE_SECONDS; else MalformedEvent."""
    latest = now + MAX_SECONDS_AHEAD
    _check_time("start_time", start, latest)
    _check_time("end_time", end, latest)
    start = min(start, end)
    if end - start > MAX_FILE_SECONDS:
        raise MalformedEvent(
            f"the file lasts longer than {MAX_FILE_SECONDS} seconds (start_time to end_time)"
        )
    return start, end


def _web_url(payload: Mapping[str, Any], name: str) -> str:
    url = _text(payload, name, limit=MAX_TEXT)
    if url is None:
        raise MalformedEvent(f"{name} is missing")
    check_web_url(name, url)
    return url


def check_web_url(name: str, url: str) -> None:
    """MalformedEvent unless `url` is an http(s) URL."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https") or not url[len(scheme) :].startswith("://"):
        raise MalformedEvent(f"{name} is not an http(s) URL")


def _text(payload: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    """Optional text: a string (a number is read as its digits) of valid Unicode, at
    most `limit` characters once stripped; None when absent or blank."""
    value = payload.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) >= 2**64:
            raise MalformedEvent(f"{name} is not a string")
        value = str(value)
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} is not a string")
    value = value.strip()
    if len(value) > limit:
        raise MalformedEvent(f"{name} is longer than {limit} characters")
    if UNSTORABLE_CHARACTERS.search(value):
        raise MalformedEvent(f"{name} is not valid Unicode text")
    return value or None


def _whole_number(value: Any) -> int | None:
    """Tencent sends numbers as JSON numbers or as strings; raise ValueError on garbage
    (anything else, and NaN or an infinity)."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if len(value) > 64:
            raise ValueError("too long for a number")
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return int(value)
    if isinstance(value, int):
        return value
    raise ValueError(f"not a number: {type(value).__name__}")


def _lenient_number(payload: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    """An optional number that describes an event without placing it (a size, pixels,
    an error code): absent, garbage or out of [low, high], it is dropped (None) and the
    event kept. A recording is worth more than its byte count, Tencent's payloads do not
    always carry these numbers, and no answer depends on them being there. (Times and
    durations place an event: out of range, they quarantine it.)"""
    try:
        number = _whole_number(payload.get(name))
    except ValueError:
        return None
    if number is not None and not low <= number <= high:
        return None
    return number


def _optional_time_number(payload: Mapping[str, Any], name: str, latest: float) -> int | None:
    try:
        moment = _whole_number(payload.get(name))
    except ValueError as error:
        raise MalformedEvent(f"{name} is not a Unix time") from error
    if moment is not None:
        _check_time(name, moment, latest)
    return moment


def _check_time(name: str, moment: int, latest: float) -> None:
    if not EARLIEST_TIME <= moment <= latest:
        raise MalformedEvent(f"{name} is out of range (before 2010, or over a day ahead)")


def _required_time(payload: Mapping[str, Any], name: str, latest: float) -> datetime:
    moment = _optional_time_number(payload, name, latest)
    if moment is None:
        raise MalformedEvent(f"{name} is missing")
    return from_unix(moment)
