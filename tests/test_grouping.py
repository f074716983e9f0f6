"""Grouping callbacks into broadcasts, as apps see it through the API.

A few scenarios deliver signed callbacks through POST /callbacks/tencent and read
the catalog back through GraphQL, the way Tencent and the apps do. The rules
themselves (pairing, the reconnect window, liveness, playback, covers) are tested
on the pure function that decides them, in tests/test_grouping_rules.py; reading
payloads is in tests/test_callback_parsing.py; arrival order and retries over HTTP
for any events in tests/test_ordering.py. The fixture sets RECONNECT_WINDOW_SECONDS
to 300.
"""

from typing import Any

import pytest
from sqlalchemy import select

from storage import Broadcast
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

ROOMS = """{ rooms(first: 100) { edges { node {
    kind playbackUrl stream { streamId } broadcast { startedAt endedAt isLive }
} } } }"""

CATALOG_WITH_IDS = """query($streamId: String!) { stream(streamId: $streamId) {
    isLive currentBroadcast { id }
    broadcasts(first: 100) { edges { node {
        id isLive startedAt endedAt durationSeconds playbackUrl recordings { id fileId }
    } } }
} }"""


def url(file_id: str, extension: str) -> str:
    """The URL `recording()` gives a file of this id."""
    return f"http://1252033264.vod2.myqcloud.com/{file_id}/f0.{extension}"


def spans(broadcasts: list[dict[str, Any]]) -> list[tuple[Any, Any, bool]]:
    return [(b["startedAt"], b["endedAt"], b["isLive"]) for b in broadcasts]


def file_ids(broadcast: dict[str, Any]) -> list[str]:
    return [r["fileId"] for r in broadcast["recordings"]]


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


async def test_parts_cut_by_record_interval_are_one_broadcast(catalog: CatalogClient) -> None:
    # record=mp4&record_interval=1800: parts end at key frames, a second apart.
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1"),
            recording("2121_alice", "p1", BASE, BASE + 1799, "mp4"),
            recording("2121_alice", "p2", BASE + 1800, BASE + 3599, "mp4"),
            recording("2121_alice", "p3", BASE + 3600, BASE + 4000, "mp4"),
            cut("2121_alice", BASE + 4000, "s1"),
        ]
    )

    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert spans([broadcast]) == [(iso(BASE), iso(BASE + 4000), False)]
    assert broadcast["durationSeconds"] == 4000
    assert file_ids(broadcast) == ["p1", "p2", "p3"]
    assert broadcast["playbackUrl"] == url("p1", "mp4")
    (room,) = await rooms_of(catalog, "2121_alice")
    assert (room["kind"], room["playbackUrl"]) == ("REPLAY", url("p1", "mp4"))


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
