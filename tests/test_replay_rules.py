"""The rules of a replay, on the pure functions: its timeline (domain/timeline.py) and the
stitching of its HLS parts into one playlist (domain/stitching.py).

Serving stitched replays over HTTP, fetching the parts and the guards around it are in
tests/test_replays.py.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.formats import PLAYBACK_PREFERENCE
from domain.stitching import (
    DISCONTINUITY,
    KEY,
    MasterPlaylist,
    MediaPlaylist,
    PlaylistInvalid,
    Segment,
    parse_playlist,
    stitch,
)
from domain.timeline import timeline
from tests.vod_emulator import master_playlist

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
VOD = "http://1252033264.vod2.myqcloud.com"
STITCHED_URL = "http://catalog.test/replays/b1.m3u8"
PROPERTY = settings(max_examples=100, deadline=None)


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


# Timeline


@dataclass(frozen=True)
class Part:
    """A recording file as the timeline reads it."""

    file_id: str
    format: str
    start_time: datetime
    end_time: datetime


@st.composite
def recordings(draw: st.DrawFn) -> list[Part]:
    """A broadcast's recording files: any formats, overlapping or with breaks between."""
    parts = []
    for index in range(draw(st.integers(min_value=0, max_value=8))):
        start = draw(st.integers(min_value=0, max_value=5000))
        end = start + draw(st.integers(min_value=0, max_value=1800))
        file_format = draw(st.sampled_from(PLAYBACK_PREFERENCE))
        parts.append(Part(f"p{index}", file_format, at(start), at(end)))
    return parts


def play_order(parts: list[Part], file_format: str | None) -> list[Part]:
    """The parts of the format the broadcast plays in (or `file_format`), by time."""
    if file_format is None:
        present = {part.format for part in parts}
        file_format = next((f for f in PLAYBACK_PREFERENCE if f in present), None)
    return sorted(
        (part for part in parts if part.format == file_format),
        key=lambda part: (part.start_time, part.end_time, part.file_id),
    )


@PROPERTY
@given(
    parts=recordings(),
    file_format=st.none() | st.sampled_from(PLAYBACK_PREFERENCE),
    data=st.data(),
)
def test_a_timeline_lists_the_parts_of_one_format_in_time_order_whatever_their_order(
    parts: list[Part], file_format: str | None, data: st.DataObject
) -> None:
    entries = timeline(parts, None, file_format)
    assert [entry.recording for entry in entries] == play_order(parts, file_format)
    assert timeline(data.draw(st.permutations(parts)), None, file_format) == entries


@PROPERTY
@given(parts=recordings(), started_at=st.none() | st.integers(min_value=-600, max_value=6000))
def test_timeline_offsets_never_go_back_and_no_gap_is_negative(
    parts: list[Part], started_at: int | None
) -> None:
    start = None if started_at is None else at(started_at)
    entries = timeline(parts, start, None)
    offsets = [entry.offset_seconds for entry in entries]
    assert offsets == sorted(offsets)
    assert all(offset >= 0 for offset in offsets)
    assert all(entry.gap_before_seconds >= 0 for entry in entries)
    if not entries:
        return
    assert entries[0].gap_before_seconds == 0
    origin = start or entries[0].recording.start_time
    if origin <= entries[0].recording.start_time:  # the broadcast starts with or before it
        assert offsets == [
            int((entry.recording.start_time - origin).total_seconds()) for entry in entries
        ]


@PROPERTY
@given(parts=recordings())
def test_the_gaps_add_up_to_the_time_nothing_was_recorded(parts: list[Part]) -> None:
    entries = timeline(parts, None, None)
    if not entries:
        return
    played = [entry.recording for entry in entries]
    first = min(part.start_time for part in played)
    seconds = [
        (int((p.start_time - first).total_seconds()), int((p.end_time - first).total_seconds()))
        for p in played
    ]
    recorded = set().union(*(range(start, end) for start, end in seconds))
    unrecorded = max(end for _, end in seconds) - len(recorded)
    assert sum(entry.gap_before_seconds for entry in entries) == unrecorded


# Stitching

# Per segment: its duration, and the key tag before it (None: none; "NONE": METHOD=NONE).
SEGMENT_PLANS = st.tuples(
    st.floats(min_value=0.04, max_value=30.0), st.sampled_from([None, None, None, "NONE", "k1"])
)
PART_PLANS = st.lists(st.lists(SEGMENT_PLANS, max_size=4), min_size=1, max_size=5)


def part_url(name: str) -> str:
    return f"{VOD}/{name}/playlist.m3u8"


def part_playlist(name: str, segments: list[tuple[float, str | None]]) -> MediaPlaylist:
    """A part as Tencent records it (relative URIs, maybe encrypted), read from its URL."""
    durations = [duration for duration, _ in segments]
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(max(durations, default=1)))}",
    ]
    for index, (duration, key) in enumerate(segments):
        if key == "NONE":
            lines.append("#EXT-X-KEY:METHOD=NONE")
        elif key is not None:
            lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="../keys/{name}-{key}.bin"')
        lines += [f"#EXTINF:{duration:.3f},", f"{name}_{index}.ts"]
    lines.append("#EXT-X-ENDLIST")
    playlist = parse_playlist("\n".join(lines) + "\n", part_url(name))
    assert isinstance(playlist, MediaPlaylist)
    return playlist


def keys_in_effect(segments: tuple[Segment, ...]) -> list[str | None]:
    """The key tag each segment is decrypted with (None: not encrypted)."""
    key: str | None = None
    keys = []
    for segment in segments:
        for tag in segment.tags:
            if tag.startswith(KEY):
                key = None if "METHOD=NONE" in tag else tag
        keys.append(key)
    return keys


