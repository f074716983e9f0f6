"""Covers, titles, featured, hidden and deleted replays, anchor totals and list filters."""

import base64
from typing import Any

import pytest

from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    iso,
    push,
    recording,
    screenshot,
)

pytestmark = pytest.mark.anyio

HOUR = 3600
ROOMS = """query($kind: RoomKind, $anchor: String) { rooms(kind: $kind, anchor: $anchor) {
  edges { node { kind title coverUrl stream { streamId } broadcast { id featured } } } } }"""
CURATE = """mutation($id: ID!, $hidden: Boolean, $featured: Boolean, $title: String) {
  curateBroadcast(id: $id, hidden: $hidden, featured: $featured, title: $title) {
    id title featured hidden deletedAt } }"""


async def replay(catalog: CatalogClient, stream_id: str, start: int, minutes: int = 30) -> str:
    """A replay with one HLS file; returns the broadcast's global id."""
    end = start + minutes * 60
    await catalog.send_all(
        [
            push(stream_id, start, f"{stream_id}-{start}"),
            recording(stream_id, f"{stream_id}-{start}", start, end),
            cut(stream_id, end, f"{stream_id}-{start}"),
        ]
    )
    data = await catalog.data(
        "query($s: String!) { stream(streamId: $s) {"
        " broadcasts(first: 1) { edges { node { id } } } } }",
        {"s": stream_id},
    )
    return str(data["stream"]["broadcasts"]["edges"][0]["node"]["id"])


async def rooms(catalog: CatalogClient, token: str | None = None, **filters: Any) -> list[Any]:
    data = await catalog.data(ROOMS, filters, token)
    return [edge["node"] for edge in data["rooms"]["edges"]]


async def curate(catalog: CatalogClient, broadcast_id: str, **changes: Any) -> dict[str, Any]:
    data = await catalog.data(CURATE, {"id": broadcast_id, **changes}, ADMIN_TOKEN)
    return data["curateBroadcast"]  # type: ignore[no-any-return]


