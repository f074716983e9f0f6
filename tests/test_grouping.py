"""Grouping pushes, cut-offs, recording files and screenshots into broadcasts.

Every test delivers signed callbacks through POST /callbacks/tencent and reads
the catalog back through GraphQL, the way Tencent and the apps do. The fixture
sets RECONNECT_WINDOW_SECONDS to 300.
"""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from storage import Broadcast, Screenshot
from tests.catalog_client import (
    BASE,
    CatalogClient,
    cut,
    iso,
    push,
    recording,
    screenshot,
)

pytestmark = pytest.mark.anyio

WINDOW = 300  # make_settings(reconnect_window_seconds=300)

ROOMS = """{ rooms(first: 100) { edges { node {
    kind playbackUrl stream { streamId } broadcast { startedAt endedAt isLive }
} } } }"""

FILE = """query($id: String!) { recordingFile(fileId: $id) {
    fileId format videoUrl fileSize startTime endTime durationSeconds
    stream { streamId } broadcast { startedAt endedAt durationSeconds playbackUrl }
} }"""

CATALOG_WITH_IDS = """query($streamId: String!) { stream(streamId: $streamId) {
    isLive currentBroadcast { id }
    broadcasts(first: 100) { edges { node {
        id isLive startedAt endedAt durationSeconds playbackUrl recordings { id fileId }
    } } }
} }"""


def url(file_id: str, extension: str) -> str:
    """The URL `recording()` gives a file of this id."""
    return f"http://1252033264.vod2.myqcloud.com/{file_id}/f0.{extension}"


def unix(moment: datetime) -> int:
    """A stored time as Unix seconds (SQLite hands back naive UTC datetimes)."""
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())


def spans(broadcasts: list[dict[str, Any]]) -> list[tuple[Any, Any, bool]]:
    return [(b["startedAt"], b["endedAt"], b["isLive"]) for b in broadcasts]


def file_ids(broadcast: dict[str, Any]) -> list[str]:
    return [r["fileId"] for r in broadcast["recordings"]]


def renamed(value: Any, old: str, new: str) -> Any:
    """`value` with every occurrence of `old` in its strings replaced by `new`."""
    return json.loads(json.dumps(value).replace(old, new))


async def rooms_of(catalog: CatalogClient, stream_id: str) -> list[dict[str, Any]]:
    edges = (await catalog.data(ROOMS))["rooms"]["edges"]
    return [e["node"] for e in edges if e["node"]["stream"]["streamId"] == stream_id]


# Pushes and cut-offs


async def test_push_opens_a_live_broadcast_shown_as_a_live_room(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_alice", BASE, "s1"))

    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is True
    assert stream["currentBroadcast"] == {"startedAt": iso(BASE)}
    assert await catalog.broadcasts("2121_alice") == [
        {
            "isLive": True,
            "startedAt": iso(BASE),
            "endedAt": None,
            "durationSeconds": None,
            "playbackUrl": None,
            "recordings": [],
        }
    ]
    (room,) = await rooms_of(catalog, "2121_alice")
    assert room["kind"] == "LIVE"
    assert room["broadcast"] == {"startedAt": iso(BASE), "endedAt": None, "isLive": True}


async def test_cut_off_ends_the_broadcast_at_the_cut_off_time(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            recording("2121_alice", "f1", BASE, BASE + 1790),
            cut("2121_alice", BASE + 1800, "s1", push_duration="1800000"),
        ]
    )

    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is False
    assert stream["currentBroadcast"] is None
    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 1800), False)]
    assert broadcast["durationSeconds"] == 1800
    (room,) = await rooms_of(catalog, "2121_alice")
    assert room["kind"] == "REPLAY"


# One broadcast, many files


@pytest.mark.parametrize("with_push_events", [True, False], ids=["pushes", "files-only"])
async def test_parts_cut_by_record_interval_are_one_broadcast(
    catalog: CatalogClient, with_push_events: bool
) -> None:
    # record=mp4&record_interval=1800: parts end at key frames, a second apart.
    parts = [
        recording("2121_alice", "p1", BASE, BASE + 1799, "mp4"),
        recording("2121_alice", "p2", BASE + 1800, BASE + 3599, "mp4"),
        recording("2121_alice", "p3", BASE + 3600, BASE + 4000, "mp4"),
    ]
    pushes = [push("2121_alice", BASE, "s1"), cut("2121_alice", BASE + 4000, "s1")]
    await catalog.send_all((pushes if with_push_events else []) + parts)

    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 4000), False)]
    assert broadcast["durationSeconds"] == 4000
    assert file_ids(broadcast) == ["p1", "p2", "p3"]
    assert broadcast["playbackUrl"] == url("p1", "mp4")


