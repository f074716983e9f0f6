"""Reading Tencent's callbacks: payloads to domain events, event identity, the sign check.

Tested on the adapter's pure functions (tencent/callbacks.py): what a signed callback
turns into, what is refused and why. Delivering callbacks over HTTP is in
tests/test_callbacks.py.
"""

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import (
    DomainEvent,
    PushEnded,
    PushStarted,
    RecordingFileReady,
    ScreenshotTaken,
    UnusedEvent,
)
from domain.formats import PLAYBACK_PREFERENCE
from domain.times import from_unix
from tencent.callbacks import (
    EARLIEST_TIME,
    EVENT_PUSH_CUT_OFF,
    EVENT_PUSH_STARTED,
    EVENT_RECORDING_FILE,
    EVENT_SCREENSHOT,
    MAX_EVENT_TYPE,
    MAX_FILE_SECONDS,
    MAX_FILE_SIZE,
    MAX_INT32,
    MAX_SECONDS_AHEAD,
    MAX_STREAM_ID,
    CallbackRejected,
    MalformedEvent,
    callback_sign,
    event_key,
    event_type_of,
    parse_callback,
    verify_callback_sign,
)
from tests.catalog_client import BASE, cut, push, recording, screenshot

# When the callbacks are received: an hour after the events they tell of.
NOW = BASE + 3600
PROPERTY = settings(max_examples=100, deadline=None)
USED_EVENT_TYPES = (EVENT_PUSH_STARTED, EVENT_PUSH_CUT_OFF, EVENT_RECORDING_FILE, EVENT_SCREENSHOT)


def parsed(payload: dict[str, Any]) -> DomainEvent:
    return parse_callback(payload, now=NOW)


# Payload normalisation


def test_stream_ids_and_sequences_are_trimmed() -> None:
    assert parsed(push(" 2121_a ", BASE, " s1 ")) == PushStarted("2121_a", from_unix(BASE), "s1")
    file = parsed(recording("2121_a\t", "f1", BASE, BASE + 600))
    assert isinstance(file, RecordingFileReady)
    assert file.stream_id == "2121_a"


def test_numbers_sent_as_strings_are_understood() -> None:
    started = parsed({**push("2121_a", BASE, "s1"), "event_time": str(BASE), "event_type": "1"})
    assert started == PushStarted("2121_a", from_unix(BASE), "s1")

    file = parsed(
        {
            **recording("2121_a", "f1", BASE, BASE + 600),
            "start_time": str(BASE),
            "end_time": f" {BASE + 600} ",
            "file_size": "1473125627",
            "event_type": "100",
        }
    )
    assert isinstance(file, RecordingFileReady)
    assert (file.start_time, file.end_time) == (from_unix(BASE), from_unix(BASE + 600))
    assert (file.duration_seconds, file.file_size) == (600, 1473125627)

    ended = parsed(
        {
            **cut("2121_a", BASE + 600, "s1", push_duration="600000"),
            "event_time": str(BASE + 600),
            "event_type": "0",
        }
    )
    assert isinstance(ended, PushEnded)
    assert (ended.at, ended.push_duration_ms) == (from_unix(BASE + 600), 600_000)


@pytest.mark.parametrize("event", ["push", "recording", "cut", "screenshot"])
def test_channel_id_stands_in_for_a_missing_stream_id(event: str) -> None:
    payload = {
        "push": push("2121_a", BASE, "s1"),
        "recording": recording("2121_a", "f1", BASE, BASE + 600),
        "cut": cut("2121_a", BASE + 600, "s1"),
        "screenshot": screenshot("2121_a", BASE + 60),
    }[event]
    payload.pop("stream_id")
    without_stream_id = parsed(payload)
    assert not isinstance(without_stream_id, UnusedEvent)
    assert without_stream_id.stream_id == "2121_a"

    payload.pop("channel_id")
    with pytest.raises(MalformedEvent, match="stream_id and channel_id are both missing"):
        parsed(payload)