@PROPERTY
@given(plans=PART_PLANS, ended=st.booleans())
def test_stitched_parts_read_back_segment_for_segment_in_order(
    plans: list[list[tuple[float, str | None]]], ended: bool
) -> None:
    parts = [part_playlist(f"p{index}", plan) for index, plan in enumerate(plans)]
    played = [part for part in parts if part.segments]
    if not played:
        with pytest.raises(PlaylistInvalid, match="no part has a segment"):
            stitch(parts, ended)
        return

    stitched = parse_playlist(stitch(parts, ended), STITCHED_URL)
    assert isinstance(stitched, MediaPlaylist)
    assert stitched.ended is ended
    assert [segment.uri for segment in stitched.segments] == [
        f"{VOD}/p{index}/p{index}_{number}.ts"
        for index, plan in enumerate(plans)
        for number in range(len(plan))
    ]
    durations = [float(f"{duration:.3f}") for plan in plans for duration, _ in plan]
    assert [segment.duration for segment in stitched.segments] == durations
    assert math.isclose(sum(s.duration for s in stitched.segments), sum(durations))
    assert stitched.target_duration >= max(durations)
    starts = [segment for segment in stitched.segments if DISCONTINUITY in segment.tags]
    assert len(starts) == len(played) - 1
    # A part is decrypted with its own keys only: none carries over into the next.
    assert keys_in_effect(stitched.segments) == [
        key for part in played for key in keys_in_effect(part.segments)
    ]
    assert all(f'URI="{VOD}/keys/' in key for key in keys_in_effect(stitched.segments) if key)


@PROPERTY
@given(plans=PART_PLANS, ended=st.booleans())
def test_stitching_leaves_out_empty_parts_and_a_stitched_playlist_stitches_to_itself(
    plans: list[list[tuple[float, str | None]]], ended: bool
) -> None:
    parts = [part_playlist(f"p{index}", plan) for index, plan in enumerate(plans)]
    played = [part for part in parts if part.segments]
    if not played:
        return
    text = stitch(parts, ended)
    assert stitch(played, ended) == text
    again = parse_playlist(text, STITCHED_URL)
    assert isinstance(again, MediaPlaylist)
    assert stitch([again], ended) == text


@PROPERTY
@given(
    variants=st.dictionaries(
        st.from_regex(r"[a-z0-9]{1,8}/index\.m3u8", fullmatch=True),
        st.integers(min_value=1, max_value=10**8),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_the_chosen_variant_has_the_highest_bandwidth_whatever_the_order(
    variants: dict[str, int], data: st.DataObject
) -> None:
    reordered = dict(data.draw(st.permutations(list(variants.items()))))
    chosen = []
    for listing in (variants, reordered):
        master = parse_playlist(master_playlist(listing), part_url("m"))
        assert isinstance(master, MasterPlaylist)
        chosen.append(master.chosen_variant())
    assert chosen[0] == chosen[1]
    assert chosen[0].bandwidth == max(variants.values())
    assert chosen[0].uri.startswith(f"{VOD}/m/")


PLAYLIST_LINES = st.one_of(
    st.sampled_from(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-VERSION:x",
            "#EXT-X-TARGETDURATION:10",
            "#EXT-X-TARGETDURATION:-1",
            "#EXTINF:10,",
            "#EXTINF:9.5,title",
            "#EXTINF:-1,",
            "#EXTINF:nan,",
            "#EXTINF:1e400,",
            "#EXT-X-ENDLIST",
            DISCONTINUITY,
            "#EXT-X-STREAM-INF:BANDWIDTH=1000",
            "#EXT-X-STREAM-INF:RESOLUTION=1x1",
            '#EXT-X-KEY:METHOD=AES-128,URI="k.bin"',
            '#EXT-X-MAP:URI="init.mp4"',
            "#EXT-X-BYTERANGE:100@0",
            "seg.ts",
            "",
            "# a comment",
        ]
    ),
    st.text(max_size=16),
    st.text(st.sampled_from('#:=/[]²0123456789htp.,"'), max_size=16).map(lambda s: "h" + s),
)


@PROPERTY
@given(lines=st.lists(PLAYLIST_LINES, max_size=12), ended=st.booleans())
def test_any_text_is_a_playlist_or_invalid_and_whatever_reads_as_media_stitches(
    lines: list[str], ended: bool
) -> None:
    try:
        playlist = parse_playlist("\n".join(lines), part_url("p"))
    except PlaylistInvalid as invalid:
        assert str(invalid)
        return
    if not isinstance(playlist, MediaPlaylist) or not playlist.segments:
        return
    try:
        text = stitch([playlist], ended)
    except PlaylistInvalid:
        return
    again = parse_playlist(text, STITCHED_URL)
    assert isinstance(again, MediaPlaylist)
    assert len(again.segments) == len(playlist.segments)


@pytest.mark.parametrize(
    "text",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://[oops/a.ts\n",
        '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-KEY:METHOD=AES-128,URI="//[k"\n',
        "#EXTM3U\n#EXT-X-TARGETDURATION:\u00b2\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\u00b2\nv.m3u8\n",
    ],
    ids=["segment-host", "key-host", "superscript-target", "superscript-bandwidth"],
)
def test_a_playlist_with_an_unreadable_host_or_number_is_invalid(text: str) -> None:
    with pytest.raises(PlaylistInvalid):
        parse_playlist(text, part_url("p"))