@pytest.mark.parametrize("with_push_events", [True, False], ids=["pushes", "files-only"])
async def test_every_format_of_one_session_is_one_broadcast(
    catalog: CatalogClient, with_push_events: bool
) -> None:
    # record=hls|mp4|flv&record_interval=1800: HLS ignores the interval.
    files = [
        recording("2121_alice", "hls", BASE, BASE + 3000, "hls"),
        recording("2121_alice", "mp4-1", BASE, BASE + 1800, "mp4"),
        recording("2121_alice", "mp4-2", BASE + 1800, BASE + 3000, "mp4"),
        recording("2121_alice", "flv-1", BASE, BASE + 1800, "flv"),
        recording("2121_alice", "flv-2", BASE + 1800, BASE + 3000, "flv"),
    ]
    pushes = [push("2121_alice", BASE, "s1"), cut("2121_alice", BASE + 3000, "s1")]
    await catalog.send_all((pushes if with_push_events else []) + files)

    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 3000), False)]
    assert sorted(file_ids(broadcast)) == ["flv-1", "flv-2", "hls", "mp4-1", "mp4-2"]
    starts = [r["startTime"] for r in broadcast["recordings"]]
    assert starts == sorted(starts)  # ordered by start time
    assert {r["format"] for r in broadcast["recordings"]} == {"HLS", "MP4", "FLV"}


async def test_new_m3u8_after_a_short_break_continues_the_broadcast(
    catalog: CatalogClient,
) -> None:
    # The app went to the background for two minutes: the push broke, HLS started a
    # new .m3u8 when it came back.
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            cut("2121_alice", BASE + 1000, "s1"),
            recording("2121_alice", "m3u8-1", BASE, BASE + 1000, "hls"),
            push("2121_alice", BASE + 1120, "s2"),
            cut("2121_alice", BASE + 2000, "s2"),
            recording("2121_alice", "m3u8-2", BASE + 1120, BASE + 2000, "hls"),
        ]
    )

    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 2000), False)]
    assert broadcast["durationSeconds"] == 2000
    assert file_ids(broadcast) == ["m3u8-1", "m3u8-2"]
    # Two .m3u8 files play as one stitched playlist.
    (node,) = await broadcast_ids_and_urls(catalog, "2121_alice")
    assert node["playbackUrl"] == f"http://catalog.test/replays/{node['id']}.m3u8"
    assert broadcast["playbackUrl"] == node["playbackUrl"]


async def test_stream_that_comes_back_within_the_window_continues_the_broadcast(
    catalog: CatalogClient,
) -> None:
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            cut("2121_alice", BASE + 600, "s1"),
            push("2121_alice", BASE + 600 + 240, "s2"),
        ]
    )
    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is True
    assert stream["currentBroadcast"] == {"startedAt": iso(BASE)}
    assert spans(await catalog.broadcasts("2121_alice")) == [(iso(BASE), None, True)]

    await catalog.send(cut("2121_alice", BASE + 1200, "s2"))
    assert spans(await catalog.broadcasts("2121_alice")) == [(iso(BASE), iso(BASE + 1200), False)]


async def test_sessions_further_apart_than_the_window_are_separate_broadcasts(
    catalog: CatalogClient,
) -> None:
    later = BASE + 600 + 3600
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            recording("2121_alice", "morning", BASE, BASE + 600),
            cut("2121_alice", BASE + 600, "s1"),
            push("2121_alice", later, "s2"),
            recording("2121_alice", "evening", later, later + 900),
            cut("2121_alice", later + 900, "s2"),
        ]
    )

    morning, evening = await catalog.broadcasts("2121_alice")
    assert spans([morning, evening]) == [
        (iso(BASE), iso(BASE + 600), False),
        (iso(later), iso(later + 900), False),
    ]
    assert file_ids(morning) == ["morning"]
    assert file_ids(evening) == ["evening"]
    assert morning["playbackUrl"] == url("morning", "m3u8")
    assert evening["playbackUrl"] == url("evening", "m3u8")
    rooms = await rooms_of(catalog, "2121_alice")
    assert [(r["kind"], r["playbackUrl"]) for r in rooms] == [
        ("REPLAY", url("evening", "m3u8")),  # newest end first
        ("REPLAY", url("morning", "m3u8")),
    ]