def test_unknown_fields_are_ignored() -> None:
    novelties: dict[str, Any] = {
        "callback_ext": '{"session_id": "x1", "resolution": "1280x720"}',
        "start_time_usec": 123456,
        "stream_param": "bizid=2121&record=hls&session=x1",
        "brand_new": {"nested": [1, "two", None]},
        "appid": 1252033264,
        "node": "100.121.160.92",
        "media_start_time": 3200,
    }
    for payload in (
        push("2121_a", BASE, "s1"),
        recording("2121_a", "f1", BASE, BASE + 600),
        cut("2121_a", BASE + 600, "s1", push_duration="600000"),
        screenshot("2121_a", BASE + 60),
    ):
        assert parsed({**payload, **novelties}) == parsed(payload)


@pytest.mark.parametrize(
    ("video_url", "file_format"),
    [
        ("http://1252033264.vod2.myqcloud.com/f1/playlist.m3u8", "HLS"),
        ("http://1252033264.vod2.myqcloud.com/f1/f0.mp4", "MP4"),
        ("http://200025724.vod.myqcloud.com/200025724_ac92.f0.flv", "FLV"),
        ("https://1252033264.vod2.myqcloud.com/f1/F0.MP4?t=5f1b&sign=ab", "MP4"),
        ("http://1252033264.vod2.myqcloud.com/f1/audio.m4a", "AAC"),
    ],
    ids=["m3u8", "mp4", "flv", "query-string", "m4a"],
)
def test_format_is_inferred_from_the_url_when_file_format_is_absent(
    video_url: str, file_format: str
) -> None:
    payload = {**recording("2121_a", "f1", BASE, BASE + 600), "video_url": video_url}
    payload.pop("file_format")
    file = parsed(payload)
    assert isinstance(file, RecordingFileReady)
    assert (file.format, file.video_url) == (file_format, video_url)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"file_format": "webm"}, "unknown file_format"),
        ({"file_format": None, "video_url": "http://h/f1/download"}, "does not tell it"),
    ],
    ids=["unknown", "absent-and-no-extension"],
)
def test_a_file_of_no_known_format_is_malformed(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        parsed({**recording("2121_a", "f1", BASE, BASE + 600), **changes})


def test_file_format_is_read_in_any_case() -> None:
    for named, file_format in (("HLS", "HLS"), ("M3u8", "HLS"), ("Mp4", "MP4"), ("AAC", "AAC")):
        file = parsed({**recording("2121_a", "f1", BASE, BASE + 600), "file_format": named})
        assert isinstance(file, RecordingFileReady)
        assert file.format == file_format


# Odd values


def test_the_recording_guide_example_gets_no_negative_duration() -> None:
    # Verbatim from Tencent's recording guide, but for t and sign: start_time is
    # ten thousand seconds after end_time.
    example = {
        "channel_id": "2121_15919131751",
        "end_time": 1473125627,
        "event_type": 100,
        "file_format": "flv",
        "file_id": "9192487266581821586",
        "file_size": 9749353,
        "start_time": 1473135647,
        "stream_id": "2121_15919131751",
        "video_id": "200025724_ac92b781a22c4a3e937c9e61c2624af7",
        "video_url": "http://200025724.vod.myqcloud.com/200025724_ac92b781a22c4a3e937c9e61c2624af7.f0.flv",
    }
    file = parsed(example)
    assert isinstance(file, RecordingFileReady)
    assert (file.stream_id, file.file_id) == ("2121_15919131751", "9192487266581821586")
    assert (file.format, file.file_size, file.video_url) == ("FLV", 9749353, example["video_url"])
    assert file.start_time == file.end_time == from_unix(1473125627)
    assert file.duration_seconds == 0


@pytest.mark.parametrize(
    ("times", "start"),
    [
        pytest.param(
            {"start_time": BASE, "end_time": BASE + 600, "duration": 590},
            BASE + 10,
            id="writing-began-early",
        ),
        pytest.param(
            {"start_time": BASE + 9000, "end_time": BASE + 600, "duration": 600},
            BASE,
            id="start-after-end",
        ),
        pytest.param({"end_time": BASE + 600, "duration": "600"}, BASE, id="no-start"),
    ],
)
def test_duration_places_the_start_before_the_end(times: dict[str, Any], start: int) -> None:
    payload = recording("2121_a", "f1", BASE, BASE + 600)
    for name in ("start_time", "end_time"):
        payload.pop(name)
    file = parsed({**payload, **times})
    assert isinstance(file, RecordingFileReady)
    assert (file.start_time, file.end_time) == (from_unix(start), from_unix(BASE + 600))
    assert file.duration_seconds == BASE + 600 - start


def test_event_types_the_catalog_does_not_use_are_read_as_unused() -> None:
    assert parsed({"event_type": 300, "stream_id": "2121_a"}) == UnusedEvent(stream_id="2121_a")
    assert parsed({"stream_id": "2121_a"}) == UnusedEvent(stream_id="2121_a")


# Any payload

# Values that sit at the edges of what the adapter accepts.
EDGES = st.sampled_from(
    [
        EARLIEST_TIME - 1,
        EARLIEST_TIME,
        NOW + MAX_SECONDS_AHEAD,
        NOW + MAX_SECONDS_AHEAD + 1,
        MAX_FILE_SECONDS,
        MAX_FILE_SECONDS + 1,
        MAX_INT32,
        MAX_INT32 + 1,
        MAX_FILE_SIZE + 1,
        2**64,
        10**400,
        -1,
        0,
        "",
        " 100 ",
        "1e400",
        "nan",
        "-inf",
        "\u00b2",
        "\ud800",
        "a\x00b",
        "hls",
        "M3U8",
        "http://h/x.m3u8",
        "https://h/y.flv?t=1",
        "ftp://h/z.mp4",
        "x" * (MAX_STREAM_ID + 1),
    ]
)
TIMES = st.integers(min_value=EARLIEST_TIME - 10, max_value=NOW + MAX_SECONDS_AHEAD + 10)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    TIMES,
    TIMES.map(str),
    EDGES,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
    "event_type",
    "stream_id",
    "channel_id",
    "event_time",
    "sequence",
    "push_duration",
    "errcode",
    "errmsg",
    "file_id",
    "record_file_id",
    "file_format",
    "video_url",
    "video_id",
    "file_size",
    "start_time",
    "end_time",
    "duration",
    "task_id",
    "create_time",
    "pic_full_url",
    "width",
    "height",
]


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object: one of Tencent's four events (or nothing) with a few fields changed,
    removed or added."""
    base = draw(
        st.sampled_from(
            [
                lambda: push("2121_a", BASE, "s1"),
                lambda: cut("2121_a", BASE + 600, "s1", push_duration="600000"),
                lambda: recording("2121_a", "f1", BASE, BASE + 600),
                lambda: screenshot("2121_a", BASE + 60),
                dict,
            ]
        )
    )()
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=3)):
        base.pop(name, None)
    changes = draw(
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON_VALUES, max_size=4)
    )
    return {**base, **changes}


def assert_in_range(event: DomainEvent, payload: dict[str, Any]) -> None:
    """What the catalog may rely on for any event the adapter lets through."""
    earliest, latest = from_unix(EARLIEST_TIME), from_unix(NOW + MAX_SECONDS_AHEAD)
    if isinstance(event, UnusedEvent):  # kept in the inbox with its (absent or other) type
        event_type = event_type_of(payload)
        assert event_type is None or 0 <= event_type <= MAX_EVENT_TYPE
        assert event_type not in USED_EVENT_TYPES
        return
    assert 0 < len(event.stream_id) <= MAX_STREAM_ID
    assert event.stream_id == event.stream_id.strip()
    assert "\x00" not in event.stream_id
    event.stream_id.encode()  # valid Unicode: no lone surrogate
    if isinstance(event, PushStarted | PushEnded):
        assert earliest <= event.at <= latest
        assert len(event.sequence) <= 128
    if isinstance(event, PushEnded):
        assert event.push_duration_ms is None or 0 <= event.push_duration_ms <= MAX_INT32
        assert event.errcode is None or -MAX_INT32 <= event.errcode <= MAX_INT32
        assert event.errmsg is None or len(event.errmsg) <= 512
    if isinstance(event, RecordingFileReady):
        assert event.format in PLAYBACK_PREFERENCE
        assert earliest <= event.start_time <= event.end_time <= latest
        length = event.end_time - event.start_time
        assert timedelta(seconds=event.duration_seconds) == length
        assert 0 <= event.duration_seconds <= MAX_FILE_SECONDS
        assert event.file_size is None or 0 <= event.file_size <= MAX_FILE_SIZE
        assert event.video_url.lower().startswith(("http://", "https://"))
        assert 0 < len(event.file_id) <= 128
    if isinstance(event, ScreenshotTaken):
        assert earliest <= event.taken_at <= latest
        assert event.url.lower().startswith(("http://", "https://"))
        for pixels in (event.width, event.height):
            assert pixels is None or 0 <= pixels <= MAX_INT32


@PROPERTY
@given(payload=payloads())
def test_any_payload_becomes_an_event_in_range_or_is_malformed(payload: dict[str, Any]) -> None:
    try:
        event = parsed(payload)
    except MalformedEvent as malformed:
        assert str(malformed)  # the reason the inbox shows
        return
    assert_in_range(event, payload)


@PROPERTY
@given(
    payload=st.dictionaries(st.text(max_size=8) | EDGES.map(str), JSON_VALUES, max_size=6),
    data=st.data(),
)
def test_an_events_key_is_the_same_whatever_the_order_of_its_fields(
    payload: dict[str, Any], data: st.DataObject
) -> None:
    reordered = dict(data.draw(st.permutations(list(payload.items()))))
    assert event_key(reordered) == event_key(payload)


@PROPERTY
@given(payload=payloads(), t=SCALARS, sign=SCALARS, field=st.text(max_size=8))
def test_an_events_key_ignores_t_and_sign_and_changes_with_anything_else(
    payload: dict[str, Any], t: Any, sign: Any, field: str
) -> None:
    key = event_key(payload)
    assert event_key({**payload, "t": t, "sign": sign}) == key
    if field not in payload and field not in ("t", "sign"):
        assert event_key({**payload, field: None}) != key
    if payload.get("stream_id") != "2121_b":
        assert event_key({**payload, "stream_id": "2121_b"}) != key


# The sign

KEYS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


@PROPERTY
@given(
    key=KEYS,
    payload=payloads(),
    t=st.integers(min_value=0, max_value=2**40),
    ahead=st.integers(min_value=0, max_value=10**6),
)
def test_a_sign_made_with_the_key_is_accepted_until_its_t_passes(
    key: str, payload: dict[str, Any], t: int, ahead: int
) -> None:
    sign = callback_sign(key, t)
    verify_callback_sign({**payload, "t": t, "sign": sign}, key, now=t - ahead)
    # t may come as a string; sign in any case, with spaces around.
    verify_callback_sign({**payload, "t": f" {t} ", "sign": f" {sign.upper()} "}, key, now=t)
    with pytest.raises(CallbackRejected, match="expired"):
        verify_callback_sign({**payload, "t": t, "sign": sign}, key, now=t + 1 + ahead)


@PROPERTY
@given(key=KEYS, other=KEYS, payload=payloads(), t=st.integers(min_value=0, max_value=2**40))
def test_a_sign_made_with_another_key_or_for_another_t_is_refused(
    key: str, other: str, payload: dict[str, Any], t: int
) -> None:
    if other != key:
        with pytest.raises(CallbackRejected, match="wrong sign"):
            verify_callback_sign({**payload, "t": t, "sign": callback_sign(other, t)}, key, now=0)
    with pytest.raises(CallbackRejected, match="wrong sign"):
        verify_callback_sign({**payload, "t": t + 1, "sign": callback_sign(key, t)}, key, now=0)


@PROPERTY
@given(
    key=KEYS,
    payload=payloads(),
    t=JSON_VALUES,
    sign=JSON_VALUES,
    now=st.floats(allow_nan=False) | st.integers(),
)
def test_a_payload_with_any_t_and_sign_is_accepted_or_refused_never_crashes(
    key: str, payload: dict[str, Any], t: Any, sign: Any, now: float
) -> None:
    try:
        verify_callback_sign({**payload, "t": t, "sign": sign}, key, now)
    except CallbackRejected as rejected:
        assert str(rejected)


@settings(max_examples=20, deadline=None)
@given(payload=payloads(), t=st.integers(min_value=0, max_value=2**40))
def test_without_a_key_every_callback_is_refused(payload: dict[str, Any], t: int) -> None:
    signed = {**payload, "t": t, "sign": callback_sign("", t)}
    with pytest.raises(CallbackRejected, match="CALLBACK_KEY is not configured"):
        verify_callback_sign(signed, None, now=0)


def test_a_huge_or_missing_t_is_refused_not_a_crash() -> None:
    for t in (None, "", "soon", math.inf, math.nan, True, [1], 10**400):
        with pytest.raises(CallbackRejected):
            verify_callback_sign({"t": t, "sign": "0" * 32}, "key", now=0)
