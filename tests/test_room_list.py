"""The room list, an anchor's replays, a stream's broadcasts and its recording files."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from storage.broadcasts import RoomFilter, rooms_query
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    iso,
    make_settings,
    push,
    recording,
)
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.anyio

ROOMS = """
query Rooms {
  rooms(first: 100) {
    edges { node {
      kind playbackUrl
      anchor { userId isLive }
      stream { streamId isLive }
      broadcast { isLive startedAt endedAt durationSeconds playbackUrl }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

REPLAYS = """
query Replays($userId: String!) {
  anchor(userId: $userId) {
    replays(first: 100) {
      edges { node { isLive startedAt endedAt stream { streamId } anchor { userId } } }
    }
  }
}
"""

RECORDING_FILES = """
query RecordingFiles($streamId: String) {
  recordingFiles(streamId: $streamId, first: 100) {
    edges { node { fileId startTime } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

RECORDING_FILE = """
query RecordingFile($fileId: String!) {
  recordingFile(fileId: $fileId) {
    id fileId format videoUrl videoId fileSize startTime endTime durationSeconds
    stream { streamId }
    broadcast { startedAt endedAt }
  }
}
"""

UPSERT_ANCHOR = """
mutation Upsert($input: AnchorInput!) { upsertAnchor(input: $input) { userId } }
"""


async def rooms(catalog: CatalogClient) -> list[dict[str, Any]]:
    data = await catalog.data(ROOMS)
    return [edge["node"] for edge in data["rooms"]["edges"]]


async def broadcast_on_air(
    catalog: CatalogClient, stream_id: str, start: int, end: int, files: tuple[str, ...] = ()
) -> None:
    """A push from `start` to `end`, and a recording file per format in `files`."""
    await catalog.send(push(stream_id, start, f"{stream_id}-{start}"))
    await catalog.send(cut(stream_id, end, f"{stream_id}-{start}"))
    for file_format in files:
        await catalog.send(
            recording(stream_id, f"{stream_id}-{start}-{file_format}", start, end, file_format)
        )


async def test_live_rooms_come_first_by_newest_push_then_replays_by_newest_end(
    catalog: CatalogClient,
) -> None:
    # Sent in an order that differs from the list's, so that arrival order cannot pass for it.
    await catalog.send(push("2121_late", BASE + 900))
    await catalog.send(push("2121_early", BASE + 100))
    await broadcast_on_air(catalog, "2121_old", BASE - 7200, BASE - 3600, ("hls",))
    await broadcast_on_air(catalog, "2121_recent", BASE - 3000, BASE - 600, ("hls",))
    # Started before every other replay, ended between them: ordered by its end.
    await broadcast_on_air(catalog, "2121_longest", BASE - 20_000, BASE - 2000, ("hls",))

    listed = [(room["kind"], room["stream"]["streamId"]) for room in await rooms(catalog)]

    assert listed == [
        ("LIVE", "2121_late"),
        ("LIVE", "2121_early"),
        ("REPLAY", "2121_recent"),
        ("REPLAY", "2121_longest"),
        ("REPLAY", "2121_old"),
    ]


async def test_ended_broadcast_without_recordings_is_not_a_room_until_a_recording_arrives(
    catalog: CatalogClient,
) -> None:
    await broadcast_on_air(catalog, "2121_silent", BASE, BASE + 600)

    assert await rooms(catalog) == []
    (broadcast,) = await catalog.broadcasts("2121_silent")
    assert broadcast["endedAt"] == iso(BASE + 600)

    await catalog.send(recording("2121_silent", "late-file", BASE, BASE + 600))
    assert [room["kind"] for room in await rooms(catalog)] == ["REPLAY"]


async def test_replay_room_shows_its_anchor_stream_broadcast_and_playback_url(
    catalog: CatalogClient,
) -> None:
    await broadcast_on_air(catalog, "2121_alice", BASE, BASE + 1800, ("flv", "mp4", "hls"))

    (room,) = await rooms(catalog)

    hls_url = "http://1252033264.vod2.myqcloud.com/2121_alice-1793534400-hls/f0.m3u8"
    assert room == {
        "kind": "REPLAY",
        "playbackUrl": hls_url,
        "anchor": {"userId": "alice", "isLive": False},
        "stream": {"streamId": "2121_alice", "isLive": False},
        "broadcast": {
            "isLive": False,
            "startedAt": iso(BASE),
            "endedAt": iso(BASE + 1800),
            "durationSeconds": 1800,
            "playbackUrl": hls_url,
        },
    }


async def test_live_room_shows_the_broadcast_on_air_and_no_replay_url(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_bob", BASE))

    (room,) = await rooms(catalog)

    assert room == {
        "kind": "LIVE",
        "playbackUrl": None,
        "anchor": {"userId": "bob", "isLive": True},
        "stream": {"streamId": "2121_bob", "isLive": True},
        "broadcast": {
            "isLive": True,
            "startedAt": iso(BASE),
            "endedAt": None,
            "durationSeconds": None,
            "playbackUrl": None,
        },
    }


async def test_replay_plays_hls_then_mp4_then_flv_then_aac(catalog: CatalogClient) -> None:
    choices = {
        "2121_hls": (("flv", "aac", "mp4", "hls"), "m3u8"),
        "2121_mp4": (("aac", "flv", "mp4"), "mp4"),
        "2121_flv": (("aac", "flv"), "flv"),
        "2121_aac": (("aac",), "aac"),
    }
    for stream_id, (formats, _) in choices.items():
        await broadcast_on_air(catalog, stream_id, BASE, BASE + 600, formats)

    listed = await rooms(catalog)

    played = {room["stream"]["streamId"]: room["playbackUrl"].rsplit(".", 1)[1] for room in listed}
    assert played == {stream_id: extension for stream_id, (_, extension) in choices.items()}
    assert all(room["broadcast"]["playbackUrl"] == room["playbackUrl"] for room in listed)


async def alice_with_a_history(catalog: CatalogClient) -> None:
    """Alice: three ended broadcasts on her first stream (one unrecorded), one on her
    studio stream, and live again now. Bob has a replay of his own."""
    await broadcast_on_air(catalog, "2121_alice", BASE, BASE + 600, ("hls",))
    await broadcast_on_air(catalog, "2121_alice", BASE + 2000, BASE + 2600)
    await broadcast_on_air(catalog, "2121_alice", BASE + 4000, BASE + 4600, ("hls", "mp4"))
    await catalog.send(push("2121_alice", BASE + 8000))
    await catalog.send(recording("alice-studio", "studio-1", BASE + 3000, BASE + 3300))
    await broadcast_on_air(catalog, "2121_bob", BASE + 5000, BASE + 5600, ("hls",))
    await catalog.data(
        UPSERT_ANCHOR,
        {"input": {"userId": "alice", "streamIds": ["2121_alice", "alice-studio"]}},
        token=ADMIN_TOKEN,
    )


async def test_anchor_replays_are_her_ended_recorded_broadcasts_newest_first(
    catalog: CatalogClient,
) -> None:
    await alice_with_a_history(catalog)

    data = await catalog.data(REPLAYS, {"userId": "alice"})

    replays = [edge["node"] for edge in data["anchor"]["replays"]["edges"]]
    assert [(r["stream"]["streamId"], r["endedAt"]) for r in replays] == [
        ("2121_alice", iso(BASE + 4600)),
        ("alice-studio", iso(BASE + 3300)),
        ("2121_alice", iso(BASE + 600)),
    ]
    assert all(not r["isLive"] and r["anchor"]["userId"] == "alice" for r in replays)


async def test_stream_broadcasts_are_listed_newest_first_live_and_unrecorded_included(
    catalog: CatalogClient,
) -> None:
    await alice_with_a_history(catalog)

    stream = await catalog.stream_catalog("2121_alice")

    assert stream is not None
    broadcasts = [edge["node"] for edge in stream["broadcasts"]["edges"]]
    assert [(b["startedAt"], b["isLive"], len(b["recordings"])) for b in broadcasts] == [
        (iso(BASE + 8000), True, 0),
        (iso(BASE + 4000), False, 2),
        (iso(BASE + 2000), False, 0),
        (iso(BASE), False, 1),
    ]
    assert stream["currentBroadcast"] == {"startedAt": iso(BASE + 8000)}


async def test_recording_files_of_a_stream_are_listed_newest_first(
    catalog: CatalogClient,
) -> None:
    for start in (BASE + 1000, BASE, BASE + 3000, BASE + 2000):
        await catalog.send(recording("2121_alice", f"alice-{start}", start, start + 600))
    await catalog.send(recording("2121_bob", "bob-1", BASE + 1500, BASE + 1600))

    data = await catalog.data(RECORDING_FILES, {"streamId": "2121_alice"})
    everything = await catalog.data(RECORDING_FILES, {"streamId": None})

    listed = [edge["node"]["fileId"] for edge in data["recordingFiles"]["edges"]]
    assert listed == [f"alice-{BASE + offset}" for offset in (3000, 2000, 1000, 0)]
    assert [edge["node"]["fileId"] for edge in everything["recordingFiles"]["edges"]] == [
        *listed[:2],
        "bob-1",
        *listed[2:],
    ]


async def test_recording_files_of_an_unknown_stream_is_an_empty_list(
    catalog: CatalogClient,
) -> None:
    await catalog.send(recording("2121_alice", "f1", BASE, BASE + 600))

    data = await catalog.data(RECORDING_FILES, {"streamId": "2121_nobody"})

    assert data["recordingFiles"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


async def test_recording_file_is_found_by_its_file_id(catalog: CatalogClient) -> None:
    await broadcast_on_air(catalog, "2121_alice", BASE, BASE + 1200)
    await catalog.send(
        recording("2121_alice", "f-mp4", BASE + 600, BASE + 1200, "mp4", file_size=123_456)
    )

    found = (await catalog.data(RECORDING_FILE, {"fileId": "f-mp4"}))["recordingFile"]
    missing = (await catalog.data(RECORDING_FILE, {"fileId": "f-none"}))["recordingFile"]

    assert found.pop("id")
    assert found == {
        "fileId": "f-mp4",
        "format": "MP4",
        "videoUrl": "http://1252033264.vod2.myqcloud.com/f-mp4/f0.mp4",
        "videoId": "1252033264_f-mp4",
        "fileSize": 123_456,
        "startTime": iso(BASE + 600),
        "endTime": iso(BASE + 1200),
        "durationSeconds": 600,
        "stream": {"streamId": "2121_alice"},
        "broadcast": {"startedAt": iso(BASE), "endedAt": iso(BASE + 1200)},
    }
    assert missing is None


async def test_broadcast_recordings_are_ordered_by_start_time(catalog: CatalogClient) -> None:
    # A two-hour broadcast cut into parts by record_interval; the later parts arrive first.
    await catalog.send(push("2121_alice", BASE, "s1"))
    for part in (2, 0, 1):
        start = BASE + part * 3600
        await catalog.send(recording("2121_alice", f"part{part}", start, start + 3600))
        await catalog.send(recording("2121_alice", f"part{part}-mp4", start, start + 3600, "mp4"))
    await catalog.send(cut("2121_alice", BASE + 3 * 3600, "s1"))

    (broadcast,) = await catalog.broadcasts("2121_alice")

    starts = [(r["startTime"], r["fileId"].removesuffix("-mp4")) for r in broadcast["recordings"]]
    assert starts == sorted(starts)
    assert {r["fileId"] for r in broadcast["recordings"]} == {
        "part0",
        "part1",
        "part2",
        "part0-mp4",
        "part1-mp4",
        "part2-mp4",
    }
    assert starts[0] == (iso(BASE), "part0") and starts[-1] == (iso(BASE + 7200), "part2")


async def test_file_sizes_above_two_gigabytes_survive_as_floats(catalog: CatalogClient) -> None:
    sizes = {"two-gib": 2**31, "five-gb": 5_000_000_000, "one-tib": 2**40 + 1}
    for file_id, size in sizes.items():
        await catalog.send(recording("2121_alice", file_id, BASE, BASE + 36_000, file_size=size))

    response = await catalog.http.post(
        "/graphql", json={"query": "{ recordingFiles { edges { node { fileId fileSize } } } }"}
    )

    edges = response.json()["data"]["recordingFiles"]["edges"]
    shown = {edge["node"]["fileId"]: edge["node"]["fileSize"] for edge in edges}
    assert shown == sizes
    assert all(isinstance(size, float) for size in shown.values())


@pytest.fixture
def own_postgres() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.postgres
async def test_a_page_deep_in_the_room_list_starts_at_its_cursor_in_the_index(
    own_postgres: str,
) -> None:
    """At a million files a page must not read every room before its cursor (bench/SCALE.md):
    PostgreSQL's plan walks the room-list index from the cursor, with no sort."""
    async with CatalogClient.started(make_settings(own_postgres)) as catalog:
        await _explain_a_deep_page(catalog)


async def _explain_a_deep_page(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [recording(f"2121_r{i}", f"r{i}", BASE + i * 100, BASE + i * 100 + 60) for i in range(5)]
    )
    [*_, last] = await catalog.database.scalars(rooms_query(RoomFilter(), None, 2).bound())
    after = [last.room_rank, last.room_time, last.id]
    statement = (
        rooms_query(RoomFilter(), after, 20)
        .bound()
        .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    async with catalog.database.engine.connect() as connection:
        # A handful of rows would be read whole and sorted; plan as for a million.
        for method in ("seqscan", "bitmapscan", "sort"):
            await connection.execute(text(f"SET LOCAL enable_{method} = off"))
        plan = "\n".join(row[0] for row in await connection.execute(text(f"EXPLAIN {statement}")))
    assert "ix_broadcast_room_list" in plan and "Index Cond" in plan, plan
    assert "Sort" not in plan, plan