@pytest.mark.parametrize("facts", ["pushes", "files"])
@pytest.mark.parametrize(("gap", "broadcast_count"), [(WINDOW, 1), (WINDOW + 1, 2)])
async def test_reconnect_window_is_inclusive_to_the_second(
    catalog: CatalogClient, facts: str, gap: int, broadcast_count: int
) -> None:
    second = BASE + 600 + gap
    if facts == "pushes":
        events = [
            push("2121_alice", BASE, "s1"),
            cut("2121_alice", BASE + 600, "s1"),
            push("2121_alice", second, "s2"),
            cut("2121_alice", second + 600, "s2"),
        ]
    else:
        events = [
            recording("2121_alice", "f1", BASE, BASE + 600),
            recording("2121_alice", "f2", second, second + 600),
        ]
    await catalog.send_all(events)

    broadcasts = await catalog.broadcasts("2121_alice")
    assert len(broadcasts) == broadcast_count
    assert broadcasts[0]["startedAt"] == iso(BASE)
    assert broadcasts[-1]["endedAt"] == iso(second + 600)


# Arrival order


def one_session(stream_id: str) -> dict[str, dict[str, Any]]:
    """A broadcast with two MP4 parts and an HLS file, by name."""
    return {
        "push": push(stream_id, BASE, "s1"),
        "hls": recording(stream_id, f"{stream_id}-hls", BASE, BASE + 2400, "hls"),
        "part1": recording(stream_id, f"{stream_id}-p1", BASE, BASE + 1800, "mp4"),
        "part2": recording(stream_id, f"{stream_id}-p2", BASE + 1800, BASE + 2400, "mp4"),
        "cut": cut(stream_id, BASE + 2400, "s1", push_duration="2400000"),
        "shot": screenshot(stream_id, BASE + 60),
    }


TIDY_ORDER = ["push", "shot", "part1", "cut", "hls", "part2"]


@pytest.mark.parametrize(
    "order",
    [
        ["part1", "push", "shot", "cut", "hls", "part2"],
        ["push", "shot", "part1", "hls", "cut", "part2"],
        ["cut", "part2", "hls", "part1", "shot", "push"],
    ],
    ids=["file-before-push", "cut-off-before-last-file", "reversed"],
)
async def test_late_and_early_events_give_the_same_broadcast_as_the_tidy_order(
    catalog: CatalogClient, order: list[str]
) -> None:
    tidy, messy = one_session("2121_tidy"), one_session("2121_messy")
    await catalog.send_all(tidy[name] for name in TIDY_ORDER)
    await catalog.send_all(messy[name] for name in order)

    expected = await catalog.broadcasts("2121_tidy")
    assert spans(expected) == [(iso(BASE), iso(BASE + 2400), False)]
    assert len(expected[0]["recordings"]) == 3
    assert renamed(await catalog.broadcasts("2121_messy"), "2121_messy", "2121_tidy") == expected
    messy_stream = await catalog.stream_catalog("2121_messy")
    assert messy_stream is not None
    assert messy_stream["isLive"] is False


# Pairing pushes with cut-offs


async def test_push_and_cut_off_pair_by_sequence_when_sessions_interleave(
    catalog: CatalogClient,
) -> None:
    # The anchor reconnected before Tencent noticed the old connection had dropped:
    # the new push (s2) arrives before the old session's cut-off (s1).
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            push("2121_alice", BASE + 1000, "s2"),
            cut("2121_alice", BASE + 1010, "s1"),
        ]
    )
    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is True  # s1's cut-off does not end s2
    assert stream["currentBroadcast"] == {"startedAt": iso(BASE)}
    assert spans(await catalog.broadcasts("2121_alice")) == [(iso(BASE), None, True)]

    await catalog.send(cut("2121_alice", BASE + 2000, "s2"))
    assert spans(await catalog.broadcasts("2121_alice")) == [(iso(BASE), iso(BASE + 2000), False)]


@pytest.mark.parametrize("sequence", ["s1", ""], ids=["sequence", "no-sequence"])
async def test_cut_off_without_its_push_places_the_start_by_push_duration(
    catalog: CatalogClient, sequence: str
) -> None:
    await catalog.send(cut("2121_alice", BASE + 3600, sequence, push_duration="3600000"))

    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 3600), False)]
    assert broadcast["durationSeconds"] == 3600