async def test_screenshots_give_rooms_and_broadcasts_a_cover(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_alice", BASE, "s1"))
    for minute in (1, 5, 9):
        await catalog.send(screenshot("2121_alice", BASE + minute * 60))
    await catalog.send(screenshot("2121_alice", BASE - 2 * HOUR))  # an older broadcast's
    (live,) = [r for r in await rooms(catalog) if r["kind"] == "LIVE"]
    assert live["coverUrl"].endswith(f"2121_alice-{BASE + 9 * 60}.jpg")  # the latest, live

    await catalog.send(recording("2121_alice", "f1", BASE, BASE + 600))
    await catalog.send(cut("2121_alice", BASE + 600, "s1"))
    (replay_room,) = [r for r in await rooms(catalog) if r["kind"] == "REPLAY"]
    assert replay_room["coverUrl"].endswith(f"2121_alice-{BASE + 60}.jpg")  # the first
    data = await catalog.data(
        "query($id: ID!) { broadcast(id: $id) { coverUrl } }",
        {"id": replay_room["broadcast"]["id"]},
    )
    assert data["broadcast"]["coverUrl"] == replay_room["coverUrl"]


async def test_a_replay_without_screenshots_has_no_cover(catalog: CatalogClient) -> None:
    await replay(catalog, "2121_alice", BASE)
    assert [r["coverUrl"] for r in await rooms(catalog)] == [None]


async def test_admins_give_broadcasts_titles_and_can_clear_them(catalog: CatalogClient) -> None:
    broadcast_id = await replay(catalog, "2121_alice", BASE)
    assert (await curate(catalog, broadcast_id, title="  Friday karaoke  "))["title"] == (
        "Friday karaoke"
    )
    assert [r["title"] for r in await rooms(catalog)] == ["Friday karaoke"]
    assert (await curate(catalog, broadcast_id, featured=True))["title"] == "Friday karaoke"
    assert (await curate(catalog, broadcast_id, title=""))["title"] is None


async def test_featured_replays_come_right_after_the_live_rooms(catalog: CatalogClient) -> None:
    oldest = await replay(catalog, "2121_a", BASE)
    await replay(catalog, "2121_b", BASE + HOUR)
    await replay(catalog, "2121_c", BASE + 2 * HOUR)
    await catalog.send(push("2121_live", BASE + 3 * HOUR))
    await curate(catalog, oldest, featured=True)
    order = [(r["kind"], r["stream"]["streamId"]) for r in await rooms(catalog)]
    assert order == [
        ("LIVE", "2121_live"),
        ("REPLAY", "2121_a"),
        ("REPLAY", "2121_c"),
        ("REPLAY", "2121_b"),
    ]
    await curate(catalog, oldest, featured=False)
    assert [r["stream"]["streamId"] for r in await rooms(catalog)][1:] == [
        "2121_c",
        "2121_b",
        "2121_a",
    ]


def node_of(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


PUBLIC_VIEWS = """query($id: ID!, $fileNode: ID!) {
  rooms { edges { node { broadcast { id } } } }
  anchor(userId: "alice") { replayCount replays { edges { node { id } } } }
  stream(streamId: "2121_alice") { broadcasts { edges { node { id } } } }
  broadcast(id: $id) { id }
  node(id: $id) { id }
  fileNode: node(id: $fileNode) { id }
  recordingFiles { edges { node { fileId } } }
  ofStream: recordingFiles(streamId: "2121_alice") { edges { node { fileId } } }
  recordingFile(fileId: "2121_alice-1793534400") { fileId }
}"""


def sightings(data: dict[str, Any], broadcast_id: str) -> dict[str, bool]:
    """Where a broadcast (and its one file) shows up in PUBLIC_VIEWS."""
    file_id = "2121_alice-1793534400"
    return {
        "rooms": any(e["node"]["broadcast"]["id"] == broadcast_id for e in data["rooms"]["edges"]),
        "replays": bool(data["anchor"]["replays"]["edges"]),
        "replayCount": data["anchor"]["replayCount"] == 1,
        "stream.broadcasts": bool(data["stream"]["broadcasts"]["edges"]),
        "broadcast": data["broadcast"] is not None,
        "node": data["node"] is not None,
        "file node": data["fileNode"] is not None,
        "recordingFiles": any(
            e["node"]["fileId"] == file_id for e in data["recordingFiles"]["edges"]
        ),
        "recordingFiles(streamId)": bool(data["ofStream"]["edges"]),
        "recordingFile": data["recordingFile"] is not None,
    }


@pytest.mark.parametrize("how", ["hidden", "deleted"])
async def test_a_hidden_or_deleted_replay_is_unreachable_by_the_public_but_kept_for_admins(
    catalog: CatalogClient, how: str
) -> None:
    broadcast_id = await replay(catalog, "2121_alice", BASE)
    await catalog.data(
        'mutation { upsertAnchor(input: {userId: "alice", streamIds: ["2121_alice"]}) { userId } }',
        token=ADMIN_TOKEN,
    )
    file_pk = int(
        base64.b64decode(
            (await catalog.data('{ recordingFile(fileId: "2121_alice-1793534400") { id } }'))[
                "recordingFile"
            ]["id"]
        )
        .decode()
        .split(":")[1]
    )
    variables = {"id": broadcast_id, "fileNode": node_of("RecordingFile", file_pk)}
    everywhere = dict.fromkeys(sightings(await catalog.data(PUBLIC_VIEWS, variables), ""), True)
    before = sightings(await catalog.data(PUBLIC_VIEWS, variables), broadcast_id)
    assert before == everywhere

    if how == "hidden":
        assert (await curate(catalog, broadcast_id, hidden=True))["hidden"] is True
    else:
        deleted = await catalog.data(
            "mutation($id: ID!) { deleteBroadcast(id: $id) { deletedAt } }",
            {"id": broadcast_id},
            ADMIN_TOKEN,
        )
        assert deleted["deleteBroadcast"]["deletedAt"] is not None

    public = sightings(await catalog.data(PUBLIC_VIEWS, variables), broadcast_id)
    assert public == dict.fromkeys(everywhere, False)
    as_admin = sightings(await catalog.data(PUBLIC_VIEWS, variables, ADMIN_TOKEN), broadcast_id)
    assert as_admin == everywhere

    # New parts of the broadcast keep it out of sight.
    await catalog.send(recording("2121_alice", "late-part", BASE + 1800, BASE + 1900, "mp4"))
    assert sightings(await catalog.data(PUBLIC_VIEWS, variables), broadcast_id) == public

    if how == "hidden":
        await curate(catalog, broadcast_id, hidden=False)
    else:
        await catalog.data(
            "mutation($id: ID!) { restoreBroadcast(id: $id) { deletedAt } }",
            {"id": broadcast_id},
            ADMIN_TOKEN,
        )
    assert sightings(await catalog.data(PUBLIC_VIEWS, variables), broadcast_id) == everywhere


async def test_curation_is_for_admins_and_never_tells_whether_a_broadcast_exists(
    catalog: CatalogClient,
) -> None:
    broadcast_id = await replay(catalog, "2121_alice", BASE)
    for target in (broadcast_id, node_of("Broadcast", 999)):
        body = await catalog.graphql(CURATE, {"id": target, "hidden": True})
        assert body["errors"][0]["message"] == "this operation needs the admin bearer token"
    body = await catalog.graphql(CURATE, {"id": node_of("Broadcast", 999)}, ADMIN_TOKEN)
    assert body["errors"][0]["message"] == "id does not name a broadcast"
    body = await catalog.graphql(CURATE, {"id": broadcast_id, "title": "x" * 129}, ADMIN_TOKEN)
    assert body["errors"][0]["message"] == "title must be at most 128 characters"
    assert (await rooms(catalog))[0]["broadcast"]["featured"] is False


async def test_anchor_profile_counts_replays_and_their_length(catalog: CatalogClient) -> None:
    await replay(catalog, "2121_alice", BASE, minutes=30)
    hidden = await replay(catalog, "2121_alice", BASE + HOUR, minutes=20)
    await replay(catalog, "2121_alice", BASE + 2 * HOUR, minutes=45)
    await catalog.send(push("2121_alice", BASE + 3 * HOUR))  # live: not a replay
    await curate(catalog, hidden, hidden=True)
    query = '{ anchor(userId: "alice") { replayCount replayDurationSeconds } }'
    assert (await catalog.data(query))["anchor"] == {
        "replayCount": 2,
        "replayDurationSeconds": (30 + 45) * 60,
    }
    assert (await catalog.data(query, token=ADMIN_TOKEN))["anchor"] == {
        "replayCount": 3,
        "replayDurationSeconds": (30 + 20 + 45) * 60,
    }
    nobody = await catalog.data('{ anchor(userId: "2121_x") { replayCount } }')
    assert nobody["anchor"] is None


async def test_rooms_can_be_filtered_by_kind_and_anchor(catalog: CatalogClient) -> None:
    await replay(catalog, "2121_alice", BASE)
    await replay(catalog, "2121_bob", BASE + HOUR)
    await catalog.send(push("2121_bob", BASE + 3 * HOUR))
    await catalog.send(push("2121_carol", BASE + 4 * HOUR))

    def streams(found: list[Any]) -> list[tuple[str, str]]:
        return [(r["kind"], r["stream"]["streamId"]) for r in found]

    assert streams(await rooms(catalog, kind="LIVE")) == [
        ("LIVE", "2121_carol"),
        ("LIVE", "2121_bob"),
    ]
    assert streams(await rooms(catalog, kind="REPLAY")) == [
        ("REPLAY", "2121_bob"),
        ("REPLAY", "2121_alice"),
    ]
    assert streams(await rooms(catalog, anchor="bob")) == [
        ("LIVE", "2121_bob"),
        ("REPLAY", "2121_bob"),
    ]
    assert streams(await rooms(catalog, anchor="bob", kind="REPLAY")) == [("REPLAY", "2121_bob")]
    assert await rooms(catalog, anchor="nobody") == []


FILES = """query($format: RecordingFormat, $after: DateTime, $before: DateTime) {
  recordingFiles(format: $format, startedAfter: $after, startedBefore: $before) {
    edges { node { fileId } } } }"""


async def test_recording_files_can_be_filtered_by_format_and_time(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [
            recording("2121_a", "hls-1", BASE, BASE + 600, "hls"),
            recording("2121_a", "mp4-1", BASE, BASE + 600, "mp4"),
            recording("2121_a", "mp4-2", BASE + HOUR, BASE + HOUR + 600, "mp4"),
            recording("2121_b", "flv-3", BASE + 2 * HOUR, BASE + 2 * HOUR + 600, "flv"),
        ]
    )

    async def files(**variables: Any) -> list[str]:
        data = await catalog.data(FILES, variables)
        return [edge["node"]["fileId"] for edge in data["recordingFiles"]["edges"]]

    assert await files(format="MP4") == ["mp4-2", "mp4-1"]
    assert await files(after=iso(BASE + HOUR)) == ["flv-3", "mp4-2"]
    assert await files(before=iso(BASE + HOUR)) == ["mp4-1", "hls-1"]
    assert await files(format="MP4", after=iso(BASE + 1), before=iso(BASE + 3 * HOUR)) == ["mp4-2"]
    body = await catalog.graphql(FILES, {"after": "2026-11-01T12:00:00"})
    assert body["errors"][0]["message"].startswith("times must carry a UTC offset")
