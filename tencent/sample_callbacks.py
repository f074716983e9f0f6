"""Callbacks as Tencent would send them now: the shipped sample bodies, their times
placed around the clock, and the `t` and `sign` every notification carries.

The samples (tencent/samples/*.json) are Tencent's bodies for events 1, 0, 100
and 200 without `t`, `sign` and the times, which only make sense when the body is sent.
"""

import json
from importlib import resources
from typing import Any

from tencent.callbacks import (
    EVENT_PUSH_CUT_OFF,
    EVENT_PUSH_STARTED,
    EVENT_RECORDING_FILE,
    EVENT_SCREENSHOT,
    callback_sign,
    event_type_of,
)

SAMPLE_NAMES = ("push", "cut", "recording", "screenshot")

# Tencent: a notification expires 10 minutes after it is sent (`t`).
NOTIFICATION_LIFETIME_SECONDS = 600

# The time that places each event; a recording file is placed by start_time and end_time.
EVENT_MOMENT = {
    EVENT_PUSH_STARTED: "event_time",
    EVENT_PUSH_CUT_OFF: "event_time",
    EVENT_SCREENSHOT: "create_time",
}
MOMENTS = ("event_time", "create_time")


def load_sample(name: str) -> dict[str, Any]:
    """A shipped sample body by name (one of SAMPLE_NAMES)."""
    if name not in SAMPLE_NAMES:
        raise ValueError(f"no sample named {name!r}")
    text = resources.files("tencent").joinpath("samples", f"{name}.json").read_text()
    body: dict[str, Any] = json.loads(text)
    return body


def placed_at(payload: dict[str, Any], now: int, replace: bool = False) -> dict[str, Any]:
    """The body with its times set around `now`: those it lacks, or with `replace` every one.

    An event of type 1, 0 or 200 happens now (event_time, create_time); a recording file
    ends now and starts its `duration` (else its own end - start, else 0 s) earlier.
    Times a body already has are kept unless `replace`, so a recorded callback can be
    sent again exactly as it came.
    """
    body = dict(payload)
    event_type = event_type_of(body)
    if event_type == EVENT_RECORDING_FILE:
        if replace or (body.get("start_time") is None and body.get("end_time") is None):
            length = _file_length(body)
            body["end_time"] = now
            body["start_time"] = now - length
    elif event_type in EVENT_MOMENT:
        name = EVENT_MOMENT[event_type]
        if replace or body.get(name) is None:
            body[name] = now
    if replace:
        for name in MOMENTS:
            if name in body:
                body[name] = now
    return body


def _file_length(body: dict[str, Any]) -> int:
    duration = _seconds(body.get("duration"))
    if duration is not None and duration > 0:
        return duration
    start, end = _seconds(body.get("start_time")), _seconds(body.get("end_time"))
    if start is not None and end is not None and end > start:
        return end - start
    return 0


def _seconds(value: Any) -> int | None:
    """Whole seconds from a number or its digits (Tencent sends both); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return None


def signed(payload: dict[str, Any], key: str, now: int) -> dict[str, Any]:
    """The body as Tencent sends it: `t` (expiry, ten minutes on) and `sign = md5(key + t)`."""
    t = now + NOTIFICATION_LIFETIME_SECONDS
    return {**payload, "t": t, "sign": callback_sign(key, t)}