@pytest.mark.parametrize("sequences", [("s1", "s2"), ("", "")], ids=["sequence", "no-sequence"])
async def test_older_push_whose_cut_off_never_came_does_not_keep_the_stream_live(
    catalog: CatalogClient, sequences: tuple[str, str]
) -> None:
    first, second = sequences
    later = BASE + 7200
    await catalog.send_all(
        [
            push("2121_alice", BASE, first),  # its cut-off is lost
            recording("2121_alice", "lost-cut", BASE, BASE + 1800),
            push("2121_alice", later, second),
            recording("2121_alice", "later", later, later + 600),
            cut("2121_alice", later + 600, second),
        ]
    )

    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is False
    assert stream["currentBroadcast"] is None
    assert spans(await catalog.broadcasts("2121_alice")) == [
        (iso(BASE), iso(BASE + 1800), False),  # ends where its recording ends
        (iso(later), iso(later + 600), False),
    ]
    assert [r["kind"] for r in await rooms_of(catalog, "2121_alice")] == ["REPLAY", "REPLAY"]


@pytest.mark.parametrize("sequences", [("s1", "s2"), ("", "")], ids=["sequence", "no-sequence"])
async def test_only_the_latest_open_session_is_live(
    catalog: CatalogClient, sequences: tuple[str, str]
) -> None:
    first, second = sequences
    later = BASE + 7200
    # The later push is delivered first: "latest" is about event time, not arrival.
    await catalog.send_all([push("2121_alice", later, second), push("2121_alice", BASE, first)])

    stream = await catalog.stream_catalog("2121_alice")
    assert stream is not None
    assert stream["isLive"] is True
    assert stream["currentBroadcast"] == {"startedAt": iso(later)}
    assert spans(await catalog.broadcasts("2121_alice")) == [
        (iso(BASE), iso(BASE), False),
        (iso(later), None, True),
    ]
    rooms = await rooms_of(catalog, "2121_alice")
    assert [(r["kind"], r["broadcast"]["startedAt"]) for r in rooms] == [("LIVE", iso(later))]


# Screenshots


async def test_screenshot_is_stored_with_the_broadcast_it_falls_in(
    catalog: CatalogClient,
) -> None:
    later = BASE + 7200
    await catalog.send_all(
        [
            screenshot("2121_alice", BASE + 10),  # before its push arrives
            push("2121_alice", BASE, "s1"),
            screenshot("2121_alice", BASE + 310),
            cut("2121_alice", BASE + 600, "s1"),
            push("2121_alice", later, "s2"),
            screenshot("2121_alice", later + 10),
            cut("2121_alice", later + 600, "s2"),
        ]
    )

    # Screenshots inside a session leave its times alone.
    assert spans(await catalog.broadcasts("2121_alice")) == [
        (iso(BASE), iso(BASE + 600), False),
        (iso(later), iso(later + 600), False),
    ]
    broadcasts = {
        b.id: unix(b.started_at) for b in await catalog.database.scalars(select(Broadcast))
    }
    shots = await catalog.database.scalars(select(Screenshot))
    placed = sorted((unix(s.taken_at), broadcasts[s.broadcast_id]) for s in shots)
    assert placed == [(BASE + 10, BASE), (BASE + 310, BASE), (later + 10, later)]
    assert {s.url for s in shots} == {
        f"http://1252033264.vod2.myqcloud.com/shots/2121_alice-{at}.jpg"
        for at in (BASE + 10, BASE + 310, later + 10)
    }


# Payload normalisation


async def test_stream_ids_and_sequences_are_trimmed(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [
            push(" 2121_a ", BASE, " s1 "),
            recording("2121_a\t", "f1", BASE, BASE + 600),
            cut("2121_a", BASE + 600, "s1"),
        ]
    )

    stream = await catalog.stream_catalog("2121_a")
    assert stream is not None
    assert stream["anchor"] == {"userId": "a"}
    (broadcast,) = await catalog.broadcasts("2121_a")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 600), False)]
    assert file_ids(broadcast) == ["f1"]


