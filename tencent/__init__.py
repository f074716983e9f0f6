"""Tencent Cloud Live's wire formats, all in this package: callbacks and the file-list query.

A change on Tencent's side is a change here; the rest of the code sees domain events.
"""

from tencent.callbacks import (
    EVENT_PUSH_CUT_OFF,
    EVENT_PUSH_STARTED,
    EVENT_RECORDING_FILE,
    EVENT_SCREENSHOT,
    CallbackRejected,
    MalformedBody,
    MalformedEvent,
    callback_sign,
    check_nesting,
    event_key,
    event_type_of,
    parse_callback,
    read_json_object,
    redact_secrets,
    stream_id_of,
    verify_callback_sign,
)

__all__ = [
    "EVENT_PUSH_CUT_OFF",
    "EVENT_PUSH_STARTED",
    "EVENT_RECORDING_FILE",
    "EVENT_SCREENSHOT",
    "CallbackRejected",
    "MalformedBody",
    "MalformedEvent",
    "callback_sign",
    "check_nesting",
    "event_key",
    "event_type_of",
    "parse_callback",
    "read_json_object",
    "redact_secrets",
    "stream_id_of",
    "verify_callback_sign",
]