async def test_numbers_sent_as_strings_are_understood(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [
            push("2121_a", str(BASE), "s1"),  # type: ignore[arg-type]
            {
                **recording("2121_a", "f1", BASE, BASE + 600),
                "start_time": str(BASE),
                "end_time": f" {BASE + 600} ",
                "file_size": "1473125627",
                "event_type": "100",
            },
            {**cut("2121_a", BASE + 600, "s1"), "event_time": str(BASE + 600), "event_type": "0"},
        ]
    )

    (broadcast,) = await catalog.broadcasts("2121_a")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 600), False)]
    file = (await catalog.data(FILE, {"id": "f1"}))["recordingFile"]
    assert file["fileSize"] == 1473125627
    assert (file["startTime"], file["endTime"]) == (iso(BASE), iso(BASE + 600))


@pytest.mark.parametrize("event", ["push", "recording", "cut", "screenshot"])
async def test_channel_id_stands_in_for_a_missing_stream_id(
    catalog: CatalogClient, event: str
) -> None:
    events = {
        "push": push("2121_a", BASE, "s1"),
        "recording": recording("2121_a", "f1", BASE, BASE + 600),
        "cut": cut("2121_a", BASE + 600, "s1"),
        "screenshot": screenshot("2121_a", BASE + 60),
    }
    events[event].pop("stream_id")
    await catalog.send_all(events.values())

    (broadcast,) = await catalog.broadcasts("2121_a")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 600), False)]
    assert file_ids(broadcast) == ["f1"]
    assert len(await catalog.database.scalars(select(Screenshot))) == 1


async def test_unknown_fields_are_ignored(catalog: CatalogClient) -> None:
    novelties: dict[str, Any] = {
        "callback_ext": json.dumps({"session_id": "x1", "resolution": "1280x720"}),
        "start_time_usec": 123456,
        "stream_param": "bizid=2121&record=hls&session=x1",
        "brand_new": {"nested": [1, "two", None]},
        "appid": 1252033264,
        "node": "100.121.160.92",
    }
    await catalog.send_all(
        [
            push("2121_a", BASE, "s1", **novelties),
            recording(
                "2121_a", "f1", BASE, BASE + 600, media_start_time=3200, task_id="t1", **novelties
            ),
            cut("2121_a", BASE + 600, "s1", push_duration="600000", **novelties),
        ]
    )

    (broadcast,) = await catalog.broadcasts("2121_a")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 600), False)]
    assert file_ids(broadcast) == ["f1"]


@pytest.mark.parametrize(
    ("video_url", "file_format"),
    [
        ("http://1252033264.vod2.myqcloud.com/f1/playlist.m3u8", "HLS"),
        ("http://1252033264.vod2.myqcloud.com/f1/f0.mp4", "MP4"),
        ("http://200025724.vod.myqcloud.com/200025724_ac92.f0.flv", "FLV"),
        ("https://1252033264.vod2.myqcloud.com/f1/F0.MP4?t=5f1b&sign=ab", "MP4"),
    ],
    ids=["m3u8", "mp4", "flv", "query-string"],
)
async def test_format_is_inferred_from_the_url_when_file_format_is_absent(
    catalog: CatalogClient, video_url: str, file_format: str
) -> None:
    event = {**recording("2121_a", "f1", BASE, BASE + 600), "video_url": video_url}
    event.pop("file_format")
    await catalog.send(event)

    file = (await catalog.data(FILE, {"id": "f1"}))["recordingFile"]
    assert (file["format"], file["videoUrl"]) == (file_format, video_url)
    assert file["broadcast"]["playbackUrl"] == video_url


# Odd values


async def test_recording_guide_example_is_stored_without_a_negative_duration(
    catalog: CatalogClient,
) -> None:
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
    await catalog.send(example)

    file = (await catalog.data(FILE, {"id": "9192487266581821586"}))["recordingFile"]
    assert file is not None
    assert file["format"] == "FLV"
    assert file["fileSize"] == 9749353
    assert file["stream"] == {"streamId": "2121_15919131751"}
    assert file["endTime"] == iso(1473125627)
    assert file["startTime"] <= file["endTime"]
    assert file["durationSeconds"] >= 0
    broadcast = file["broadcast"]
    assert broadcast["durationSeconds"] >= 0
    assert broadcast["startedAt"] <= broadcast["endedAt"]
    assert broadcast["playbackUrl"] == example["video_url"]
    (room,) = await rooms_of(catalog, "2121_15919131751")
    assert room["kind"] == "REPLAY"


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
async def test_duration_places_the_start_before_the_end(
    catalog: CatalogClient, times: dict[str, Any], start: int
) -> None:
    event = recording("2121_a", "f1", BASE, BASE + 600)
    for name in ("start_time", "end_time"):
        event.pop(name)
    await catalog.send({**event, **times})

    file = (await catalog.data(FILE, {"id": "f1"}))["recordingFile"]
    assert (file["startTime"], file["endTime"]) == (iso(start), iso(BASE + 600))
    assert file["durationSeconds"] == BASE + 600 - start
    assert file["broadcast"]["startedAt"] == iso(start)


# Playback


async def broadcast_ids_and_urls(catalog: CatalogClient, stream: str) -> list[dict[str, Any]]:
    data = await catalog.data(
        "query($s: String!) { stream(streamId: $s) { broadcasts { edges { node {"
        " id playbackUrl } } } } }",
        {"s": stream},
    )
    return [edge["node"] for edge in data["stream"]["broadcasts"]["edges"]]


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        (["flv", "mp4", "hls"], "hls"),
        (["flv", "mp4"], "mp4"),
        (["flv"], "flv"),
        (["aac", "flv"], "flv"),
    ],
    ids=["hls-over-all", "mp4-over-flv", "flv-alone", "flv-over-aac"],
)
async def test_playback_url_prefers_hls_then_mp4_then_flv(
    catalog: CatalogClient, formats: list[str], expected: str
) -> None:
    extension = {"hls": "m3u8", "mp4": "mp4", "flv": "flv", "aac": "aac"}
    events = [push("2121_a", BASE, "s1"), cut("2121_a", BASE + 3000, "s1")]
    for file_format in formats:
        # Two parts each, the later one announced first: the earliest part plays.
        events.append(
            recording("2121_a", f"{file_format}-2", BASE + 1800, BASE + 3000, file_format)
        )
        events.append(recording("2121_a", f"{file_format}-1", BASE, BASE + 1800, file_format))
    await catalog.send_all(events)

    (broadcast,) = await catalog.broadcasts("2121_a")
    if expected == "hls":  # two HLS parts play as one stitched playlist
        (node,) = await broadcast_ids_and_urls(catalog, "2121_a")
        assert broadcast["playbackUrl"] == f"http://catalog.test/replays/{node['id']}.m3u8"
    else:
        assert broadcast["playbackUrl"] == url(f"{expected}-1", extension[expected])
    (room,) = await rooms_of(catalog, "2121_a")
    assert room["playbackUrl"] == broadcast["playbackUrl"]


async def test_live_broadcast_has_no_playback_url(catalog: CatalogClient) -> None:
    # An .m3u8 closed by a short break while the anchor is back on air.
    await catalog.send_all(
        [
            push("2121_a", BASE, "s1"),
            cut("2121_a", BASE + 600, "s1"),
            recording("2121_a", "m3u8-1", BASE, BASE + 600, "hls"),
            push("2121_a", BASE + 660, "s2"),
        ]
    )

    (broadcast,) = await catalog.broadcasts("2121_a")
    assert broadcast["isLive"] is True
    assert file_ids(broadcast) == ["m3u8-1"]
    assert broadcast["playbackUrl"] is None
    (room,) = await rooms_of(catalog, "2121_a")
    assert (room["kind"], room["playbackUrl"]) == ("LIVE", None)


# Retries


async def test_retried_events_do_not_change_broadcasts(catalog: CatalogClient) -> None:
    events = [
        push("2121_a", BASE, "s1"),
        screenshot("2121_a", BASE + 60),
        recording("2121_a", "p1", BASE, BASE + 1800, "mp4"),
        recording("2121_a", "p2", BASE + 1800, BASE + 2400, "mp4"),
        cut("2121_a", BASE + 2400, "s1", push_duration="2400000"),
        push("2121_a", BASE + 9000, "s2"),
        cut("2121_a", BASE + 9600, "s2"),
        push("2121_a", BASE + 20000, "s3"),
    ]
    await catalog.send_all(events)
    before = await catalog.data(CATALOG_WITH_IDS, {"streamId": "2121_a"})
    rows_before = {b.id: b.updated_at for b in await catalog.database.scalars(select(Broadcast))}

    # Tencent retries every event (each time with a new t and sign), in any order.
    await catalog.send_all(reversed(events))
    await catalog.send_all(events)

    assert await catalog.data(CATALOG_WITH_IDS, {"streamId": "2121_a"}) == before
    rows_after = {b.id: b.updated_at for b in await catalog.database.scalars(select(Broadcast))}
    assert rows_after == rows_before
    stream = before["stream"]
    assert len(stream["broadcasts"]["edges"]) == 3
    assert stream["isLive"] is True
